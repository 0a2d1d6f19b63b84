//! `sts-broker iam <action>`: one subcommand per IamService RPC, spelled and shaped like the aws
//! CLI's. Operations AWS answers with an empty output print nothing (`None`).

use super::{CallError, output};
use crate::client::Client;
use crate::proto::iam::v1 as pb;
use anyhow::Context;
use base64::Engine;
use clap::{Subcommand, ValueEnum};
use serde_json::{Value, json};
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// Signs `$req` for the gRPC path `/iam.v1.IamService/$op` (`$op` is the proto's rpc name), calls
/// `$method` and unwraps the answer; a failure returns from the enclosing function as a
/// [`CallError`].
macro_rules! rpc {
    ($c:expr, $method:ident, $op:literal, $req:expr) => {
        $c.iam()
            .$method($c.signed(concat!("/iam.v1.IamService/", $op), $req)?)
            .await?
            .into_inner()
    };
}

/// Which secret `create-virtual-mfa-device --outfile` writes (the aws CLI's choices).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum BootstrapMethod {
    /// The QR code as a PNG image.
    #[value(name = "QRCodePNG")]
    QrCodePng,
    /// The seed as base32 text.
    #[value(name = "Base32StringSeed")]
    Base32StringSeed,
}

#[derive(Debug, Subcommand)]
pub enum IamAction {
    CreateUser {
        #[arg(long)]
        user_name: String,
        #[arg(long)]
        path: Option<String>,
    },
    GetUser {
        #[arg(long)]
        user_name: Option<String>,
    },
    ListUsers {
        #[arg(long)]
        path_prefix: Option<String>,
        #[arg(long)]
        max_items: Option<i32>,
        #[arg(long)]
        starting_token: Option<String>,
    },
    DeleteUser {
        #[arg(long)]
        user_name: String,
    },
    CreateAccessKey {
        #[arg(long)]
        user_name: Option<String>,
    },
    ListAccessKeys {
        #[arg(long)]
        user_name: Option<String>,
    },
    UpdateAccessKey {
        #[arg(long)]
        user_name: Option<String>,
        #[arg(long)]
        access_key_id: String,
        /// Active or Inactive.
        #[arg(long)]
        status: String,
    },
    DeleteAccessKey {
        #[arg(long)]
        user_name: Option<String>,
        #[arg(long)]
        access_key_id: String,
    },
    /// Create a virtual MFA device.
    ///
    /// With --outfile, write the secret chosen by --bootstrap-method there (mode 0600, never over
    /// an existing file) and print only the serial number; without it, print the seed and the QR
    /// PNG (base64) too.
    CreateVirtualMfaDevice {
        #[arg(long)]
        virtual_mfa_device_name: String,
        #[arg(long)]
        path: Option<String>,
        /// File to write the secret chosen by --bootstrap-method to.
        #[arg(long, requires = "bootstrap_method")]
        outfile: Option<PathBuf>,
        #[arg(long, requires = "outfile")]
        bootstrap_method: Option<BootstrapMethod>,
        /// Also draw the otpauth URI as a QR code on stderr (light on a dark terminal).
        #[arg(long)]
        show_qr: bool,
    },
    /// Enable an MFA device for a user with two consecutive codes.
    EnableMfaDevice {
        #[command(flatten)]
        codes: DeviceCodes,
    },
    /// Resynchronise an MFA device with two consecutive codes.
    ResyncMfaDevice {
        #[command(flatten)]
        codes: DeviceCodes,
    },
    /// Deactivate an MFA device and detach it from its user.
    DeactivateMfaDevice {
        #[arg(long)]
        serial_number: String,
        #[arg(long)]
        user_name: Option<String>,
    },
    /// Delete a deactivated virtual MFA device.
    DeleteVirtualMfaDevice {
        #[arg(long)]
        serial_number: String,
    },
    /// List a user's MFA devices (the caller's by default).
    ListMfaDevices {
        #[arg(long)]
        user_name: Option<String>,
    },
    /// List the account's virtual MFA devices.
    ListVirtualMfaDevices {
        #[arg(long, value_parser = ["Assigned", "Unassigned", "Any"])]
        assignment_status: Option<String>,
    },
    /// Show one MFA device.
    GetMfaDevice {
        #[arg(long)]
        serial_number: String,
        #[arg(long)]
        user_name: Option<String>,
    },
    /// Register hardware TOTP tokens from the vendor's seed file
    /// (`serial,seed,digits,period,algorithm` per line).
    ImportHardwareMfaDevices {
        /// `file://PATH` or a plain path.
        #[arg(long)]
        seed_file: String,
    },
    /// Clear a user's MFA failure counter and lockout.
    ResetMfaLockout {
        #[arg(long)]
        user_name: Option<String>,
    },
    /// Count the account's IAM entities.
    GetAccountSummary,
    /// Generate the credential report.
    GenerateCredentialReport,
    /// Fetch the credential report (Content is the CSV, base64-encoded).
    GetCredentialReport,
}

/// The arguments EnableMFADevice and ResyncMFADevice share.
#[derive(Debug, clap::Args)]
pub struct DeviceCodes {
    #[arg(long)]
    user_name: String,
    #[arg(long)]
    serial_number: String,
    /// A code the device shows.
    #[arg(long, alias = "authentication-code-1")]
    authentication_code1: String,
    /// The code the device shows next.
    #[arg(long, alias = "authentication-code-2")]
    authentication_code2: String,
}

/// Runs `action`; `None` when the operation has no output.
pub(super) async fn call(c: &Client, action: IamAction) -> Result<Option<Value>, CallError> {
    use IamAction as A;
    Ok(Some(match action {
        A::CreateUser { user_name, path } => {
            let r = rpc!(
                c,
                create_user,
                "CreateUser",
                pb::CreateUserRequest { user_name, path }
            );
            json!({ "User": r.user.map(|u| output::user(&u)) })
        }
        A::GetUser { user_name } => {
            let r = rpc!(c, get_user, "GetUser", pb::GetUserRequest { user_name });
            json!({ "User": r.user.map(|u| output::user(&u)) })
        }
        A::ListUsers {
            path_prefix,
            max_items,
            starting_token,
        } => {
            let req = pb::ListUsersRequest {
                path_prefix,
                marker: starting_token,
                max_items,
            };
            let r = rpc!(c, list_users, "ListUsers", req);
            let mut v = json!({ "Users": r.users.iter().map(output::user).collect::<Vec<_>>() });
            if let Some(m) = r.marker {
                v["NextToken"] = json!(m);
            }
            v
        }
        A::DeleteUser { user_name } => {
            rpc!(
                c,
                delete_user,
                "DeleteUser",
                pb::DeleteUserRequest { user_name }
            );
            return Ok(None);
        }
        A::CreateAccessKey { user_name } => {
            let req = pb::CreateAccessKeyRequest { user_name };
            let k = rpc!(c, create_access_key, "CreateAccessKey", req)
                .access_key
                .unwrap_or_default();
            json!({ "AccessKey": {
                "UserName": k.user_name,
                "AccessKeyId": k.access_key_id,
                "Status": k.status,
                "SecretAccessKey": k.secret_access_key,
                "CreateDate": output::time(k.create_date.as_ref()),
            }})
        }
        A::ListAccessKeys { user_name } => {
            let req = pb::ListAccessKeysRequest {
                user_name,
                marker: None,
                max_items: None,
            };
            let r = rpc!(c, list_access_keys, "ListAccessKeys", req);
            json!({ "AccessKeyMetadata": r.access_key_metadata.iter().map(|k| json!({
                "UserName": k.user_name,
                "AccessKeyId": k.access_key_id,
                "Status": k.status,
                "CreateDate": output::time(k.create_date.as_ref()),
            })).collect::<Vec<_>>() })
        }
        A::UpdateAccessKey {
            user_name,
            access_key_id,
            status,
        } => {
            let req = pb::UpdateAccessKeyRequest {
                user_name,
                access_key_id,
                status,
            };
            rpc!(c, update_access_key, "UpdateAccessKey", req);
            return Ok(None);
        }
        A::DeleteAccessKey {
            user_name,
            access_key_id,
        } => {
            let req = pb::DeleteAccessKeyRequest {
                user_name,
                access_key_id,
            };
            rpc!(c, delete_access_key, "DeleteAccessKey", req);
            return Ok(None);
        }
        A::CreateVirtualMfaDevice {
            virtual_mfa_device_name,
            path,
            outfile,
            bootstrap_method,
            show_qr,
        } => {
            // Claim the file before the device exists: a refusal then leaves nothing behind.
            let out = match (outfile, bootstrap_method) {
                (Some(f), Some(m)) => Some((Outfile::claim(f).map_err(CallError::Local)?, m)),
                _ => None,
            };
            let req = pb::CreateVirtualMfaDeviceRequest {
                virtual_mfa_device_name,
                path,
            };
            let d = rpc!(c, create_virtual_mfa_device, "CreateVirtualMfaDevice", req)
                .virtual_mfa_device
                .unwrap_or_default();
            let serial = d.serial_number;
            let seed = Zeroizing::new(d.base32_string_seed);
            let png = Zeroizing::new(d.qr_code_png);
            let uri = Zeroizing::new(d.otpauth_uri);
            if show_qr {
                draw_qr(&uri);
            }
            match out {
                Some((file, method)) => {
                    let bytes: &[u8] = match method {
                        BootstrapMethod::QrCodePng => &png,
                        BootstrapMethod::Base32StringSeed => seed.as_bytes(),
                    };
                    file.write(bytes).map_err(|e| {
                        CallError::Local(e.context(format!("virtual MFA device {serial} created")))
                    })?;
                    json!({ "VirtualMFADevice": { "SerialNumber": serial } })
                }
                None => json!({ "VirtualMFADevice": {
                    "SerialNumber": serial,
                    "Base32StringSeed": seed.as_str(),
                    "QRCodePNG": base64::engine::general_purpose::STANDARD.encode(&*png),
                }}),
            }
        }
        A::EnableMfaDevice { codes } => {
            rpc!(c, enable_mfa_device, "EnableMfaDevice", codes.enable());
            return Ok(None);
        }
        A::ResyncMfaDevice { codes } => {
            rpc!(c, resync_mfa_device, "ResyncMfaDevice", codes.resync());
            return Ok(None);
        }
        A::DeactivateMfaDevice {
            serial_number,
            user_name,
        } => {
            let req = pb::DeactivateMfaDeviceRequest {
                user_name,
                serial_number,
            };
            rpc!(c, deactivate_mfa_device, "DeactivateMfaDevice", req);
            return Ok(None);
        }
        A::DeleteVirtualMfaDevice { serial_number } => {
            let req = pb::DeleteVirtualMfaDeviceRequest { serial_number };
            rpc!(c, delete_virtual_mfa_device, "DeleteVirtualMfaDevice", req);
            return Ok(None);
        }
        A::ListMfaDevices { user_name } => {
            let req = pb::ListMfaDevicesRequest {
                user_name,
                marker: None,
                max_items: None,
            };
            let r = rpc!(c, list_mfa_devices, "ListMfaDevices", req);
            let devices: Vec<_> = r.mfa_devices.iter().map(output::mfa_device).collect();
            json!({ "MFADevices": devices })
        }
        A::ListVirtualMfaDevices { assignment_status } => {
            let req = pb::ListVirtualMfaDevicesRequest {
                assignment_status,
                marker: None,
                max_items: None,
            };
            let r = rpc!(c, list_virtual_mfa_devices, "ListVirtualMfaDevices", req);
            let devices: Vec<_> = r
                .virtual_mfa_devices
                .iter()
                .map(output::virtual_mfa_device)
                .collect();
            json!({ "VirtualMFADevices": devices })
        }
        A::GetMfaDevice {
            serial_number,
            user_name,
        } => {
            let req = pb::GetMfaDeviceRequest {
                serial_number,
                user_name,
            };
            let r = rpc!(c, get_mfa_device, "GetMfaDevice", req);
            let mut v = json!({ "UserName": r.user_name, "SerialNumber": r.serial_number });
            if r.enable_date.is_some() {
                v["EnableDate"] = output::time(r.enable_date.as_ref());
            }
            if !r.certifications.is_empty() {
                v["Certifications"] = json!(r.certifications);
            }
            v
        }
        A::ImportHardwareMfaDevices { seed_file } => {
            let seed_file = read_seed_file(&seed_file).map_err(CallError::Local)?;
            let req = pb::ImportHardwareMfaDevicesRequest {
                seed_file: seed_file.to_string(),
            };
            let r = rpc!(
                c,
                import_hardware_mfa_devices,
                "ImportHardwareMfaDevices",
                req
            );
            json!({ "SerialNumbers": r.serial_numbers })
        }
        A::ResetMfaLockout { user_name } => {
            let req = pb::ResetMfaLockoutRequest { user_name };
            rpc!(c, reset_mfa_lockout, "ResetMfaLockout", req);
            return Ok(None);
        }
        A::GetAccountSummary => {
            let req = pb::GetAccountSummaryRequest {};
            let r = rpc!(c, get_account_summary, "GetAccountSummary", req);
            let map: serde_json::Map<String, Value> = r
                .summary_map
                .into_iter()
                .map(|(k, v)| (k, json!(v)))
                .collect();
            json!({ "SummaryMap": map })
        }
        A::GenerateCredentialReport => {
            let req = pb::GenerateCredentialReportRequest {};
            let r = rpc!(
                c,
                generate_credential_report,
                "GenerateCredentialReport",
                req
            );
            json!({ "State": r.state, "Description": r.description })
        }
        A::GetCredentialReport => {
            let req = pb::GetCredentialReportRequest {};
            let r = rpc!(c, get_credential_report, "GetCredentialReport", req);
            json!({
                "Content": base64::engine::general_purpose::STANDARD.encode(&r.content),
                "ReportFormat": r.report_format,
                "GeneratedTime": output::time(r.generated_time.as_ref()),
            })
        }
    }))
}

impl DeviceCodes {
    fn enable(self) -> pb::EnableMfaDeviceRequest {
        pb::EnableMfaDeviceRequest {
            user_name: self.user_name,
            serial_number: self.serial_number,
            authentication_code1: self.authentication_code1,
            authentication_code2: self.authentication_code2,
        }
    }

    fn resync(self) -> pb::ResyncMfaDeviceRequest {
        pb::ResyncMfaDeviceRequest {
            user_name: self.user_name,
            serial_number: self.serial_number,
            authentication_code1: self.authentication_code1,
            authentication_code2: self.authentication_code2,
        }
    }
}

/// A new, empty mode-0600 file claimed for a secret; removed again unless written.
struct Outfile {
    path: PathBuf,
    file: Option<File>,
}

impl Outfile {
    fn claim(path: PathBuf) -> anyhow::Result<Self> {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    anyhow::anyhow!(
                        "refusing to overwrite existing file `{}`; choose another --outfile",
                        path.display()
                    )
                } else {
                    anyhow::Error::new(e).context(format!("cannot create `{}`", path.display()))
                }
            })?;
        Ok(Self {
            path,
            file: Some(file),
        })
    }

    fn write(mut self, bytes: &[u8]) -> anyhow::Result<()> {
        let mut file = self.file.take().context("outfile already written")?;
        let written = file.write_all(bytes).and_then(|()| file.sync_all());
        if let Err(e) = written {
            let _ = std::fs::remove_file(&self.path);
            return Err(
                anyhow::Error::new(e).context(format!("cannot write `{}`", self.path.display()))
            );
        }
        Ok(())
    }
}

impl Drop for Outfile {
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// The contents of `--seed-file`, given as `file://PATH` (as aws takes file arguments) or a path.
fn read_seed_file(arg: &str) -> anyhow::Result<Zeroizing<String>> {
    let path = Path::new(arg.strip_prefix("file://").unwrap_or(arg));
    std::fs::read_to_string(path)
        .map(Zeroizing::new)
        .with_context(|| format!("cannot read seed file `{}`", path.display()))
}

/// Draws `uri` as a QR code on stderr, light modules as blocks so it scans on a dark terminal.
fn draw_qr(uri: &str) {
    use qrcode::render::unicode::Dense1x2;
    match qrcode::QrCode::new(uri.as_bytes()) {
        Ok(code) => {
            let image = Zeroizing::new(
                code.render::<Dense1x2>()
                    .dark_color(Dense1x2::Light)
                    .light_color(Dense1x2::Dark)
                    .build(),
            );
            eprintln!("{}", image.as_str());
        }
        Err(e) => eprintln!("warning: cannot draw the QR code: {e}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    fn parse(args: &[&str]) -> Result<IamAction, clap::Error> {
        #[derive(Debug, Parser)]
        struct T {
            #[command(subcommand)]
            a: IamAction,
        }
        T::try_parse_from(std::iter::once("t").chain(args.iter().copied())).map(|t| t.a)
    }

    #[test]
    fn authentication_codes_take_both_spellings() {
        for (one, two) in [
            ("--authentication-code1", "--authentication-code2"),
            ("--authentication-code-1", "--authentication-code-2"),
        ] {
            let a = parse(&[
                "enable-mfa-device",
                "--user-name",
                "alice",
                "--serial-number",
                "S",
                one,
                "111111",
                two,
                "222222",
            ])
            .unwrap();
            let IamAction::EnableMfaDevice { codes } = a else {
                unreachable!()
            };
            assert_eq!(codes.authentication_code1, "111111");
            assert_eq!(codes.authentication_code2, "222222");
        }
    }

    #[test]
    fn outfile_and_bootstrap_method_come_together() {
        let base = [
            "create-virtual-mfa-device",
            "--virtual-mfa-device-name",
            "d",
        ];
        assert!(parse(&[&base[..], &["--outfile", "f"]].concat()).is_err());
        assert!(parse(&[&base[..], &["--bootstrap-method", "QRCodePNG"]].concat()).is_err());
        assert!(
            parse(&[&base[..], &["--outfile", "f", "--bootstrap-method", "qr"]].concat()).is_err()
        );
        let a = parse(
            &[
                &base[..],
                &["--outfile", "f", "--bootstrap-method", "Base32StringSeed"],
            ]
            .concat(),
        )
        .unwrap();
        assert!(matches!(
            a,
            IamAction::CreateVirtualMfaDevice {
                bootstrap_method: Some(BootstrapMethod::Base32StringSeed),
                ..
            }
        ));
    }

    #[test]
    fn seed_files_are_read_from_file_urls_and_paths() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("seeds.csv");
        std::fs::write(&f, "X\n").unwrap();
        let url = format!("file://{}", f.display());
        assert_eq!(read_seed_file(&url).unwrap().as_str(), "X\n");
        assert_eq!(
            read_seed_file(&f.display().to_string()).unwrap().as_str(),
            "X\n"
        );
        let e = read_seed_file("file:///nonexistent/seeds").unwrap_err();
        assert!(format!("{e:#}").contains("/nonexistent/seeds"));
    }

    #[test]
    fn an_outfile_is_private_never_overwritten_and_removed_unless_written() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("seed");
        let claimed = Outfile::claim(f.clone()).unwrap();
        let e = Outfile::claim(f.clone()).err().unwrap().to_string();
        assert!(e.contains("refusing to overwrite"), "{e}");
        drop(claimed);
        assert!(!f.exists(), "an unwritten claim is removed");
        Outfile::claim(f.clone()).unwrap().write(b"abc").unwrap();
        assert_eq!(std::fs::read(&f).unwrap(), b"abc");
        let mode = std::fs::metadata(&f).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
}
