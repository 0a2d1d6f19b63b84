//! Session tokens: a JWS compact token (RFC 7515/7519) signed with Ed25519, with the claims of
//! [`SessionClaims`] (the public token contract). Validation is explicit (RFC 8725 section 3): the
//! algorithm is pinned to EdDSA, the header `typ` must be ours, the `kid` must name a key in our
//! ring (no `jku`/`x5u`/`jwk` is ever followed: tokens carrying them are refused), `iss` and `aud`
//! must match, and the time claims are checked against the broker's clock, not the library's,
//! with no leeway on `exp`.
//!
//! The same session token comes back on every call its holder makes, and the Ed25519 check is the
//! largest single cost of such a call (~70 µs here, see BENCHMARKS.md). So a token that passed
//! every check except the time claims is remembered in a bounded cache keyed by the SHA-256 of
//! the whole token and the expected issuer and audience; a hit skips only the signature and
//! header work — the time claims are checked against the clock on every call, revocation is
//! checked by the caller on every call, and the cache is invalidated whenever the key ring changes,
//! under the crate's one cache rule (`src/cache.rs`): a verification that began against the old
//! ring is not remembered, so a token signed by a key that has left the ring is never answered
//! from memory. Keying on the whole token (not its signature) means a token altered anywhere is a
//! miss.

use super::keyring::KeyRing;
use crate::cache::GenerationCache;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// The header `typ` of session tokens (explicit typing, RFC 8725 section 3.11).
pub const TOKEN_TYPE: &str = "sts-session+jwt";
/// Longest token examined.
const MAX_TOKEN_LEN: usize = 8192;
/// Tolerated clock difference for `nbf`/`iat` (seconds). `exp` has none.
const NBF_LEEWAY: i64 = 5;

/// What kind of session a token stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SessionKind {
    /// From `GetSessionToken`: the caller's own identity.
    Session,
    /// From `AssumeRole`.
    Role,
}

/// The claims of a session token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SessionClaims {
    pub iss: String,
    pub aud: String,
    /// The principal ARN (a user, root, or an assumed-role session).
    pub sub: String,
    pub iat: i64,
    pub nbf: i64,
    pub exp: i64,
    pub jti: String,
    /// The temporary access key id.
    pub akid: String,
    /// `["mfa"]` when an MFA code was verified (RFC 8176).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub amr: Option<Vec<String>>,
    /// When the MFA code was verified.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub auth_time: Option<i64>,
    pub kind: SessionKind,
    /// AWS's user id of the principal: `AIDA...` for a user, the account for root,
    /// `AROA...:session` for a role session.
    pub uid: String,
    /// For role sessions: the role's unique id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role_id: Option<String>,
    /// For role sessions: the ARN of the principal that assumed the role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub src: Option<String>,
    /// For role sessions: whether this session came from another role session.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub chained: bool,
    /// The session policy passed to AssumeRole, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<String>,
}

impl SessionClaims {
    pub fn mfa_present(&self) -> bool {
        self.amr
            .as_ref()
            .is_some_and(|a| a.iter().any(|m| m == "mfa"))
            && self.auth_time.is_some()
    }
}

/// Why a token was refused. Messages never contain the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    #[error("the session token is malformed")]
    Malformed,
    #[error("the session token uses a disallowed header")]
    Header,
    #[error("the session token is signed by an unknown key")]
    UnknownKey,
    #[error("the session token signature or claims are invalid")]
    Invalid,
    #[error("the session token has expired")]
    Expired,
    #[error("the session token is not valid yet")]
    NotYetValid,
}

/// How many verified tokens are remembered (each entry is a hash and the claims, ~0.5 KiB).
const VERIFIED_CAPACITY: usize = 16_384;

/// Tokens already verified, by SHA-256 of (issuer, audience, token).
pub(super) struct VerifiedTokens(GenerationCache<[u8; 32], Arc<SessionClaims>>);

impl VerifiedTokens {
    pub(super) fn new() -> Self {
        Self(GenerationCache::new(VERIFIED_CAPACITY))
    }

    /// Forgets every token and refuses verifications under way (after the ring has changed).
    pub(super) fn clear(&self) {
        self.0.invalidate();
    }

    fn key(token: &str, expect: &Validation) -> [u8; 32] {
        let mut h = Sha256::new();
        for part in [expect.issuer.as_bytes(), expect.audience.as_bytes()] {
            h.update((part.len() as u64).to_be_bytes());
            h.update(part);
        }
        h.update(token.as_bytes());
        h.finalize().into()
    }
}

/// What a token must say to be accepted.
#[derive(Debug, Clone)]
pub struct Validation {
    pub issuer: String,
    pub audience: String,
}

impl KeyRing {
    /// Signs `claims` with the current key.
    pub fn sign(&self, claims: &SessionClaims) -> Result<String, super::CredentialsError> {
        let (kid, key) = self.current()?;
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
        header.typ = Some(TOKEN_TYPE.to_owned());
        header.kid = Some(kid.clone());
        jsonwebtoken::encode(&header, claims, &key)
            .map_err(|e| super::CredentialsError::Key(kid, e.to_string()))
    }

    /// Verifies a token at `now` (Unix seconds) and returns its claims.
    pub fn verify(
        &self,
        token: &str,
        expect: &Validation,
        now: i64,
    ) -> Result<SessionClaims, TokenError> {
        self.verify_with(token, expect, now, || ())
    }

    /// [`KeyRing::verify`], running `after_check` between the signature check and the cache
    /// insert (tests use it to change the ring exactly there).
    pub(super) fn verify_with(
        &self,
        token: &str,
        expect: &Validation,
        now: i64,
        after_check: impl FnOnce(),
    ) -> Result<SessionClaims, TokenError> {
        if token.is_empty()
            || token.len() > MAX_TOKEN_LEN
            || token.bytes().filter(|b| *b == b'.').count() != 2
        {
            return Err(TokenError::Malformed);
        }
        let key = VerifiedTokens::key(token, expect);
        let claims = match self.verified.0.get(&key) {
            Some(c) => c,
            None => {
                let read_at = self.verified.0.generation();
                let c = Arc::new(self.verify_signed(token, expect)?);
                after_check();
                self.verified.0.put(read_at, key, Arc::clone(&c));
                c
            }
        };
        check_times(&claims, now)?;
        Ok(SessionClaims::clone(&claims))
    }

    /// Everything but `check_times`: header, key, signature, issuer, audience, required claims.
    fn verify_signed(&self, token: &str, expect: &Validation) -> Result<SessionClaims, TokenError> {
        let header = jsonwebtoken::decode_header(token).map_err(|_| TokenError::Malformed)?;
        // SECURITY: pin the algorithm and type before looking at anything else, and refuse any
        // header that points at key material elsewhere.
        if header.alg != jsonwebtoken::Algorithm::EdDSA
            || header.typ.as_deref() != Some(TOKEN_TYPE)
            || header.jku.is_some()
            || header.x5u.is_some()
            || header.jwk.is_some()
            || header.x5c.is_some()
        {
            return Err(TokenError::Header);
        }
        let kid = header.kid.ok_or(TokenError::Header)?;
        let key = self.verifier(&kid).ok_or(TokenError::UnknownKey)?;
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::EdDSA);
        v.validate_exp = false;
        v.validate_nbf = false;
        v.leeway = 0;
        v.set_issuer(&[&expect.issuer]);
        v.set_audience(&[&expect.audience]);
        v.set_required_spec_claims(&["exp", "nbf", "iss", "aud", "sub"]);
        let data = jsonwebtoken::decode::<SessionClaims>(token, &key, &v)
            .map_err(|_| TokenError::Invalid)?;
        Ok(data.claims)
    }
}

/// The time claims against the broker's clock (no leeway on `exp`, a little on `nbf`/`iat`), then
/// the claims every token of ours has. Checked on every call, cached or not, in this order.
fn check_times(c: &SessionClaims, now: i64) -> Result<(), TokenError> {
    if now >= c.exp {
        return Err(TokenError::Expired);
    }
    if now + NBF_LEEWAY < c.nbf || now + NBF_LEEWAY < c.iat {
        return Err(TokenError::NotYetValid);
    }
    if c.exp <= c.iat || c.jti.is_empty() || c.akid.is_empty() {
        return Err(TokenError::Invalid);
    }
    Ok(())
}
