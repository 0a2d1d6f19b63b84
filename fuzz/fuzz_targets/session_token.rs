//! Session-token verification against a fixed key ring.
//!
//! Input, two forms:
//! * a JSON object of session claims, optionally followed by a line of edits `position:byte`
//!   separated by spaces: the claims are signed with the fixed ring, the token is verified at
//!   its `iat` (clamped to years 1970-9999, the range of the broker's clock), then edited byte
//!   by byte and verified again;
//! * anything else: the input is the token itself, verified at 2027-01-15T08:00:00Z
//!   (1,800,000,000).
//!
//! Invariants: nothing panics; a token verifies only if its signature is the fixed ring's
//! Ed25519 signature over exactly its header and payload (checked here with `ed25519-dalek`
//! and the ring's published JWKS, not with the broker's code), its header is ours, and its
//! claims are the ones returned; a token the ring signed verifies, at a time inside its
//! validity, exactly when its claims are well formed; the same claims signed by any other
//! key never verify; an edited token never verifies.
#![no_main]

use std::sync::LazyLock;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use libfuzzer_sys::fuzz_target;
use sts_broker::credentials::{KeyRing, SessionClaims, TOKEN_TYPE, TokenError, Validation};

const NOW: i64 = 1_800_000_000;
const ISSUER: &str = "sts-broker:111122223333";
const AUDIENCE: &str = "sts-broker";

struct Fixed {
    ring: KeyRing,
    other: KeyRing,
    public: VerifyingKey,
    kid: String,
}

static FIXED: LazyLock<Fixed> = LazyLock::new(|| {
    let ring = KeyRing::fixed_for_fuzzing(&[0x42; 32]).unwrap_or_else(|e| panic!("{e}"));
    let other = KeyRing::fixed_for_fuzzing(&[0x43; 32]).unwrap_or_else(|e| panic!("{e}"));
    // The public key as the ring publishes it.
    let jwks = ring.jwks();
    let jwk = &jwks["keys"][0];
    let x = URL_SAFE_NO_PAD
        .decode(jwk["x"].as_str().unwrap_or_default())
        .unwrap_or_default();
    let x: [u8; 32] = x.try_into().unwrap_or_else(|_| panic!("a 32-byte key"));
    Fixed {
        public: VerifyingKey::from_bytes(&x).unwrap_or_else(|e| panic!("{e}")),
        kid: jwk["kid"].as_str().unwrap_or_default().to_owned(),
        ring,
        other,
    }
});

fn expect() -> Validation {
    Validation {
        issuer: ISSUER.to_owned(),
        audience: AUDIENCE.to_owned(),
    }
}

/// Checks a token the ring accepted, independently of the broker's verifier.
fn check_accepted(token: &str, claims: &SessionClaims, now: i64) {
    let fixed = &*FIXED;
    let mut parts = token.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        panic!("an accepted token has three parts");
    };
    let sig = URL_SAFE_NO_PAD
        .decode(s)
        .unwrap_or_else(|e| panic!("an accepted signature is base64url: {e}"));
    let sig = Signature::from_slice(&sig).unwrap_or_else(|e| panic!("64 bytes: {e}"));
    let signing_input = format!("{h}.{p}");
    assert!(
        fixed.public.verify(signing_input.as_bytes(), &sig).is_ok(),
        "an accepted token is signed by the ring"
    );
    let header: serde_json::Value =
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(h).unwrap_or_default())
            .unwrap_or_else(|e| panic!("an accepted header is JSON: {e}"));
    assert_eq!(header["alg"], "EdDSA");
    assert_eq!(header["typ"], TOKEN_TYPE);
    assert_eq!(header["kid"], fixed.kid.as_str());
    let payload = URL_SAFE_NO_PAD.decode(p).unwrap_or_default();
    let signed: SessionClaims = serde_json::from_slice(&payload)
        .unwrap_or_else(|e| panic!("an accepted payload is our claims: {e}"));
    assert_eq!(&signed, claims, "the claims returned are the ones signed");
    assert_eq!(claims.iss, ISSUER);
    assert_eq!(claims.aud, AUDIENCE);
    assert!(now < claims.exp, "not expired");
    assert!(!claims.jti.is_empty() && !claims.akid.is_empty());
}

/// What `verify` must decide for claims the ring itself signed, at `now`.
fn well_formed(c: &SessionClaims, now: i64) -> bool {
    c.iss == ISSUER
        && c.aud == AUDIENCE
        && now < c.exp
        && now.saturating_add(5) >= c.nbf
        && now.saturating_add(5) >= c.iat
        && c.exp > c.iat
        && !c.jti.is_empty()
        && !c.akid.is_empty()
}

fuzz_target!(|data: &[u8]| {
    let fixed = &*FIXED;
    if data.first() != Some(&b'{') {
        let Ok(token) = std::str::from_utf8(data) else {
            return;
        };
        if let Ok(claims) = fixed.ring.verify(token, &expect(), NOW) {
            check_accepted(token, &claims, NOW);
        }
        return;
    }

    let mut stream = serde_json::Deserializer::from_slice(data).into_iter::<SessionClaims>();
    let Some(Ok(claims)) = stream.next() else {
        return;
    };
    let edits = std::str::from_utf8(&data[stream.byte_offset()..]).unwrap_or_default();
    let Ok(token) = fixed.ring.sign(&claims) else {
        return;
    };
    // Verified at its issue time, within the range of a real clock (years 1970 to 9999).
    let now = claims.iat.clamp(0, 253_402_300_799);
    let verdict = fixed.ring.verify(&token, &expect(), now);
    assert_eq!(
        verdict.is_ok(),
        well_formed(&claims, now),
        "a token of ours verifies exactly when its claims are well formed: {verdict:?}"
    );
    if let Ok(back) = &verdict {
        assert_eq!(back, &claims, "sign then verify gives the claims back");
        check_accepted(&token, back, now);
    }
    if let Ok(foreign) = fixed.other.sign(&claims) {
        assert_eq!(
            fixed.ring.verify(&foreign, &expect(), now),
            Err(TokenError::UnknownKey),
            "another key's token is refused"
        );
    }

    let mut edited = token.clone().into_bytes();
    for edit in edits.split_whitespace() {
        let Some((pos, byte)) = edit.split_once(':') else {
            continue;
        };
        let (Ok(pos), Ok(byte)) = (pos.parse::<usize>(), byte.parse::<u8>()) else {
            continue;
        };
        if let Some(b) = edited.get_mut(pos % token.len().max(1)) {
            *b = byte;
        }
    }
    let Ok(edited) = String::from_utf8(edited) else {
        return;
    };
    if edited != token {
        let result = fixed.ring.verify(&edited, &expect(), now);
        assert!(result.is_err(), "an edited token is refused");
    }
});
