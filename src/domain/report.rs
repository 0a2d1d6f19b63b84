//! What `GetAccountSummary` and the credential report are built from.

use super::User;
use time::OffsetDateTime;

/// Counts for `GetAccountSummary`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AccountCounts {
    pub users: i64,
    pub mfa_devices: i64,
    pub mfa_devices_in_use: i64,
    pub root_mfa_devices: i64,
    pub root_access_keys: i64,
}

/// One principal's line of the credential report.
#[derive(Debug, Clone)]
pub struct CredentialRow {
    /// `None` for the root user.
    pub user: Option<User>,
    pub mfa_active: bool,
    /// Up to two keys, oldest first: (active, created).
    pub keys: Vec<(bool, OffsetDateTime)>,
}
