//! MFA devices: the lifecycle of AWS's guide (create, enable with two codes, resync, deactivate,
//! delete, list, status) and the verifier that GetSessionToken and AssumeRole use.
//!
//! SECURITY: a refused MFA authentication always gets the same answer, whether the code was
//! wrong, replayed, throttled, locked, or for a device that is not the caller's; only the audit
//! trail says which. Seeds are decrypted only inside the store's transaction, for one check.
//!
//! The verifier's checks go to the replay guard's group-commit writer ([`super::mfa_guard`]), which
//! answers each only after the transaction recording it has committed. The check's audit record
//! (the refusal, or what the call issues on acceptance) is written in that same transaction.

use super::actions::{Resource, ResourceKind, Rpc};
use super::input::{
    BindMfaDevice, CreateVirtualMfaDevice, DeleteVirtualMfaDevice, ForUser,
    ImportHardwareMfaDevices, ListVirtualMfaDevices, UserDevice,
};
use super::{Broker, Caller, Principal};
use crate::crypto::{Binding, MasterKey};
use crate::domain::{
    AuditEvent, BindOutcome, CodeVerdict, DeviceKind, MfaAttempt, MfaAudit, MfaCheck, MfaDevice,
    Owner, OwnerRef, StoreRules,
};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, MfaSerial, TokenCode, UserName};
use crate::mfa::totp::{self, ENABLE_WINDOW, RESYNC_WINDOW};
use crate::mfa::{Seed, TotpCode, TotpParams};
use std::sync::Arc;
use time::OffsetDateTime;
use zeroize::Zeroizing;

/// The issuer label authenticator apps show next to the account.
pub const OTP_ISSUER: &str = "sts-broker";

/// AWS's answer to a failed MFA authentication at GetSessionToken/AssumeRole.
pub fn mfa_failed() -> BrokerError {
    BrokerError::new(
        AwsCode::AccessDenied,
        "MultiFactorAuthentication failed with invalid MFA one time pass code.",
    )
}

fn invalid_codes() -> BrokerError {
    BrokerError::new(
        AwsCode::InvalidAuthenticationCode,
        "Authentication code for device is not valid.",
    )
}

/// A virtual device just created: the only time its seed is returned.
pub struct CreatedVirtualDevice {
    pub serial: String,
    pub base32_seed: Zeroizing<String>,
    pub otpauth_uri: Zeroizing<String>,
    pub qr_png: Zeroizing<Vec<u8>>,
}

debug_only!(CreatedVirtualDevice, "CreatedVirtualDevice" { serial });

/// A device as IAM lists it (never its seed).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeviceView {
    pub serial: String,
    /// The owner's user name; empty for root or when unassigned.
    pub user_name: String,
    pub user: Option<super::UserView>,
    pub enable_date: Option<OffsetDateTime>,
}

/// Proof that an MFA code was verified for a caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MfaProof {
    pub serial: String,
    pub verified_at: OffsetDateTime,
}

/// The AEAD binding of a device's seed: its internal id and serial.
fn seed_binding(id_and_serial: &str) -> Binding<'_> {
    Binding {
        kind: "mfa-seed",
        owner: id_and_serial,
    }
}

fn binding_owner(id: &str, serial: &str) -> String {
    format!("{id}|{serial}")
}

fn open_seed(master: &MasterKey, d: &MfaDevice) -> Option<Seed> {
    let owner = binding_owner(&d.id, &d.serial);
    let bytes = master.open(seed_binding(&owner), &d.seed_blob).ok()?;
    Seed::from_bytes(bytes).ok()
}

impl Broker {
    /// The principal that can own MFA devices; role sessions own none.
    fn owner_ref(principal: &Principal) -> Option<OwnerRef> {
        match principal {
            Principal::Root => Some(OwnerRef::Root),
            Principal::User(u) => Some(OwnerRef::User(u.id.clone())),
            Principal::AssumedRole { .. } => None,
        }
    }

    fn device_view(&self, d: &MfaDevice) -> DeviceView {
        let (user_name, user) = match &d.owner {
            Some(Owner::User(u)) => (u.name.to_string(), Some(self.user_view(u))),
            Some(Owner::Root) => (
                String::new(),
                Some(super::UserView {
                    name: String::new(),
                    path: String::new(),
                    user_id: self.account.to_string(),
                    arn: ids::root_arn(&self.account),
                    created: OffsetDateTime::UNIX_EPOCH,
                }),
            ),
            None => (String::new(), None),
        };
        DeviceView {
            serial: d.serial.clone(),
            user_name,
            user,
            enable_date: d.enabled_at,
        }
    }

    /// `CreateVirtualMfaDevice`: a fresh 160-bit seed, returned once as base32, URI and QR PNG.
    pub async fn create_virtual_mfa_device(
        &self,
        caller: &Caller,
        input: CreateVirtualMfaDevice,
    ) -> Result<CreatedVirtualDevice, BrokerError> {
        let CreateVirtualMfaDevice { name, path } = input;
        let serial = MfaSerial::virtual_device(&self.account, &path, &name).to_string();
        let resource = Resource::known(ResourceKind::MfaDevice, serial.as_str());
        self.authorize(caller, Rpc::CreateVirtualMfaDevice, &resource)
            .await?;
        let seed = Seed::generate().map_err(BrokerError::internal)?;
        let params = TotpParams::AWS;
        let label = format!("{name}@{}", self.account);
        let uri = crate::mfa::otpauth_uri(OTP_ISSUER, &label, &seed, &params)
            .map_err(|e| BrokerError::new(AwsCode::InvalidInput, e.to_string()))?;
        let png = crate::mfa::qr_png(&uri).map_err(BrokerError::internal)?;
        let id = ids::generate_unique_id("MFAD");
        let blob = self
            .master
            .seal(
                seed_binding(&binding_owner(&id, &serial)),
                seed.expose_secret(),
            )
            .map_err(BrokerError::internal)?;
        let device = MfaDevice {
            id,
            serial: serial.clone(),
            kind: DeviceKind::Virtual,
            seed_blob: blob,
            params,
            owner: None,
            enabled_at: None,
            last_step: None,
            drift: 0,
            created: self.clock.now(),
        };
        self.blocking(move |s| s.insert_mfa_devices(std::slice::from_ref(&device)))
            .await?;
        Ok(CreatedVirtualDevice {
            serial,
            base32_seed: seed.to_base32(),
            otpauth_uri: uri,
            qr_png: png,
        })
    }

    /// `ImportHardwareMfaDevices`: all tokens of a vendor seed file, or none.
    pub async fn import_hardware_mfa_devices(
        &self,
        caller: &Caller,
        input: ImportHardwareMfaDevices,
    ) -> Result<Vec<String>, BrokerError> {
        self.authorize(
            caller,
            Rpc::ImportHardwareMfaDevices,
            &Resource::all_under(ResourceKind::MfaDevices, &self.account, "/"),
        )
        .await?;
        let tokens = crate::mfa::parse_seed_file(&input.seed_file)
            .map_err(|e| BrokerError::new(AwsCode::InvalidInput, e.to_string()))?;
        let now = self.clock.now();
        let mut devices = Vec::with_capacity(tokens.len());
        for t in tokens {
            let id = ids::generate_unique_id("MFAD");
            let blob = self
                .master
                .seal(
                    seed_binding(&binding_owner(&id, &t.serial)),
                    t.seed.expose_secret(),
                )
                .map_err(BrokerError::internal)?;
            devices.push(MfaDevice {
                id,
                serial: t.serial,
                kind: DeviceKind::Hardware,
                seed_blob: blob,
                params: t.params,
                owner: None,
                enabled_at: None,
                last_step: None,
                drift: 0,
                created: now,
            });
        }
        let serials = devices.iter().map(|d| d.serial.clone()).collect();
        self.blocking(move |s| s.insert_mfa_devices(&devices))
            .await?;
        Ok(serials)
    }

    /// Whose devices a call is about: the named user, or the caller when no name is given.
    async fn mfa_target(
        &self,
        caller: &Caller,
        user_name: Option<&UserName>,
        rpc: Rpc,
    ) -> Result<(OwnerRef, String), BrokerError> {
        let t = self.key_target(caller, user_name, rpc).await?;
        Ok((t.owner, t.user_name))
    }

    async fn bind(
        &self,
        caller: &Caller,
        input: BindMfaDevice,
        resync: bool,
    ) -> Result<(), BrokerError> {
        let rpc = if resync {
            Rpc::ResyncMfaDevice
        } else {
            Rpc::EnableMfaDevice
        };
        let (owner, _) = self
            .mfa_target(caller, input.user_name.as_ref(), rpc)
            .await?;
        let master = Arc::clone(&self.master);
        let (c1, c2) = (input.code1, input.code2);
        let now = self.clock.now();
        let now_secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let window = if resync { RESYNC_WINDOW } else { ENABLE_WINDOW };
        let serial_owned = input.serial.to_string();
        let outcome = self
            .blocking(move |s| {
                s.bind_mfa_device(&serial_owned, &owner, resync, now, &mut |d| {
                    let Some(seed) = open_seed(&master, d) else {
                        return CodeVerdict::Undecryptable;
                    };
                    let (Ok(a), Ok(b)) = (
                        TotpCode::parse(c1.expose(), d.params.digits),
                        TotpCode::parse(c2.expose(), d.params.digits),
                    ) else {
                        return CodeVerdict::NoMatch;
                    };
                    let current = totp::step_for(now_secs, d.params.period);
                    match totp::resync(&seed, &d.params, &a, &b, current, window, d.last_step) {
                        Ok(r) => CodeVerdict::Accepted {
                            step: r.step,
                            drift: Some(r.drift),
                        },
                        Err(_) => CodeVerdict::NoMatch,
                    }
                })
            })
            .await?;
        match outcome {
            BindOutcome::Done => Ok(()),
            BindOutcome::CodesRejected => Err(invalid_codes()),
        }
    }

    /// `EnableMfaDevice`: binds an unassigned device to a user (or, with an empty user name, to
    /// the caller, which is how root enables its own device) after two consecutive valid codes.
    pub async fn enable_mfa_device(
        &self,
        caller: &Caller,
        input: BindMfaDevice,
    ) -> Result<(), BrokerError> {
        self.bind(caller, input, false).await
    }

    /// `ResyncMfaDevice`: re-centres a drifted device on two consecutive codes.
    pub async fn resync_mfa_device(
        &self,
        caller: &Caller,
        input: BindMfaDevice,
    ) -> Result<(), BrokerError> {
        self.bind(caller, input, true).await
    }

    /// `DeactivateMfaDevice`: unbinds a device from its user (the lost-device path).
    pub async fn deactivate_mfa_device(
        &self,
        caller: &Caller,
        input: UserDevice,
    ) -> Result<(), BrokerError> {
        let (owner, _) = self
            .mfa_target(caller, input.user_name.as_ref(), Rpc::DeactivateMfaDevice)
            .await?;
        let serial = input.serial.to_string();
        self.blocking(move |s| s.deactivate_mfa_device(&serial, &owner))
            .await
    }

    /// `DeleteVirtualMfaDevice`: removes an unassigned virtual device.
    pub async fn delete_virtual_mfa_device(
        &self,
        caller: &Caller,
        input: DeleteVirtualMfaDevice,
    ) -> Result<(), BrokerError> {
        let serial = input.serial.to_string();
        self.authorize(
            caller,
            Rpc::DeleteVirtualMfaDevice,
            &Resource::known(ResourceKind::MfaDevice, serial.as_str()),
        )
        .await?;
        self.blocking(move |s| s.delete_virtual_mfa_device(&serial))
            .await
    }

    /// `ListMfaDevices`: the devices enabled for a user (or the caller).
    pub async fn list_mfa_devices(
        &self,
        caller: &Caller,
        input: ForUser,
    ) -> Result<Vec<DeviceView>, BrokerError> {
        let (owner, _) = self
            .mfa_target(caller, input.user_name.as_ref(), Rpc::ListMfaDevices)
            .await?;
        let devices = self.blocking(move |s| s.list_mfa_devices(&owner)).await?;
        Ok(devices.iter().map(|d| self.device_view(d)).collect())
    }

    /// `ListVirtualMfaDevices` with AWS's `Assigned`/`Unassigned`/`Any`.
    pub async fn list_virtual_mfa_devices(
        &self,
        caller: &Caller,
        input: ListVirtualMfaDevices,
    ) -> Result<Vec<DeviceView>, BrokerError> {
        let filter = input.assignment;
        self.authorize(
            caller,
            Rpc::ListVirtualMfaDevices,
            &Resource::all_under(ResourceKind::MfaDevices, &self.account, "/"),
        )
        .await?;
        let devices = self
            .blocking(move |s| s.list_virtual_mfa_devices(filter))
            .await?;
        Ok(devices.iter().map(|d| self.device_view(d)).collect())
    }

    /// `GetMfaDevice`: one device enabled for a user (or the caller).
    pub async fn get_mfa_device(
        &self,
        caller: &Caller,
        input: UserDevice,
    ) -> Result<DeviceView, BrokerError> {
        let serial = input.serial;
        let (owner, _) = self
            .mfa_target(caller, input.user_name.as_ref(), Rpc::GetMfaDevice)
            .await?;
        let s2 = serial.to_string();
        let device = self.blocking(move |s| s.get_mfa_device(&s2)).await?;
        let matches = device.as_ref().is_some_and(|d| d.is_enabled_for(&owner));
        match device {
            Some(d) if matches => Ok(self.device_view(&d)),
            _ => Err(BrokerError::new(
                AwsCode::NoSuchEntity,
                format!("MFA device with serial number {serial} cannot be found."),
            )),
        }
    }

    /// `ResetMfaLockout`: clears a user's (or the caller's) failure counter and lock.
    pub async fn reset_mfa_lockout(
        &self,
        caller: &Caller,
        input: ForUser,
    ) -> Result<(), BrokerError> {
        let (owner, _) = self
            .mfa_target(caller, input.user_name.as_ref(), Rpc::ResetMfaLockout)
            .await?;
        self.blocking(move |s| s.reset_mfa_lockout(&owner)).await
    }

    /// The MFA verifier: checks `code` from the device `serial` for `caller`, under the throttling
    /// gate, the window and the replay guard, and records the outcome durably before answering.
    /// A refusal's audit record is written in the same transaction; an acceptance writes none
    /// (the use cases that issue something use [`Broker::verify_mfa_recording`]).
    pub async fn verify_mfa(
        &self,
        caller: &Caller,
        serial: &MfaSerial,
        code: &TokenCode,
        rpc: Rpc,
    ) -> Result<MfaProof, BrokerError> {
        self.verify_mfa_recording(caller, serial, code, rpc, self.clock.now(), None)
            .await
    }

    /// [`Broker::verify_mfa`] at `now`, writing `on_accept` (the record of what the call issues)
    /// in the transaction that consumes the code. When this returns `Ok`, that record is on
    /// stable storage; if it could not be written, this fails and the code is still unspent.
    pub(super) async fn verify_mfa_recording(
        &self,
        caller: &Caller,
        serial: &MfaSerial,
        code: &TokenCode,
        rpc: Rpc,
        now: OffsetDateTime,
        on_accept: Option<AuditEvent>,
    ) -> Result<MfaProof, BrokerError> {
        let action = rpc.action();
        let Some(owner) = Self::owner_ref(&caller.principal) else {
            return Err(mfa_failed());
        };
        let master = Arc::clone(&self.master);
        let code = code.clone();
        let now_secs = u64::try_from(now.unix_timestamp()).unwrap_or(0);
        let window = self.settings.mfa_window;
        let check: Box<dyn FnMut(&MfaDevice) -> CodeVerdict + Send> = Box::new(move |d| {
            let Some(seed) = open_seed(&master, d) else {
                return CodeVerdict::Undecryptable;
            };
            let Ok(code) = TotpCode::parse(code.expose(), d.params.digits) else {
                return CodeVerdict::NoMatch;
            };
            let centre = totp::centre_step(totp::step_for(now_secs, d.params.period), d.drift);
            match totp::verify(&seed, &d.params, &code, centre, window, d.last_step) {
                totp::Match::Accepted { step } => CodeVerdict::Accepted { step, drift: None },
                totp::Match::Replayed => CodeVerdict::Replayed,
                totp::Match::NoMatch => CodeVerdict::NoMatch,
            }
        });
        // The refusal's detail (`mfa refused: <reason>`) is filled in by the store's rules.
        let on_refusal = self.caller_event(caller, action, Err(&mfa_failed()), None);
        let attempt = self
            .mfa_guard
            .authenticate(MfaCheck {
                owner,
                serial: serial.to_string(),
                now: now.unix_timestamp(),
                policy: self.settings.lockout,
                check,
                audit: Some(MfaAudit {
                    on_accept,
                    on_refusal,
                }),
            })
            .await?;
        match attempt {
            MfaAttempt::Accepted { serial, .. } => Ok(MfaProof {
                serial,
                verified_at: now,
            }),
            MfaAttempt::Refused(reason) => {
                if reason == crate::domain::MfaRefusal::Undecryptable {
                    tracing::error!(%serial, "an MFA seed does not decrypt: damaged or moved row");
                }
                Err(mfa_failed())
            }
        }
    }
}
