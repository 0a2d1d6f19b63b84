//! Temporary credentials: `GetSessionToken`, `AssumeRole`, roles and their trust policies,
//! revocation, and signing-key rotation.
//!
//! MFA facts: a `GetSessionToken` session carries `amr: ["mfa"]` and `auth_time` only when a code
//! was verified in that call. A role session keeps the MFA facts of its `AssumeRole` call: the
//! code given to it, or else the MFA of the caller's own session (the aws-vault flow). AWS's
//! documentation says role sessions carry no MFA context; the issue asks for this choice, and it
//! is what lets policies on role sessions require MFA at all.

use super::actions::{Resource, ResourceKind, Rpc};
use super::input::{
    AssumeRole, CreateRole, ForRole, GetSessionToken, RevokeSessions, RevokeTarget,
    UpdateAssumeRolePolicy,
};
use super::{Broker, Caller, Principal, SessionInfo};
use crate::credentials::{
    self, KeyRing, SESSION_KEY_LEN, SessionClaims, SessionKind, TokenError, Validation,
};
use crate::crypto::{Binding, MasterKey};
use crate::domain::{AuditEvent, Role, Store, StoreRules, User};
use crate::error::{AwsCode, BrokerError};
use crate::ids::{self, AccessKeyId, IamPath, MfaSerial, RoleName, SessionDuration, TokenCode};
use crate::policy::{self, Context, PolicyDocument, PolicyKind, PrincipalInfo};
use std::collections::HashMap;
use std::sync::RwLock;
use time::{Duration, OffsetDateTime};
use zeroize::Zeroizing;

/// The longest any session can live (an IAM user's GetSessionToken maximum): a retired signing
/// key stays published this long after retirement.
pub const MAX_SESSION_SECONDS: i64 = 129_600;
const META_SESSION_KEY: &str = "session_secret_key";

/// Keys and state for temporary credentials, loaded once at start.
pub struct SessionKeys {
    ring: KeyRing,
    session_key: Zeroizing<[u8; SESSION_KEY_LEN]>,
    /// principal ARN → sessions issued at or before this instant are revoked.
    revocations: RwLock<HashMap<String, i64>>,
}

impl std::fmt::Debug for SessionKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SessionKeys(<redacted>)")
    }
}

impl SessionKeys {
    /// Loads (creating on first use) the signing key, the session key and the revocation list.
    /// Blocking: call from a blocking context.
    pub fn load(
        store: &dyn Store,
        master: &MasterKey,
        now: OffsetDateTime,
    ) -> Result<Self, String> {
        store.prune_signing_keys(now).map_err(|e| e.to_string())?;
        let mut records = store.signing_keys().map_err(|e| e.to_string())?;
        if !records.iter().any(|r| r.retired.is_none()) {
            let fresh = credentials::new_signing_key(master, now).map_err(|e| e.to_string())?;
            store
                .rotate_signing_key(&fresh, now, now + Duration::seconds(MAX_SESSION_SECONDS))
                .map_err(|e| e.to_string())?;
            records = store.signing_keys().map_err(|e| e.to_string())?;
        }
        let ring = KeyRing::from_records(&records, master, now).map_err(|e| e.to_string())?;

        let binding = Binding {
            kind: "session-key",
            owner: "v1",
        };
        let mut candidate = Zeroizing::new([0u8; SESSION_KEY_LEN]);
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, candidate.as_mut());
        let sealed = master
            .seal(binding, candidate.as_ref())
            .map_err(|e| e.to_string())?;
        // Whoever inserts first wins; everyone then uses the stored key.
        let stored = store
            .meta_get_or_insert(META_SESSION_KEY, &hex::encode(sealed))
            .map_err(|e| e.to_string())?;
        let blob = hex::decode(stored).map_err(|e| e.to_string())?;
        let plain = master.open(binding, &blob).map_err(|e| e.to_string())?;
        let mut session_key = Zeroizing::new([0u8; SESSION_KEY_LEN]);
        if plain.len() != SESSION_KEY_LEN {
            return Err("the stored session key has the wrong length".into());
        }
        session_key.copy_from_slice(&plain);
        let revocations = store
            .revocations()
            .map_err(|e| e.to_string())?
            .into_iter()
            .collect();
        Ok(Self {
            ring,
            session_key,
            revocations: RwLock::new(revocations),
        })
    }

    pub fn jwks(&self) -> serde_json::Value {
        self.ring.jwks()
    }
}

/// Temporary credentials as issued.
pub struct IssuedCredentials {
    pub access_key_id: String,
    pub secret_access_key: Zeroizing<String>,
    pub session_token: String,
    pub expiration: OffsetDateTime,
}

debug_only!(IssuedCredentials, "IssuedCredentials" { access_key_id, expiration });

/// What AssumeRole returns besides the credentials.
#[derive(Debug, Clone)]
pub struct AssumedRoleUser {
    pub assumed_role_id: String,
    pub arn: String,
    pub packed_policy_size: i32,
}

fn both_or_neither() -> BrokerError {
    BrokerError::new(
        AwsCode::AccessDenied,
        "MultiFactorAuthentication failed, must provide both MFA serial number and one time pass code.",
    )
}

impl Broker {
    fn token_validation(&self) -> Validation {
        Validation {
            issuer: format!("sts-broker:{}", self.account),
            audience: "sts-broker".to_owned(),
        }
    }

    /// The published signing keys (`/.well-known/jwks.json`).
    pub fn jwks(&self) -> serde_json::Value {
        self.sessions.jwks()
    }

    /// Verifies a session token for `akid` (from a signed call or an `Authorize`), resolves its
    /// principal and applies revocation. Returns the principal, its ARN, AWS user id and claims.
    pub(super) async fn resolve_session(
        &self,
        token: &str,
        akid: Option<&str>,
    ) -> Result<(Principal, SessionInfo), (BrokerError, &'static str)> {
        let invalid = || {
            BrokerError::new(
                AwsCode::InvalidClientTokenId,
                "The security token included in the request is invalid.",
            )
        };
        let now = self.clock.unix();
        let claims = self
            .sessions
            .ring
            .verify(token, &self.token_validation(), now)
            .map_err(|e| match e {
                TokenError::Expired => (
                    BrokerError::new(
                        AwsCode::ExpiredToken,
                        "The security token included in the request is expired",
                    ),
                    "expired session token",
                ),
                TokenError::NotYetValid => (invalid(), "session token not yet valid"),
                TokenError::UnknownKey => (invalid(), "session token signed by an unknown key"),
                TokenError::Header => (invalid(), "session token header refused"),
                TokenError::Malformed | TokenError::Invalid => {
                    (invalid(), "forged or malformed session token")
                }
            })?;
        if akid.is_some_and(|a| a != claims.akid) {
            return Err((invalid(), "access key id does not match the session token"));
        }
        let (principal, revocation_key) = match claims.kind {
            SessionKind::Session if claims.uid == self.account.as_str() => {
                (Principal::Root, ids::root_arn(&self.account))
            }
            SessionKind::Session => {
                let uid = claims.uid.clone();
                let user = self
                    .cached(&claims.uid, move |s| s.get_user_by_id(&uid))
                    .await
                    .map_err(|e| (e, "store failure"))?
                    .ok_or((invalid(), "the session's user no longer exists"))?;
                let arn = ids::user_arn(&self.account, &user.path, &user.name);
                (Principal::User(User::clone(&user)), arn)
            }
            SessionKind::Role => {
                let rid = claims.role_id.clone().unwrap_or_default();
                let key = rid.clone();
                let role = self
                    .cached(&key, move |s| s.get_role_by_id(&rid))
                    .await
                    .map_err(|e| (e, "store failure"))?
                    .ok_or((invalid(), "the session's role no longer exists"))?;
                let role = Role::clone(&role);
                let arn = self.role_arn(&role);
                let session_name = claims.sub.rsplit('/').next().unwrap_or_default().to_owned();
                (Principal::AssumedRole { role, session_name }, arn)
            }
        };
        let revoked = self
            .sessions
            .revocations
            .read()
            .ok()
            .and_then(|m| m.get(&revocation_key).copied());
        if revoked.is_some_and(|before| claims.iat <= before) {
            return Err((invalid(), "revoked session"));
        }
        Ok((principal, SessionInfo { claims }))
    }

    /// The secret of a session's temporary key.
    pub(super) fn session_secret(&self, akid: &str, jti: &str) -> Zeroizing<String> {
        credentials::derive_secret(&self.sessions.session_key, akid, jti)
    }

    fn role_arn(&self, role: &Role) -> String {
        self.role_resource(role).into_arn()
    }

    fn role_resource(&self, role: &Role) -> Resource {
        Resource::named(
            ResourceKind::Role,
            &self.account,
            &role.path,
            role.name.as_str(),
        )
    }

    fn mint(&self, mut claims: SessionClaims) -> Result<IssuedCredentials, BrokerError> {
        let akid = AccessKeyId::generate_temporary();
        claims.akid = akid.to_string();
        claims.jti = crate::crypto::random_upper_alnum(24);
        let token = self
            .sessions
            .ring
            .sign(&claims)
            .map_err(BrokerError::internal)?;
        let secret = self.session_secret(akid.as_str(), &claims.jti);
        Ok(IssuedCredentials {
            access_key_id: akid.to_string(),
            secret_access_key: secret,
            session_token: token,
            expiration: OffsetDateTime::from_unix_timestamp(claims.exp)
                .map_err(BrokerError::internal)?,
        })
    }

    /// The audit record of credentials issued to `caller` by `action`.
    fn issuance_event(
        &self,
        caller: &Caller,
        action: &str,
        issued: &IssuedCredentials,
        mfa: Option<&str>,
    ) -> AuditEvent {
        let detail = format!(
            "issued {} until {}; mfa: {}",
            issued.access_key_id,
            issued.expiration.unix_timestamp(),
            mfa.unwrap_or("none")
        );
        self.caller_event(caller, action, Ok(()), Some(detail))
    }

    async fn audit_refusal(&self, caller: &Caller, action: &str, e: &BrokerError, why: &str) {
        self.audit_caller(caller, action, Err(e), Some(why.to_owned()))
            .await;
    }

    /// Hands out `issued` once its record is on stable storage: written in the transaction that
    /// consumes the MFA code when there is one, else group-committed by the audit writer. If the
    /// record cannot be written, nothing is issued (and a code stays unspent).
    async fn issue_recorded<T>(
        &self,
        caller: &Caller,
        rpc: Rpc,
        mfa: Option<(&MfaSerial, &TokenCode)>,
        now: OffsetDateTime,
        record: AuditEvent,
        issued: T,
    ) -> Result<T, BrokerError> {
        match mfa {
            Some((serial, code)) => {
                self.verify_mfa_recording(caller, serial, code, rpc, now, Some(record))
                    .await?;
            }
            None => self.audit.record_durable(record).await?,
        }
        Ok(issued)
    }

    /// `GetSessionToken`. The credential is minted first, so that its record can name it, and
    /// leaves only once that record is durable ([`Broker::issue_recorded`]).
    pub async fn get_session_token(
        &self,
        caller: &Caller,
        input: GetSessionToken,
    ) -> Result<IssuedCredentials, BrokerError> {
        const RPC: Rpc = Rpc::GetSessionToken;
        const ACTION: &str = RPC.action();
        self.authorize(caller, RPC, &Resource::any()).await?;
        let is_root = matches!(caller.principal, Principal::Root);
        let seconds = match input.duration.map(SessionDuration::seconds) {
            None if is_root => 3600,
            None => 43_200,
            // AWS clamps the account owner's sessions to one hour rather than refusing.
            Some(d) if is_root => d.min(3600),
            Some(d) => d,
        };
        let mfa = match (&input.mfa.serial, &input.mfa.code) {
            (None, None) => None,
            (Some(s), Some(c)) => Some((s, c)),
            _ => {
                let e = both_or_neither();
                self.audit_refusal(
                    caller,
                    ACTION,
                    &e,
                    "serial without code or code without serial",
                )
                .await;
                return Err(e);
            }
        };
        let now = self.clock.now();
        let now_s = now.unix_timestamp();
        let v = self.token_validation();
        let claims = SessionClaims {
            iss: v.issuer,
            aud: v.audience,
            sub: caller.arn.clone(),
            iat: now_s,
            nbf: now_s,
            exp: now_s + seconds,
            jti: String::new(),
            akid: String::new(),
            // Used only if the code is accepted, at `now`.
            amr: mfa.map(|_| vec!["mfa".to_owned()]),
            auth_time: mfa.map(|_| now_s),
            kind: SessionKind::Session,
            uid: caller.user_id.clone(),
            role_id: None,
            src: None,
            chained: false,
            policy: None,
        };
        let issued = self.mint(claims)?;
        let serial = mfa.map(|(s, _)| s.to_string());
        let record = self.issuance_event(caller, ACTION, &issued, serial.as_deref());
        self.issue_recorded(caller, RPC, mfa, now, record, issued)
            .await
    }

    /// `AssumeRole`. With a code, the outcome (credentials, or the refusal the trust policy or
    /// the duration gives) is worked out first, as if the code were accepted at `now`, so that
    /// its record goes into the transaction that consumes the code; a wrong code still answers
    /// as a wrong code.
    pub async fn assume_role(
        &self,
        caller: &Caller,
        input: AssumeRole,
    ) -> Result<(IssuedCredentials, AssumedRoleUser), BrokerError> {
        const RPC: Rpc = Rpc::AssumeRole;
        const ACTION: &str = RPC.action();
        let role_arn = input.role_arn.as_str();
        self.authorize(caller, RPC, &Resource::known(ResourceKind::Role, role_arn))
            .await?;
        if matches!(caller.principal, Principal::Root) {
            return Err(BrokerError::new(
                AwsCode::AccessDenied,
                "Roles may not be assumed by root accounts.",
            ));
        }
        // An unknown role answers like a refused one, so roles cannot be enumerated.
        let role = if input.role_arn.account() == self.account.as_str() {
            let n = input.role_arn.name().clone();
            self.blocking(move |s| s.get_role(&n)).await?
        } else {
            None
        };
        let Some(role) = role.filter(|r| self.role_arn(r) == role_arn) else {
            let e = BrokerError::access_denied(&caller.arn, ACTION, role_arn);
            self.audit_refusal(caller, ACTION, &e, "no such role").await;
            return Err(e);
        };
        let now = self.clock.now();
        let mfa = match (&input.mfa.serial, &input.mfa.code) {
            (None, None) => None,
            (Some(s), Some(c)) => Some((s, c)),
            _ => return Err(both_or_neither()),
        };
        let mfa_time = match mfa {
            None => caller.session.as_ref().and_then(SessionInfo::mfa_auth_time),
            Some(_) => Some(now.unix_timestamp()),
        };
        let outcome = self.role_session(caller, &input, &role, mfa_time, now);
        let Some(code) = mfa else {
            return match outcome {
                Ok((issued, user)) => {
                    let record = self.issuance_event(caller, ACTION, &issued, None);
                    self.issue_recorded(caller, RPC, None, now, record, (issued, user))
                        .await
                }
                Err((e, why)) => {
                    if let Some(why) = why {
                        self.audit_refusal(caller, ACTION, &e, why).await;
                    }
                    Err(e)
                }
            };
        };
        match outcome {
            Ok((issued, user)) => {
                let record = self.issuance_event(caller, ACTION, &issued, Some("verified"));
                self.issue_recorded(caller, RPC, Some(code), now, record, (issued, user))
                    .await
            }
            Err((e, why)) => {
                let record = self.caller_event(caller, ACTION, Err(&e), why.map(str::to_owned));
                self.issue_recorded(caller, RPC, Some(code), now, record, ())
                    .await?;
                Err(e)
            }
        }
    }

    /// What `AssumeRole` of `role` gives `caller` with the MFA facts `mfa_time`: the role
    /// session's credentials, or the refusal (with the audit trail's reason where it has one).
    fn role_session(
        &self,
        caller: &Caller,
        input: &AssumeRole,
        role: &Role,
        mfa_time: Option<i64>,
        now: OffsetDateTime,
    ) -> Result<(IssuedCredentials, AssumedRoleUser), (BrokerError, Option<&'static str>)> {
        const ACTION: &str = Rpc::AssumeRole.action();
        let role_arn = input.role_arn.as_str();
        let session_name = &input.session_name;
        let session_policy = input.policy.as_deref().filter(|p| !p.is_empty());
        // The trust policy decides, with the MFA facts of this call.
        let trust = PolicyDocument::parse(&role.trust_policy, PolicyKind::Trust).map_err(|e| {
            let e = BrokerError::internal(format!(
                "stored trust policy of {} is invalid: {e}",
                role.name
            ));
            (e, None)
        })?;
        let mut ctx = self.request_context(caller, now);
        match mfa_time {
            Some(t) => {
                ctx.insert(
                    policy::keys::MULTI_FACTOR_AUTH_PRESENT,
                    policy::ContextValue::Bool(true),
                );
                ctx.insert(
                    policy::keys::MULTI_FACTOR_AUTH_AGE,
                    policy::ContextValue::Numeric(policy::Number::from_i64(
                        now.unix_timestamp() - t,
                    )),
                );
            }
            None if caller.session.is_some() => {
                ctx.insert(
                    policy::keys::MULTI_FACTOR_AUTH_PRESENT,
                    policy::ContextValue::Bool(false),
                );
            }
            None => {}
        }
        let principal = PrincipalInfo {
            arn: caller.arn.clone(),
            account: self.account.to_string(),
        };
        if !policy::evaluate_trust(&trust, &principal, ACTION, &ctx).is_allowed() {
            let e = BrokerError::access_denied(&caller.arn, ACTION, role_arn);
            return Err((e, Some("trust policy does not allow the caller")));
        }

        let chained = matches!(caller.principal, Principal::AssumedRole { .. });
        let seconds = input
            .duration
            .unwrap_or_else(SessionDuration::one_hour)
            .seconds();
        if seconds > role.max_session_duration {
            let e = BrokerError::new(
                AwsCode::ValidationError,
                "The requested DurationSeconds exceeds the MaxSessionDuration set for this role.",
            );
            return Err((e, None));
        }
        if chained && seconds > 3600 {
            let e = BrokerError::new(
                AwsCode::ValidationError,
                "The requested DurationSeconds exceeds the 1 hour session limit for roles assumed by role chaining.",
            );
            return Err((e, None));
        }
        let packed_policy_size = match session_policy {
            Some(p) => {
                PolicyDocument::parse(p, PolicyKind::Session).map_err(|e| {
                    let e = BrokerError::new(AwsCode::MalformedPolicyDocument, e.to_string());
                    (e, None)
                })?;
                i32::try_from(p.len() * 100 / 2048).unwrap_or(100)
            }
            None => 0,
        };
        let assumed_arn = format!(
            "arn:aws:sts::{}:assumed-role/{}/{session_name}",
            self.account, role.name
        );
        let assumed_id = format!("{}:{session_name}", role.id);
        let source = match &caller.session {
            Some(s) if chained => s.claims.src.clone().unwrap_or_else(|| caller.arn.clone()),
            _ => caller.arn.clone(),
        };
        let now_s = now.unix_timestamp();
        let v = self.token_validation();
        let claims = SessionClaims {
            iss: v.issuer,
            aud: v.audience,
            sub: assumed_arn.clone(),
            iat: now_s,
            nbf: now_s,
            exp: now_s + seconds,
            jti: String::new(),
            akid: String::new(),
            amr: mfa_time.map(|_| vec!["mfa".to_owned()]),
            auth_time: mfa_time,
            kind: SessionKind::Role,
            uid: assumed_id.clone(),
            role_id: Some(role.id.clone()),
            src: Some(source),
            chained,
            policy: session_policy.map(str::to_owned),
        };
        let issued = self.mint(claims).map_err(|e| (e, None))?;
        Ok((
            issued,
            AssumedRoleUser {
                assumed_role_id: assumed_id,
                arn: assumed_arn,
                packed_policy_size,
            },
        ))
    }

    /// The request context every evaluation starts from (README, 'Policies and MFA conditions'), without the MFA keys.
    pub(super) fn request_context(&self, caller: &Caller, now: OffsetDateTime) -> Context {
        use policy::ContextValue as V;
        let mut ctx = Context::new();
        ctx.insert(policy::keys::PRINCIPAL_ARN, V::String(caller.arn.clone()));
        ctx.insert(
            policy::keys::PRINCIPAL_ACCOUNT,
            V::String(self.account.to_string()),
        );
        ctx.insert(policy::keys::USERID, V::String(caller.user_id.clone()));
        let ptype = match &caller.principal {
            Principal::Root => "Account",
            Principal::User(u) => {
                ctx.insert(policy::keys::USERNAME, V::String(u.name.to_string()));
                "User"
            }
            Principal::AssumedRole { .. } => "AssumedRole",
        };
        ctx.insert(policy::keys::PRINCIPAL_TYPE, V::String(ptype.to_owned()));
        ctx.insert(policy::keys::CURRENT_TIME, V::Date(now));
        ctx.insert(
            policy::keys::EPOCH_TIME,
            V::Numeric(policy::Number::from_i64(now.unix_timestamp())),
        );
        ctx.insert(
            policy::keys::REQUESTED_REGION,
            V::String(self.settings.region.clone()),
        );
        ctx.insert(policy::keys::SECURE_TRANSPORT, V::Bool(self.settings.tls));
        if let Some(src) = caller.source {
            ctx.insert(policy::keys::SOURCE_IP, V::Ip(src.ip()));
        }
        if let Some(s) = &caller.session
            && let Ok(t) = OffsetDateTime::from_unix_timestamp(s.claims.iat)
        {
            ctx.insert(policy::keys::TOKEN_ISSUE_TIME, V::Date(t));
        }
        ctx
    }

    /// `CreateRole`.
    pub async fn create_role(
        &self,
        caller: &Caller,
        input: CreateRole,
    ) -> Result<Role, BrokerError> {
        let CreateRole {
            role_name: name,
            trust_policy,
            max_session_duration,
            path,
            description,
        } = input;
        PolicyDocument::parse(&trust_policy, PolicyKind::Trust)
            .map_err(|e| BrokerError::new(AwsCode::MalformedPolicyDocument, e.to_string()))?;
        let max = max_session_duration.seconds();
        let resource = Resource::named(ResourceKind::Role, &self.account, &path, name.as_str());
        self.authorize(caller, Rpc::CreateRole, &resource).await?;
        let role = Role {
            id: ids::generate_unique_id("AROA"),
            name,
            path,
            trust_policy,
            max_session_duration: max,
            description,
            created: self.clock.now(),
        };
        let r = role.clone();
        self.blocking(move |s| s.create_role(&r)).await?;
        Ok(role)
    }

    async fn find_role(
        &self,
        caller: &Caller,
        n: &RoleName,
        rpc: Rpc,
    ) -> Result<Role, BrokerError> {
        let unknown = Resource::named(
            ResourceKind::Role,
            &self.account,
            &IamPath::root(),
            n.as_str(),
        );
        let lookup = n.clone();
        let found = self.blocking(move |s| s.get_role(&lookup)).await?;
        self.authorize(
            caller,
            rpc,
            &found.as_ref().map_or(unknown, |r| self.role_resource(r)),
        )
        .await?;
        found.ok_or_else(|| {
            BrokerError::new(
                AwsCode::NoSuchEntity,
                format!("The role with name {n} cannot be found."),
            )
        })
    }

    /// `GetRole`.
    pub async fn get_role(
        &self,
        caller: &Caller,
        input: ForRole,
    ) -> Result<(Role, String), BrokerError> {
        let role = self
            .find_role(caller, &input.role_name, Rpc::GetRole)
            .await?;
        let arn = self.role_arn(&role);
        Ok((role, arn))
    }

    /// The ARN of a role, for responses.
    pub fn arn_of_role(&self, role: &Role) -> String {
        self.role_arn(role)
    }

    /// `DeleteRole`.
    pub async fn delete_role(&self, caller: &Caller, input: ForRole) -> Result<(), BrokerError> {
        let role = self
            .find_role(caller, &input.role_name, Rpc::DeleteRole)
            .await?;
        self.blocking_identity_change(move |s| s.delete_role(&role.name))
            .await
    }

    /// `UpdateAssumeRolePolicy`.
    pub async fn update_assume_role_policy(
        &self,
        caller: &Caller,
        input: UpdateAssumeRolePolicy,
    ) -> Result<(), BrokerError> {
        let role = self
            .find_role(caller, &input.role_name, Rpc::UpdateAssumeRolePolicy)
            .await?;
        PolicyDocument::parse(&input.document, PolicyKind::Trust)
            .map_err(|e| BrokerError::new(AwsCode::MalformedPolicyDocument, e.to_string()))?;
        let doc = input.document;
        self.blocking_identity_change(move |s| s.update_trust_policy(&role.name, &doc))
            .await
    }

    /// `RevokeSessions`: every session of the user or role issued at or before `issued_before`
    /// (default: now) is refused from now on. Seconds are the resolution of `iat`, so "at or
    /// before" is the reading that cannot leave a session issued in the same second alive.
    pub async fn revoke_sessions(
        &self,
        caller: &Caller,
        input: RevokeSessions,
    ) -> Result<(), BrokerError> {
        let arn = match input.target {
            RevokeTarget::User(name) => {
                let lookup = name.clone();
                let user = self.blocking(move |s| s.get_user(&lookup)).await?;
                let arn = match &user {
                    Some(u) => ids::user_arn(&self.account, &u.path, &u.name),
                    None => ids::user_arn(&self.account, &IamPath::root(), &name),
                };
                self.authorize(
                    caller,
                    Rpc::RevokeSessions,
                    &Resource::known(ResourceKind::User, arn.as_str()),
                )
                .await?;
                user.ok_or_else(|| {
                    BrokerError::new(
                        AwsCode::NoSuchEntity,
                        format!("The user with name {name} cannot be found."),
                    )
                })?;
                arn
            }
            RevokeTarget::Role(r) => {
                let role = self.find_role(caller, &r, Rpc::RevokeSessions).await?;
                self.role_arn(&role)
            }
        };
        let before = input
            .issued_before
            .unwrap_or_else(|| self.clock.now())
            .unix_timestamp();
        let key = arn.clone();
        self.blocking(move |s| s.set_revocation(&key, before))
            .await?;
        if let Ok(mut m) = self.sessions.revocations.write() {
            let e = m.entry(arn).or_insert(before);
            *e = (*e).max(before);
        }
        Ok(())
    }

    /// `RotateSigningKey`: a new key signs from now on; the old one keeps verifying (and stays in
    /// the JWKS) until the last token it could have signed has expired.
    pub async fn rotate_signing_key(
        &self,
        caller: &Caller,
    ) -> Result<(String, String), BrokerError> {
        self.authorize(caller, Rpc::RotateSigningKey, &Resource::any())
            .await?;
        let now = self.clock.now();
        let fresh =
            credentials::new_signing_key(&self.master, now).map_err(BrokerError::internal)?;
        let kid = fresh.kid.clone();
        let previous = self
            .blocking(move |s| {
                s.rotate_signing_key(&fresh, now, now + Duration::seconds(MAX_SESSION_SECONDS))
            })
            .await?;
        let records = self.blocking(|s| s.signing_keys()).await?;
        self.sessions
            .ring
            .reload(&records, &self.master, now)
            .map_err(BrokerError::internal)?;
        Ok((kid, previous.unwrap_or_default()))
    }
}
