//! Status reports (`GetAccountSummary`, the credential report) and offline root recovery.

use super::actions::{Resource, Rpc};
use super::{Broker, Caller, access_key_binding};
use crate::clock::aws_time;
use crate::domain::{AuditEvent, Outcome, OwnerRef, Quota, StoreRules};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, AccessKeyId};
use std::collections::BTreeMap;
use std::fmt::Write;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// AWS regenerates a credential report at most once every four hours.
const REPORT_REUSE: Duration = Duration::hours(4);

/// AWS's column order.
const REPORT_COLUMNS: &[&str] = &[
    "user",
    "arn",
    "user_creation_time",
    "password_enabled",
    "password_last_used",
    "password_last_changed",
    "password_next_rotation",
    "mfa_active",
    "access_key_1_active",
    "access_key_1_last_rotated",
    "access_key_1_last_used_date",
    "access_key_1_last_used_region",
    "access_key_1_last_used_service",
    "access_key_2_active",
    "access_key_2_last_rotated",
    "access_key_2_last_used_date",
    "access_key_2_last_used_region",
    "access_key_2_last_used_service",
    "cert_1_active",
    "cert_1_last_rotated",
    "cert_2_active",
    "cert_2_last_rotated",
];

/// A generated report.
#[derive(Debug, Clone)]
pub struct CredentialReport {
    pub generated: OffsetDateTime,
    pub csv: Vec<u8>,
}

/// What `recover-root` did.
pub struct RootRecovery {
    pub access_key_id: AccessKeyId,
    pub secret_access_key: Zeroizing<String>,
    pub deactivated_devices: Vec<String>,
    pub deleted_key: Option<String>,
}

debug_only!(RootRecovery, "RootRecovery" { access_key_id, deactivated_devices });

impl Broker {
    /// `GetAccountSummary`: AWS's `SummaryMap` keys for what the broker has.
    pub async fn account_summary(
        &self,
        caller: &Caller,
    ) -> Result<BTreeMap<String, i64>, BrokerError> {
        self.authorize(caller, Rpc::GetAccountSummary, &Resource::any())
            .await?;
        let c = self.blocking(|s| s.account_counts()).await?;
        let mut m = BTreeMap::new();
        m.insert("Users".to_owned(), c.users);
        m.insert("UsersQuota".to_owned(), 5000);
        m.insert(
            "AccessKeysPerUserQuota".to_owned(),
            i64::from(Quota::AccessKeysPerUser.limit()),
        );
        m.insert("MFADevices".to_owned(), c.mfa_devices);
        m.insert("MFADevicesInUse".to_owned(), c.mfa_devices_in_use);
        m.insert(
            "AccountMFAEnabled".to_owned(),
            i64::from(c.root_mfa_devices > 0),
        );
        m.insert(
            "AccountAccessKeysPresent".to_owned(),
            i64::from(c.root_access_keys > 0),
        );
        Ok(m)
    }

    fn build_report(
        &self,
        rows: &[crate::domain::CredentialRow],
        account_created: Option<OffsetDateTime>,
    ) -> Vec<u8> {
        let mut out = REPORT_COLUMNS.join(",");
        out.push('\n');
        for row in rows {
            let (user, arn, created, pw) = match &row.user {
                None => (
                    "<root_account>".to_owned(),
                    ids::root_arn(&self.account),
                    account_created.map_or_else(|| "N/A".to_owned(), aws_time),
                    [
                        "not_supported",
                        "no_information",
                        "not_supported",
                        "not_supported",
                    ],
                ),
                Some(u) => (
                    u.name.to_string(),
                    ids::user_arn(&self.account, &u.path, &u.name),
                    aws_time(u.created),
                    ["false", "N/A", "N/A", "N/A"],
                ),
            };
            let _ = write!(out, "{user},{arn},{created},{}", pw.join(","));
            let _ = write!(out, ",{}", row.mfa_active);
            for i in 0..2 {
                match row.keys.get(i) {
                    Some((active, at)) => {
                        let _ = write!(out, ",{active},{},N/A,N/A,N/A", aws_time(*at));
                    }
                    None => out.push_str(",false,N/A,N/A,N/A,N/A"),
                }
            }
            out.push_str(",false,N/A,false,N/A\n");
        }
        out.into_bytes()
    }

    /// `GenerateCredentialReport`: generates a report unless one under four hours old exists.
    /// Returns AWS's state string.
    pub async fn generate_credential_report(
        &self,
        caller: &Caller,
    ) -> Result<&'static str, BrokerError> {
        self.authorize(caller, Rpc::GenerateCredentialReport, &Resource::any())
            .await?;
        let now = self.clock.now();
        let existing = self.blocking(|s| s.credential_report()).await?;
        if existing.is_some_and(|(at, _)| now - at < REPORT_REUSE) {
            return Ok("COMPLETE");
        }
        let rows = self.blocking(|s| s.credential_rows()).await?;
        let created = self
            .blocking(|s| s.get_meta("created_at"))
            .await?
            .and_then(|v| v.parse::<i64>().ok())
            .and_then(|v| OffsetDateTime::from_unix_timestamp(v).ok());
        let csv = self.build_report(&rows, created);
        self.blocking(move |s| s.save_credential_report(now, &csv))
            .await?;
        Ok("COMPLETE")
    }

    /// `GetCredentialReport`.
    pub async fn get_credential_report(
        &self,
        caller: &Caller,
    ) -> Result<CredentialReport, BrokerError> {
        self.authorize(caller, Rpc::GetCredentialReport, &Resource::any())
            .await?;
        let (generated, csv) = self.blocking(|s| s.credential_report()).await?.ok_or_else(|| {
            BrokerError::new(
                AwsCode::ReportNotPresent,
                "Credential report does not exist. Use GenerateCredentialReport to generate a report.",
            )
        })?;
        Ok(CredentialReport { generated, csv })
    }

    /// Offline recovery of the root user (`sts-broker recover-root`): filesystem access to the data
    /// dir is the proof of authority. Deactivates every root MFA device, clears root's lockout, and
    /// issues a fresh root access key (deleting the oldest if root already has two).
    pub async fn recover_root(&self) -> Result<RootRecovery, BrokerError> {
        let devices = self
            .blocking(|s| s.list_mfa_devices(&OwnerRef::Root))
            .await?;
        let mut deactivated = Vec::new();
        for d in devices {
            let serial = d.serial.clone();
            self.blocking(move |s| s.deactivate_mfa_device(&serial, &OwnerRef::Root))
                .await?;
            deactivated.push(d.serial);
        }
        self.blocking(|s| s.reset_mfa_lockout(&OwnerRef::Root))
            .await?;
        let keys = self
            .blocking(|s| s.list_access_keys(&OwnerRef::Root))
            .await?;
        let mut deleted_key = None;
        let at_quota =
            u32::try_from(keys.len()).unwrap_or(u32::MAX) >= Quota::AccessKeysPerUser.limit();
        if at_quota && let Some(oldest) = keys.first() {
            let id = oldest.id.clone();
            self.blocking_identity_change(move |s| s.delete_access_key(&OwnerRef::Root, &id))
                .await?;
            deleted_key = Some(oldest.id.to_string());
        }
        let id = AccessKeyId::generate_long_term();
        let secret = crate::crypto::random_secret_access_key();
        let blob = self
            .master
            .seal(access_key_binding(&id, "root"), secret.as_bytes())
            .map_err(BrokerError::internal)?;
        let now = self.clock.now();
        let kid = id.clone();
        self.blocking(move |s| s.create_access_key(&OwnerRef::Root, &kid, &blob, now))
            .await?;
        let detail = format!(
            "root recovered offline: deactivated {} MFA device(s){}",
            deactivated.len(),
            deleted_key
                .as_deref()
                .map(|k| format!("; deleted oldest root key {k}"))
                .unwrap_or_default()
        );
        self.audit
            .record(AuditEvent {
                at: now,
                principal: Some(ids::root_arn(&self.account)),
                access_key_id: Some(id.to_string()),
                action: "sts-broker:RecoverRoot".to_owned(),
                source: Some("local".to_owned()),
                outcome: Outcome::Success,
                error_code: None,
                detail: Some(detail),
                count: 1,
                last_at: None,
            })
            .await;
        self.audit.flush().await;
        Ok(RootRecovery {
            access_key_id: id,
            secret_access_key: secret,
            deactivated_devices: deactivated,
            deleted_key,
        })
    }
}
