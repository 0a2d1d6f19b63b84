//! Persistence. The only module with SQL; it returns domain types, never rows.
//!
//! [`Store`] is the seam for a second backend; [`sqlite::SqliteStore`] is the embedded default.
//! Methods are blocking: the broker calls them from `spawn_blocking`, never on the async executor.
//! Secrets arrive here already sealed by the broker (`crypto`), so the store never sees plaintext.

pub mod migrations;
pub mod sqlite;

use crate::ids::{AccessKeyId, IamPath, KeyStatus, UserName};
use time::OffsetDateTime;

/// Store failures. The message strings of the first four are AWS's wording and reach the caller.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    AlreadyExists(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("cannot open the store: {0}")]
    Open(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("store invariant broken: {0}")]
    Internal(String),
}

/// An IAM user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// The unique id (`AIDA...`).
    pub id: String,
    pub name: UserName,
    pub path: IamPath,
    pub created: OffsetDateTime,
}

/// Who a long-term access key belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Root,
    User(User),
}

impl Owner {
    /// The identity string that secrets of this owner are bound to.
    pub fn binding_id(&self) -> &str {
        match self {
            Self::Root => "root",
            Self::User(u) => &u.id,
        }
    }
}

/// A reference to a principal that can own keys, without its details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OwnerRef {
    Root,
    /// The user's unique id.
    User(String),
}

/// A long-term access key as stored: the secret is an AEAD blob.
#[derive(Debug, Clone)]
pub struct AccessKeyRecord {
    pub id: AccessKeyId,
    pub owner: Owner,
    pub secret_blob: Vec<u8>,
    pub status: KeyStatus,
    pub created: OffsetDateTime,
}

/// One page of a listing; `next_marker` is set when more items follow.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    pub next_marker: Option<String>,
}

/// How a call or an authentication attempt ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Success => "success",
            Self::Failure => "failure",
        }
    }
}

/// One audit record. Never carries secrets, signatures, seeds or codes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEvent {
    pub at: OffsetDateTime,
    /// The caller's ARN when it was established.
    pub principal: Option<String>,
    /// The access key id the caller presented, if any.
    pub access_key_id: Option<String>,
    /// The IAM action, e.g. `iam:CreateUser`, or the RPC path when it is unknown.
    pub action: String,
    /// The peer address.
    pub source: Option<String>,
    pub outcome: Outcome,
    /// The AWS error code on failure.
    pub error_code: Option<String>,
    /// Extra non-secret detail (e.g. why an authentication failed).
    pub detail: Option<String>,
}

/// The broker's persistent state.
pub trait Store: Send + Sync + 'static {
    /// A value from the key/value metadata table.
    fn get_meta(&self, key: &str) -> Result<Option<String>, StoreError>;

    /// First-start initialisation in one transaction: metadata and the root user's first key.
    /// Fails if the store is already initialised.
    fn initialise(
        &self,
        meta: &[(&str, &str)],
        root_key: &AccessKeyId,
        root_secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;

    fn create_user(&self, user: &User) -> Result<(), StoreError>;
    fn get_user(&self, name: &UserName) -> Result<Option<User>, StoreError>;
    fn list_users(
        &self,
        path_prefix: &str,
        marker: Option<&str>,
        max_items: usize,
    ) -> Result<Page<User>, StoreError>;
    /// Deletes a user that owns nothing; AWS's `DeleteConflict` otherwise.
    fn delete_user(&self, name: &UserName) -> Result<(), StoreError>;

    /// Adds a key for `owner`, refusing a third one (`LimitExceeded`).
    fn create_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        secret_blob: &[u8],
        now: OffsetDateTime,
    ) -> Result<(), StoreError>;
    /// The key with its owner, for authentication.
    fn get_access_key(&self, id: &AccessKeyId) -> Result<Option<AccessKeyRecord>, StoreError>;
    fn list_access_keys(&self, owner: &OwnerRef) -> Result<Vec<AccessKeyRecord>, StoreError>;
    /// Sets the status of `owner`'s key `id`; `NotFound` when `owner` has no such key.
    fn update_access_key(
        &self,
        owner: &OwnerRef,
        id: &AccessKeyId,
        status: KeyStatus,
    ) -> Result<(), StoreError>;
    fn delete_access_key(&self, owner: &OwnerRef, id: &AccessKeyId) -> Result<(), StoreError>;

    /// Appends audit records in one transaction.
    fn append_audit(&self, events: &[AuditEvent]) -> Result<(), StoreError>;
    /// The newest `limit` audit records, newest first.
    fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, StoreError>;
}
