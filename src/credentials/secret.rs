//! The temporary secret access key, derived from the session key and the token's identity.

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use zeroize::Zeroizing;

/// Length of the session key in bytes.
pub const SESSION_KEY_LEN: usize = 32;

/// The 40-character secret for the temporary key `akid` of the session `jti`.
pub fn derive_secret(
    session_key: &[u8; SESSION_KEY_LEN],
    akid: &str,
    jti: &str,
) -> Zeroizing<String> {
    // INVARIANT: the HMAC input is unambiguous: both fields are NUL-free identifiers, separated by NUL.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(session_key) else {
        // HMAC accepts keys of any length; this branch cannot be taken.
        return Zeroizing::new(String::new());
    };
    mac.update(b"sts-broker/session-secret/v1\0");
    mac.update(akid.as_bytes());
    mac.update(b"\0");
    mac.update(jti.as_bytes());
    let out = Zeroizing::new(mac.finalize().into_bytes());
    Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(&out[..30]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_40_characters_and_bound_to_both_ids() {
        let k = [7u8; 32];
        let s = derive_secret(&k, "ASIAAAAAAAAAAAAAAAAA", "jti-1");
        assert_eq!(s.len(), 40);
        assert_eq!(
            *s,
            *derive_secret(&k, "ASIAAAAAAAAAAAAAAAAA", "jti-1"),
            "deterministic"
        );
        assert_ne!(*s, *derive_secret(&k, "ASIAAAAAAAAAAAAAAAAB", "jti-1"));
        assert_ne!(*s, *derive_secret(&k, "ASIAAAAAAAAAAAAAAAAA", "jti-2"));
        assert_ne!(
            *s,
            *derive_secret(&[8u8; 32], "ASIAAAAAAAAAAAAAAAAA", "jti-1")
        );
    }
}
