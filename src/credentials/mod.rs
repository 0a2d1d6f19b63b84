//! Temporary credentials: session tokens (JWS, Ed25519), the signing key ring and its JWKS, and
//! the temporary secret.
//!
//! The temporary secret access key is never stored and never inside the token: it is derived as
//! HMAC-SHA256(session key, akid ‖ jti), truncated to 240 bits and base64-encoded (40 characters,
//! like AWS's). Deriving instead of storing means issuing a session writes nothing beyond the
//! MFA replay guard, and authenticating one reads nothing but the (cached) revocation list, while
//! a stolen token alone is useless without the session key, which is sealed under the master key.

mod keyring;
mod secret;
mod token;

pub use keyring::{KeyRing, new_signing_key};
pub use secret::{SESSION_KEY_LEN, derive_secret};
pub use token::{SessionClaims, SessionKind, TOKEN_TYPE, TokenError, Validation};

/// Failures of the credentials machinery (not of a caller's token).
#[derive(Debug, thiserror::Error)]
pub enum CredentialsError {
    #[error("signing key `{0}` cannot be used: {1}")]
    Key(String, String),
    #[error("no current signing key")]
    NoCurrentKey,
}
