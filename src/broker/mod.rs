//! Use cases. Each call is orchestrated here: authenticate → authorize → act → audit.
//!
//! The broker knows nothing of gRPC: it takes parsed requests and returns domain values or a
//! [`BrokerError`]. Blocking store calls run on tokio's blocking pool, except the audit trail and
//! the MFA checks of GetSessionToken/AssumeRole, which two batch writers ([`audit`],
//! [`mfa_guard`], both built on `writer.rs`) commit in groups on their own threads.
//!
//! Lifecycle: [`Broker::start`] starts both writers (and the ticker that writes aggregated failed
//! authentications, `failed_auth.rs`) and returns a [`BrokerHandle`] that owns them;
//! [`BrokerHandle::shutdown`] is the one way to stop them (the server and the CLI both use it).

pub mod actions;
pub mod audit;
mod auth;
mod cache;
pub mod failed_auth;
mod iam;
pub mod input;
mod mfa;
pub mod mfa_guard;
mod policies;
pub mod possession;
mod report;
mod sts;
mod writer;

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
use crate::ids::{AccessKeyId, AccountId, ValidationError};
use actions::{Resource, Rpc};
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
    /// Whether `Authorize` accepts a bare session token (bearer) instead of the client's signed
    /// request (`--allow-bearer-authorize`).
    pub allow_bearer_authorize: bool,
}

impl BrokerSettings {
    /// Defaults for `region`: one step of window, NIST-style lockout.
    pub fn new(region: impl Into<String>) -> Self {
        Self {
            region: region.into(),
            mfa_window: crate::mfa::totp::DEFAULT_WINDOW,
            lockout: crate::mfa::lockout::LockoutPolicy::default(),
            tls: false,
            allow_bearer_authorize: false,
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

/// Once a second, by the broker's clock: writes the failed-authentication rows of an interval
/// that has ended (see `failed_auth.rs`). Ends when the broker is gone.
async fn failed_auth_ticker(broker: std::sync::Weak<Broker>) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(1));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let Some(broker) = broker.upgrade() else {
            return;
        };
        for event in broker.failed_auth.take_due(broker.clock.now()) {
            broker.audit.record(event).await;
        }
    }
}

/// The broker.
pub struct Broker {
    store: Arc<dyn Store>,
    master: Arc<MasterKey>,
    clock: SharedClock,
    account: AccountId,
    settings: BrokerSettings,
    audit: AuditSink,
    failed_auth: failed_auth::FailedAuth,
    mfa_guard: MfaGuard,
    sessions: SessionKeys,
    policy_cache: policies::PolicyCache,
    identities: cache::IdentityCache,
}

debug_only!(Broker, "Broker" { account, settings });

/// A started broker and the writer threads it depends on (the audit trail, the MFA replay
/// guard). Dropping it without [`BrokerHandle::shutdown`] leaves the threads to end on their own
/// once the last reference to the broker is gone.
#[derive(Debug)]
pub struct BrokerHandle {
    broker: Arc<Broker>,
    audit_thread: writer::WriterThread,
    mfa_guard_thread: writer::WriterThread,
    /// Writes the failed-authentication rows of each interval once it has ended.
    failed_auth_ticker: Option<tokio::task::JoinHandle<()>>,
}

impl BrokerHandle {
    pub fn broker(&self) -> &Arc<Broker> {
        &self.broker
    }

    /// Stops the broker's writers, once no call is in flight: answers every queued MFA check
    /// (after its commit), then writes the failed authentications counted so far and commits the
    /// audit trail, and waits for both threads to end. Later MFA checks fail and later audit
    /// events are not recorded.
    pub async fn shutdown(self) {
        // The replay guard first: its callers' outcomes are audited, the audit trail last.
        self.broker.mfa_guard.close().await;
        self.mfa_guard_thread.join().await;
        if let Some(ticker) = self.failed_auth_ticker {
            ticker.abort();
        }
        for event in self.broker.failed_auth.drain() {
            self.broker.audit.record(event).await;
        }
        self.broker.audit.close().await;
        self.audit_thread.join().await;
    }
}

impl Broker {
    /// Starts the broker with its writer threads.
    pub fn start(
        store: Arc<dyn Store>,
        master: Arc<MasterKey>,
        clock: SharedClock,
        account: AccountId,
        settings: BrokerSettings,
        sessions: SessionKeys,
    ) -> BrokerHandle {
        let (audit, audit_thread) = AuditSink::start(Arc::clone(&store));
        let (mfa_guard, mfa_guard_thread) = MfaGuard::start(Arc::clone(&store));
        let broker = Arc::new(Self {
            store,
            master,
            clock,
            account,
            settings,
            audit,
            failed_auth: failed_auth::FailedAuth::default(),
            mfa_guard,
            sessions,
            policy_cache: policies::PolicyCache::default(),
            identities: cache::IdentityCache::default(),
        });
        let failed_auth_ticker = tokio::runtime::Handle::try_current()
            .ok()
            .map(|rt| rt.spawn(failed_auth_ticker(Arc::downgrade(&broker))));
        BrokerHandle {
            broker,
            audit_thread,
            mfa_guard_thread,
            failed_auth_ticker,
        }
    }

    /// The failed-authentication counters, for `/metrics`.
    pub fn failed_authentication_counts(&self) -> Arc<crate::metrics::FailureCounts> {
        self.failed_auth.counts()
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

    /// Waits until every audit event recorded so far is committed, the failed authentications
    /// counted so far included (this ends their interval early).
    pub async fn flush_audit(&self) {
        for event in self.failed_auth.drain() {
            self.audit.record(event).await;
        }
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
        self.identities
            .of::<V>()
            .get_or_load(id, async { Ok(self.blocking(read).await?.map(Arc::new)) })
            .await
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
        let event = self.caller_event(caller, action, result, detail);
        self.audit.record(event).await;
    }

    /// The audit record of an event about `caller`, now.
    pub(super) fn caller_event(
        &self,
        caller: &Caller,
        action: &str,
        result: Result<(), &BrokerError>,
        detail: Option<String>,
    ) -> AuditEvent {
        let (outcome, code) = match result {
            Ok(()) => (Outcome::Success, None),
            Err(e) => (Outcome::Failure, Some(e.code.as_str().to_owned())),
        };
        AuditEvent {
            principal: Some(caller.arn.clone()),
            access_key_id: Some(caller.access_key_id.to_string()),
            source: caller.source.map(|s| s.to_string()),
            error_code: code,
            detail,
            ..AuditEvent::single(self.clock.now(), action, outcome)
        }
    }

    /// A request a door refused before calling a use case, as the answer to give. A refused
    /// `GetSessionToken` duration is also audited with its reason, as the use case itself did
    /// before durations were checked at the edge; the door records every call's outcome anyway.
    pub async fn refuse_input(&self, caller: &Caller, rpc: Rpc, e: ValidationError) -> BrokerError {
        let bad_duration = rpc == Rpc::GetSessionToken && e.field == "durationSeconds";
        let e = BrokerError::from(e);
        if bad_duration {
            self.audit_caller(
                caller,
                rpc.action(),
                Err(&e),
                Some("bad duration".to_owned()),
            )
            .await;
        }
        e
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
        self.authorize(caller, Rpc::GetCallerIdentity, &Resource::any())
            .await?;
        Ok((
            self.account.to_string(),
            caller.arn.clone(),
            caller.user_id.clone(),
        ))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::domain::{CodeVerdict, MfaCheck, OwnerRef};
    use crate::mfa::lockout::LockoutPolicy;
    use crate::store::sqlite::SqliteStore;
    use time::OffsetDateTime;

    pub const NOW: i64 = 1_780_000_000;

    /// A broker on an in-memory store, account 123456789012.
    pub fn started() -> BrokerHandle {
        let store: Arc<dyn Store> = Arc::new(SqliteStore::open_in_memory().unwrap());
        let master = Arc::new(MasterKey::from_bytes(MasterKey::generate().as_ref()).unwrap());
        let now = OffsetDateTime::from_unix_timestamp(NOW).unwrap();
        let sessions = SessionKeys::load(store.as_ref(), &master, now).unwrap();
        Broker::start(
            store,
            master,
            Arc::new(ManualClock::at(NOW)),
            AccountId::parse("123456789012").unwrap(),
            BrokerSettings::new("us-east-1"),
            sessions,
        )
    }

    pub fn caller(principal: Principal, arn: &str) -> Caller {
        Caller {
            principal,
            arn: arn.to_owned(),
            user_id: "AIDAALICE".to_owned(),
            access_key_id: AccessKeyId::parse("AKIAIOSFODNN7EXAMPLE").unwrap(),
            source: None,
            session: None,
        }
    }

    #[tokio::test]
    async fn shutdown_commits_the_audit_trail_and_stops_both_writers() {
        let handle = started();
        let broker = Arc::clone(handle.broker());
        let root = caller(Principal::Root, "arn:aws:iam::123456789012:root");
        for _ in 0..100 {
            broker.audit_call(&root, "iam:ListUsers", Ok(())).await;
        }
        handle.shutdown().await;
        let trail = broker.store.recent_audit(1000).unwrap();
        assert_eq!(trail.len(), 100, "every event recorded before shutdown");
        let check = MfaCheck {
            owner: OwnerRef::Root,
            serial: "arn:aws:iam::123456789012:mfa/root".into(),
            now: NOW,
            policy: LockoutPolicy::default(),
            check: Box::new(|_| CodeVerdict::Accepted {
                step: 1,
                drift: None,
            }),
            audit: None,
        };
        let after = broker.mfa_guard.authenticate(check).await;
        assert!(
            after.is_err(),
            "the replay guard accepts nothing after shutdown"
        );
        broker.audit_call(&root, "iam:ListUsers", Ok(())).await;
        assert_eq!(broker.store.recent_audit(1000).unwrap().len(), 100);
    }

    #[tokio::test]
    async fn shutdown_writes_the_failed_authentications_of_the_unfinished_interval() {
        let handle = started();
        let broker = Arc::clone(handle.broker());
        let failure = failed_auth::Failure {
            source: None,
            code: "InvalidClientTokenId",
            reason: "unknown access key",
            access_key_id: Some("AKIAZZZZZZZZZZZZZZZZ"),
            principal: None,
            action: "sts:GetCallerIdentity",
        };
        for _ in 0..7 {
            let (due, _) = broker.failed_auth.record(&failure, broker.clock.now());
            assert!(due.is_empty(), "the interval has not ended");
        }
        assert!(broker.store.recent_audit(10).unwrap().is_empty());
        handle.shutdown().await;
        let trail = broker.store.recent_audit(10).unwrap();
        assert_eq!(trail.len(), 1, "{trail:?}");
        assert_eq!(trail[0].count, 7);
    }
}
