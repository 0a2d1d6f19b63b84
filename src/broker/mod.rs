//! Use cases. Each call is orchestrated here: authenticate → authorize → act → audit.
//!
//! The broker knows nothing of gRPC: it takes parsed requests and returns domain values or a
//! [`BrokerError`]. Blocking store calls run on tokio's blocking pool, except the MFA checks of
//! GetSessionToken/AssumeRole, which the replay guard's writer thread commits in groups
//! ([`mfa_guard`]).

pub mod actions;
pub mod audit;
mod auth;
mod cache;
mod iam;
mod mfa;
pub mod mfa_guard;
mod policies;
mod report;
mod sts;

pub use auth::{Identified, SignedCall};
pub use iam::{AccessKeyView, CreatedAccessKey, UserView};
pub use mfa::{CreatedVirtualDevice, DeviceView, MfaProof, OTP_ISSUER, mfa_failed};
pub use policies::{AuthorizeAnswer, SimulationResult, source_type_name};
pub use report::{CredentialReport, RootRecovery};
pub use sts::{IssuedCredentials, SessionKeys};

use crate::clock::SharedClock;
use crate::crypto::{Binding, MasterKey};
use crate::domain::{AuditEvent, Outcome, Store, StoreError, User};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{AccessKeyId, AccountId};
use audit::AuditSink;
use mfa_guard::MfaGuard;
use std::net::SocketAddr;
use std::sync::Arc;

/// The AEAD binding of an access key's secret: the key id and its owner.
pub fn access_key_binding<'a>(id: &'a AccessKeyId, owner: &'a str) -> Binding<'a> {
    // The owner is folded into `kind` so both identities are in the associated data.
    Binding {
        kind: owner,
        owner: id.as_str(),
    }
}

/// Settings the broker needs at run time.
#[derive(Debug, Clone)]
pub struct BrokerSettings {
    /// The region callers must sign for.
    pub region: String,
    /// TOTP steps accepted either side of a device's recorded drift.
    pub mfa_window: u32,
    /// Throttling of MFA failures.
    pub lockout: crate::mfa::lockout::LockoutPolicy,
    /// Whether the listener uses TLS (`aws:SecureTransport`).
    pub tls: bool,
}

impl BrokerSettings {
    /// Defaults for `region`: one step of window, NIST-style lockout.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            mfa_window: crate::mfa::totp::DEFAULT_WINDOW,
            lockout: crate::mfa::lockout::LockoutPolicy::default(),
            tls: false,
        }
    }
}

/// Who a principal is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    Root,
    User(User),
    /// A session of a role obtained with AssumeRole.
    AssumedRole {
        role: crate::domain::Role,
        session_name: String,
    },
}

/// What a caller signing with temporary credentials carries.
#[derive(Debug, Clone)]
pub struct SessionInfo {
    pub claims: crate::credentials::SessionClaims,
}

impl SessionInfo {
    /// When MFA was verified for this session, if it was.
    pub fn mfa_auth_time(&self) -> Option<i64> {
        self.claims
            .mfa_present()
            .then_some(self.claims.auth_time)
            .flatten()
    }
}

/// An authenticated caller.
#[derive(Debug, Clone)]
pub struct Caller {
    pub principal: Principal,
    /// The caller's ARN.
    pub arn: String,
    /// AWS's `UserId`: the account id for root, the unique id (`AIDA...`) for a user.
    pub user_id: String,
    /// The access key id the call was signed with.
    pub access_key_id: AccessKeyId,
    /// The peer address.
    pub source: Option<SocketAddr>,
    /// Set when the call was signed with temporary credentials.
    pub session: Option<SessionInfo>,
}

/// The broker.
pub struct Broker {
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    clock: SharedClock,
    account: AccountId,
    settings: BrokerSettings,
    audit: AuditSink,
    mfa_guard: MfaGuard,
    mfa_guard_thread: std::sync::Mutex<Option<std::thread::JoinHandle<()>>>,
    sessions: SessionKeys,
    policy_cache: policies::PolicyCache,
    identities: cache::IdentityCache,
}

impl std::fmt::Debug for Broker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Broker")
            .field("account", &self.account)
            .field("settings", &self.settings)
            .finish_non_exhaustive()
    }
}

impl Broker {
    pub fn new(
        store: Arc<dyn Store>,
        master: Arc<MasterKey>,
        clock: SharedClock,
        account: AccountId,
        settings: BrokerSettings,
        audit: AuditSink,
        sessions: SessionKeys,
    ) -> Self {
        // The replay guard's writer starts with the broker and is stopped by `close_mfa_guard`
        // (or, at the latest, when the broker is dropped).
        let (mfa_guard, mfa_guard_thread) = MfaGuard::start(Arc::clone(&store));
        Self {
            store,
            master,
            clock,
            account,
            settings,
            audit,
            mfa_guard,
            mfa_guard_thread: std::sync::Mutex::new(mfa_guard_thread),
            sessions,
            policy_cache: policies::PolicyCache::default(),
            identities: cache::IdentityCache::default(),
        }
    }

    pub fn account(&self) -> &AccountId {
        &self.account
    }

    pub fn region(&self) -> &str {
        &self.settings.region
    }

    pub fn clock(&self) -> &SharedClock {
        &self.clock
    }

    /// Commits the audit trail and stops its writer (at shutdown).
    pub async fn close_audit(&self) {
        self.audit.close().await;
    }

    /// Answers every queued MFA check, stops the replay guard's writer and waits for it to end
    /// (at shutdown, once no call is in flight). MFA checks fail afterwards.
    pub async fn close_mfa_guard(&self) {
        self.mfa_guard.close().await;
        let thread = self.mfa_guard_thread.lock().ok().and_then(|mut t| t.take());
        if let Some(t) = thread
            && tokio::task::spawn_blocking(move || t.join())
                .await
                .map_or(true, |joined| joined.is_err())
        {
            tracing::error!("the MFA replay-guard writer ended abnormally");
        }
    }

    /// Waits until every audit event recorded so far is committed.
    pub async fn flush_audit(&self) {
        self.audit.flush().await;
    }

    /// The newest audit records, newest first.
    pub async fn recent_audit(&self, limit: usize) -> Result<Vec<AuditEvent>, BrokerError> {
        self.blocking(move |s| s.recent_audit(limit)).await
    }

    /// A store record through the identity cache (see `cache.rs`); misses are not remembered.
    async fn cached<V, F>(&self, id: &str, read: F) -> Result<Option<Arc<V>>, BrokerError>
    where
        V: cache::Cached + Send + Sync + 'static,
        F: FnOnce(&dyn Store) -> Result<Option<V>, StoreError> + Send + 'static,
    {
        if let Some(v) = self.identities.get::<V>(id) {
            return Ok(Some(v));
        }
        let generation = self.identities.generation();
        let Some(v) = self.blocking(read).await? else {
            return Ok(None);
        };
        let v = Arc::new(v);
        self.identities.put(generation, id, Arc::clone(&v));
        Ok(Some(v))
    }

    /// [`Broker::blocking`] for a write that changes or removes access keys, users or roles: the
    /// identity cache is emptied after it, whether or not it succeeded.
    async fn blocking_identity_change<T, F>(&self, f: F) -> Result<T, BrokerError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let r = self.blocking(f).await;
        self.identities.invalidate();
        r
    }

    /// Runs a store call on the blocking pool.
    async fn blocking<T, F>(&self, f: F) -> Result<T, BrokerError>
    where
        T: Send + 'static,
        F: FnOnce(&dyn Store) -> Result<T, StoreError> + Send + 'static,
    {
        let store = Arc::clone(&self.store);
        tokio::task::spawn_blocking(move || f(store.as_ref()))
            .await
            .map_err(BrokerError::internal)?
            .map_err(BrokerError::from)
    }

    /// Records the outcome of an authenticated call.
    pub async fn audit_call(
        &self,
        caller: &Caller,
        action: &str,
        result: Result<(), &BrokerError>,
    ) {
        self.audit_caller(caller, action, result, None).await;
    }

    /// Records an event about `caller`, with optional non-secret detail.
    pub(super) async fn audit_caller(
        &self,
        caller: &Caller,
        action: &str,
        result: Result<(), &BrokerError>,
        detail: Option<String>,
    ) {
        let (outcome, code) = match result {
            Ok(()) => (Outcome::Success, None),
            Err(e) => (Outcome::Failure, Some(e.code.as_str().to_owned())),
        };
        self.audit
            .record(AuditEvent {
                at: self.clock.now(),
                principal: Some(caller.arn.clone()),
                access_key_id: Some(caller.access_key_id.to_string()),
                action: action.to_owned(),
                source: caller.source.map(|s| s.to_string()),
                outcome,
                error_code: code,
                detail,
            })
            .await;
    }

    /// AWS's rules for GetSessionToken credentials: no IAM action unless the session has MFA
    /// (AWS answers `InvalidClientTokenId` there), and no STS action but `AssumeRole` and
    /// `GetCallerIdentity` (and the broker's own `Authorize`).
    fn temporary_credential_limits(caller: &Caller, action: &str) -> Result<(), BrokerError> {
        let Some(session) = &caller.session else {
            return Ok(());
        };
        if session.claims.kind != crate::credentials::SessionKind::Session {
            return Ok(());
        }
        if action.starts_with("iam:") && session.mfa_auth_time().is_none() {
            return Err(BrokerError::new(
                AwsCode::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            ));
        }
        if action == "sts:GetSessionToken" {
            return Err(BrokerError::new(
                AwsCode::AccessDenied,
                "Cannot call GetSessionToken with session credentials",
            ));
        }
        if action.starts_with("sts:")
            && !matches!(
                action,
                "sts:AssumeRole" | "sts:GetCallerIdentity" | "sts:Authorize"
            )
        {
            return Err(BrokerError::access_denied(&caller.arn, action, "*"));
        }
        Ok(())
    }

    /// `GetCallerIdentity`: the account, ARN and user id of the caller.
    pub async fn get_caller_identity(
        &self,
        caller: &Caller,
    ) -> Result<(String, String, String), BrokerError> {
        self.authorize(caller, "sts:GetCallerIdentity", "*").await?;
        Ok((
            self.account.to_string(),
            caller.arn.clone(),
            caller.user_id.clone(),
        ))
    }
}

/// A request field that is required but was empty.
pub fn required(field: &'static str) -> BrokerError {
    BrokerError::new(
        AwsCode::ValidationError,
        format!(
            "1 validation error detected: Value null at '{field}' failed to satisfy constraint: Member must not be null"
        ),
    )
}
