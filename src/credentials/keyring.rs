//! The signing key ring: the current Ed25519 key that signs new session tokens, and the public
//! keys that still verify tokens (the current one plus retired ones until their last token has
//! expired). Published as a JWKS (RFC 7517, OKP keys of RFC 8037).

use super::CredentialsError;
use crate::crypto::{Binding, MasterKey};
use crate::domain::SigningKeyRecord;
use base64::Engine;
use ed25519_dalek::pkcs8::EncodePrivateKey;
use sha2::{Digest, Sha256};
use std::sync::RwLock;
use time::OffsetDateTime;
use zeroize::Zeroizing;

struct Verifier {
    kid: String,
    public: [u8; 32],
    key: jsonwebtoken::DecodingKey,
}

struct Ring {
    current: Option<(String, jsonwebtoken::EncodingKey)>,
    verifiers: Vec<Verifier>,
}

/// The key ring. Swapped whole on rotation.
pub struct KeyRing {
    ring: RwLock<Ring>,
    /// Tokens whose signature and fixed claims were already checked (see `token.rs`).
    pub(super) verified: super::token::VerifiedTokens,
}

impl std::fmt::Debug for KeyRing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("KeyRing(<redacted>)")
    }
}

fn binding(kid: &str) -> Binding<'_> {
    Binding {
        kind: "signing-key",
        owner: kid,
    }
}

fn b64url(bytes: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A fresh signing key, sealed for storage.
pub fn new_signing_key(
    master: &MasterKey,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, CredentialsError> {
    sealed_record(
        master,
        &ed25519_dalek::SigningKey::generate(&mut rand::rngs::OsRng),
        now,
    )
}

fn sealed_record(
    master: &MasterKey,
    signing: &ed25519_dalek::SigningKey,
    now: OffsetDateTime,
) -> Result<SigningKeyRecord, CredentialsError> {
    let public = signing.verifying_key().to_bytes();
    let kid = b64url(&Sha256::digest(public)[..12]);
    let seed = Zeroizing::new(signing.to_bytes());
    let private_blob = master
        .seal(binding(&kid), seed.as_ref())
        .map_err(|e| CredentialsError::Key(kid.clone(), e.to_string()))?;
    Ok(SigningKeyRecord {
        kid,
        public_key: public.to_vec(),
        private_blob,
        created: now,
        retired: None,
        publish_until: None,
    })
}

fn build(
    records: &[SigningKeyRecord],
    master: &MasterKey,
    now: OffsetDateTime,
) -> Result<Ring, CredentialsError> {
    let mut current = None;
    let mut verifiers = Vec::new();
    for r in records {
        if r.publish_until.is_some_and(|t| t < now) {
            continue;
        }
        let public: [u8; 32] = r.public_key.as_slice().try_into().map_err(|_| {
            CredentialsError::Key(r.kid.clone(), "public key is not 32 bytes".into())
        })?;
        if r.retired.is_none() && current.is_none() {
            let seed = master
                .open(binding(&r.kid), &r.private_blob)
                .map_err(|e| CredentialsError::Key(r.kid.clone(), e.to_string()))?;
            let seed: [u8; 32] = seed
                .as_slice()
                .try_into()
                .map_err(|_| CredentialsError::Key(r.kid.clone(), "seed is not 32 bytes".into()))?;
            let signing = ed25519_dalek::SigningKey::from_bytes(&seed);
            if signing.verifying_key().to_bytes() != public {
                return Err(CredentialsError::Key(
                    r.kid.clone(),
                    "private and public keys differ".into(),
                ));
            }
            let der = signing
                .to_pkcs8_der()
                .map_err(|e| CredentialsError::Key(r.kid.clone(), e.to_string()))?;
            current = Some((
                r.kid.clone(),
                jsonwebtoken::EncodingKey::from_ed_der(der.as_bytes()),
            ));
        }
        verifiers.push(Verifier {
            kid: r.kid.clone(),
            public,
            key: jsonwebtoken::DecodingKey::from_ed_der(&public),
        });
    }
    Ok(Ring { current, verifiers })
}

impl KeyRing {
    /// A ring from stored keys (newest first).
    pub fn from_records(
        records: &[SigningKeyRecord],
        master: &MasterKey,
        now: OffsetDateTime,
    ) -> Result<Self, CredentialsError> {
        Ok(Self {
            ring: RwLock::new(build(records, master, now)?),
            verified: super::token::VerifiedTokens::new(),
        })
    }

    /// A ring whose only key is the Ed25519 key with this `seed`, current since the Unix epoch:
    /// the fixed key ring of the fuzz targets (`fuzz/`). The broker never calls it; its keys are
    /// random and come sealed from the store.
    #[doc(hidden)]
    pub fn fixed_for_fuzzing(seed: &[u8; 32]) -> Result<Self, CredentialsError> {
        let master = MasterKey::from_bytes(seed)
            .map_err(|e| CredentialsError::Key("fixed".into(), e.to_string()))?;
        let epoch = OffsetDateTime::UNIX_EPOCH;
        let record = sealed_record(&master, &ed25519_dalek::SigningKey::from_bytes(seed), epoch)?;
        Self::from_records(&[record], &master, epoch)
    }

    /// Replaces the ring after a rotation.
    pub fn reload(
        &self,
        records: &[SigningKeyRecord],
        master: &MasterKey,
        now: OffsetDateTime,
    ) -> Result<(), CredentialsError> {
        let ring = build(records, master, now)?;
        if let Ok(mut g) = self.ring.write() {
            *g = ring;
            // A key may have left the ring: nothing it signed may be answered from memory.
            self.verified.clear();
        }
        Ok(())
    }

    pub(super) fn current(&self) -> Result<(String, jsonwebtoken::EncodingKey), CredentialsError> {
        let g = self
            .ring
            .read()
            .map_err(|_| CredentialsError::NoCurrentKey)?;
        g.current.clone().ok_or(CredentialsError::NoCurrentKey)
    }

    pub(super) fn verifier(&self, kid: &str) -> Option<jsonwebtoken::DecodingKey> {
        let g = self.ring.read().ok()?;
        g.verifiers
            .iter()
            .find(|v| v.kid == kid)
            .map(|v| v.key.clone())
    }

    /// The key id signing new tokens.
    pub fn current_kid(&self) -> Option<String> {
        self.ring
            .read()
            .ok()?
            .current
            .as_ref()
            .map(|(k, _)| k.clone())
    }

    /// The published keys as a JWK Set.
    pub fn jwks(&self) -> serde_json::Value {
        let keys: Vec<serde_json::Value> = self
            .ring
            .read()
            .map(|g| {
                g.verifiers
                    .iter()
                    .map(|v| {
                        serde_json::json!({
                            "kty": "OKP",
                            "crv": "Ed25519",
                            "x": b64url(&v.public),
                            "kid": v.kid,
                            "alg": "EdDSA",
                            "use": "sig",
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        serde_json::json!({ "keys": keys })
    }
}

#[cfg(test)]
mod tests {
    use super::super::token::{SessionClaims, SessionKind, TokenError, Validation};
    use super::*;

    fn master() -> MasterKey {
        MasterKey::from_bytes(MasterKey::generate().as_ref()).unwrap()
    }

    fn claims(now: i64) -> SessionClaims {
        SessionClaims {
            iss: "sts-broker:111122223333".into(),
            aud: "sts-broker".into(),
            sub: "arn:aws:iam::111122223333:user/alice".into(),
            iat: now,
            nbf: now,
            exp: now + 900,
            jti: "j1".into(),
            akid: "ASIAAAAAAAAAAAAAAAAA".into(),
            amr: Some(vec!["mfa".into()]),
            auth_time: Some(now),
            kind: SessionKind::Session,
            uid: "AIDAEXAMPLE".into(),
            role_id: None,
            src: None,
            chained: false,
            policy: None,
        }
    }

    fn expect() -> Validation {
        Validation {
            issuer: "sts-broker:111122223333".into(),
            audience: "sts-broker".into(),
        }
    }

    fn ring(m: &MasterKey, now: OffsetDateTime) -> (KeyRing, Vec<SigningKeyRecord>) {
        let recs = vec![new_signing_key(m, now).unwrap()];
        (KeyRing::from_records(&recs, m, now).unwrap(), recs)
    }

    /// A one-key ring made at a fixed time, a token it signed then, and that time (Unix seconds).
    fn setup() -> (KeyRing, String, i64, Vec<SigningKeyRecord>) {
        let m = master();
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (r, recs) = ring(&m, t);
        let now = t.unix_timestamp();
        let tok = r.sign(&claims(now)).unwrap();
        (r, tok, now, recs)
    }

    #[test]
    fn sign_and_verify_round_trip_and_time_claims() {
        let (r, tok, now, _) = setup();
        assert_eq!(r.verify(&tok, &expect(), now).unwrap(), claims(now));
        assert_eq!(r.verify(&tok, &expect(), now + 899).unwrap().jti, "j1");
        assert_eq!(
            r.verify(&tok, &expect(), now + 900),
            Err(TokenError::Expired)
        );
        assert_eq!(
            r.verify(&tok, &expect(), now - 60),
            Err(TokenError::NotYetValid)
        );
        let wrong_aud = Validation {
            audience: "other".into(),
            ..expect()
        };
        assert_eq!(r.verify(&tok, &wrong_aud, now), Err(TokenError::Invalid));
        let wrong_iss = Validation {
            issuer: "sts-broker:999".into(),
            ..expect()
        };
        assert_eq!(r.verify(&tok, &wrong_iss, now), Err(TokenError::Invalid));
    }

    #[test]
    fn fixed_rings_are_the_same_key_for_the_same_seed() {
        let now = 1_800_000_000;
        let a = KeyRing::fixed_for_fuzzing(&[0x42; 32]).unwrap();
        let b = KeyRing::fixed_for_fuzzing(&[0x42; 32]).unwrap();
        let c = KeyRing::fixed_for_fuzzing(&[0x43; 32]).unwrap();
        assert_eq!(a.current_kid(), b.current_kid());
        assert_eq!(a.jwks(), b.jwks());
        let tok = a.sign(&claims(now)).unwrap();
        assert_eq!(b.verify(&tok, &expect(), now).unwrap(), claims(now));
        assert_eq!(c.verify(&tok, &expect(), now), Err(TokenError::UnknownKey));
    }

    #[test]
    fn a_token_from_another_ring_is_unknown() {
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (a, _) = ring(&master(), t);
        let (b, _) = ring(&master(), t);
        let tok = a.sign(&claims(t.unix_timestamp())).unwrap();
        assert_eq!(
            b.verify(&tok, &expect(), t.unix_timestamp()),
            Err(TokenError::UnknownKey)
        );
    }

    #[test]
    fn retired_keys_verify_until_published_and_current_signs() {
        let m = master();
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let (r, mut recs) = ring(&m, t);
        let old = r.sign(&claims(t.unix_timestamp())).unwrap();
        let newer = new_signing_key(&m, t).unwrap();
        recs[0].retired = Some(t);
        recs[0].publish_until = Some(t + time::Duration::seconds(900));
        recs.insert(0, newer.clone());
        r.reload(&recs, &m, t).unwrap();
        assert_eq!(r.current_kid().unwrap(), newer.kid);
        assert!(
            r.verify(&old, &expect(), t.unix_timestamp()).is_ok(),
            "old tokens still verify"
        );
        assert_eq!(r.jwks()["keys"].as_array().unwrap().len(), 2);
        let later = t + time::Duration::seconds(901);
        r.reload(&recs, &m, later).unwrap();
        assert_eq!(
            r.jwks()["keys"].as_array().unwrap().len(),
            1,
            "the retired key is gone"
        );
    }

    /// A verification that passed against the old ring and stores its result after a reload that
    /// removed the signing key must not leave the token answerable from memory.
    #[test]
    fn a_verification_that_raced_a_reload_is_not_remembered() {
        let m = master();
        let t = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let now = t.unix_timestamp();
        let (r, _) = ring(&m, t);
        let tok = r.sign(&claims(now)).unwrap();
        let replacement = [new_signing_key(&m, t).unwrap()];
        let raced = r.verify_with(&tok, &expect(), now, || {
            r.reload(&replacement, &m, t).unwrap();
        });
        assert_eq!(
            raced.map(|c| c.jti),
            Ok("j1".into()),
            "checked before the reload"
        );
        assert_eq!(
            r.verify(&tok, &expect(), now),
            Err(TokenError::UnknownKey),
            "its key has left the ring"
        );
    }

    /// The JWT attacks RFC 8725 section 2 lists (algorithm confusion, `none`, forged or swapped keys,
    /// tampered claims): every variant is refused.
    mod attacks {
        use super::*;
        use base64::Engine;

        fn b64(v: &serde_json::Value) -> String {
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(serde_json::to_vec(v).unwrap())
        }

        fn parts(tok: &str) -> (serde_json::Value, serde_json::Value, String) {
            let mut it = tok.split('.');
            let dec = |s: &str| {
                serde_json::from_slice::<serde_json::Value>(
                    &base64::engine::general_purpose::URL_SAFE_NO_PAD
                        .decode(s)
                        .unwrap(),
                )
                .unwrap()
            };
            let h = dec(it.next().unwrap());
            let p = dec(it.next().unwrap());
            (h, p, it.next().unwrap().to_owned())
        }

        fn refused(r: &KeyRing, tok: &str, now: i64) -> TokenError {
            r.verify(tok, &expect(), now).expect_err("must be refused")
        }

        #[test]
        fn alg_none_and_variants() {
            let (r, tok, now, _) = setup();
            let (mut h, p, _) = parts(&tok);
            for alg in ["none", "noNE", "NONE"] {
                h["alg"] = serde_json::json!(alg);
                let forged = format!("{}.{}.", b64(&h), b64(&p));
                refused(&r, &forged, now);
            }
        }

        #[test]
        fn hs256_keyed_with_the_public_key() {
            let (r, tok, now, recs) = setup();
            let (mut h, p, _) = parts(&tok);
            h["alg"] = serde_json::json!("HS256");
            let signing_input = format!("{}.{}", b64(&h), b64(&p));
            use hmac::{Hmac, Mac};
            let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&recs[0].public_key).unwrap();
            mac.update(signing_input.as_bytes());
            let sig = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .encode(mac.finalize().into_bytes());
            assert_eq!(
                refused(&r, &format!("{signing_input}.{sig}"), now),
                TokenError::Header
            );
        }

        #[test]
        fn unknown_or_hostile_kid_and_key_urls() {
            let (r, tok, now, _) = setup();
            let (h, p, sig) = parts(&tok);
            for kid in ["nope", "' OR 1=1 --", "../../etc/passwd", ""] {
                let mut h2 = h.clone();
                h2["kid"] = serde_json::json!(kid);
                let t = format!("{}.{}.{sig}", b64(&h2), b64(&p));
                assert_eq!(refused(&r, &t, now), TokenError::UnknownKey, "kid {kid}");
            }
            for (k, v) in [
                (
                    "jku",
                    serde_json::json!("https://attacker.example/jwks.json"),
                ),
                (
                    "x5u",
                    serde_json::json!("https://attacker.example/cert.pem"),
                ),
                (
                    "jwk",
                    serde_json::json!({"kty": "OKP", "crv": "Ed25519", "x": "AAAA"}),
                ),
            ] {
                let mut h2 = h.clone();
                h2[k] = v;
                let t = format!("{}.{}.{sig}", b64(&h2), b64(&p));
                assert_eq!(refused(&r, &t, now), TokenError::Header, "{k}");
            }
            let mut h2 = h.clone();
            h2["typ"] = serde_json::json!("JWT");
            assert_eq!(
                refused(&r, &format!("{}.{}.{sig}", b64(&h2), b64(&p)), now),
                TokenError::Header
            );
        }

        #[test]
        fn edited_payload_truncated_or_empty_signature() {
            let (r, tok, now, _) = setup();
            // Verified once, so it is in the cache of verified tokens: edits must still miss it.
            assert!(r.verify(&tok, &expect(), now).is_ok());
            let (h, mut p, sig) = parts(&tok);
            p["sub"] = serde_json::json!("arn:aws:iam::111122223333:root");
            assert_eq!(
                refused(&r, &format!("{}.{}.{sig}", b64(&h), b64(&p)), now),
                TokenError::Invalid
            );
            let (h, p, sig) = parts(&tok);
            let head = format!("{}.{}", b64(&h), b64(&p));
            refused(&r, &format!("{head}.{}", &sig[..sig.len() / 2]), now);
            refused(&r, &format!("{head}."), now);
            refused(&r, "not-a-token", now);
            refused(&r, &format!("{tok}.extra"), now);
            refused(&r, &"a".repeat(1 << 20), now);
            let json_serialization =
                serde_json::json!({"payload": p, "signatures": []}).to_string();
            refused(&r, &json_serialization, now);
        }

        #[test]
        fn claim_set_attacks() {
            let (r, _, now, _) = setup();
            // Signed by our own key, so only the claims are wrong.
            let sign_raw = |payload: serde_json::Value| {
                let (kid, key) = r.current().unwrap();
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::EdDSA);
                h.typ = Some(super::super::super::TOKEN_TYPE.to_owned());
                h.kid = Some(kid);
                jsonwebtoken::encode(&h, &payload, &key).unwrap()
            };
            let good = serde_json::to_value(claims(now)).unwrap();
            assert!(r.verify(&sign_raw(good.clone()), &expect(), now).is_ok());
            let mut expired = good.clone();
            expired["exp"] = serde_json::json!(now - 1);
            assert_eq!(refused(&r, &sign_raw(expired), now), TokenError::Expired);
            let mut future = good.clone();
            future["nbf"] = serde_json::json!(now + 3600);
            assert_eq!(refused(&r, &sign_raw(future), now), TokenError::NotYetValid);
            let mut as_string = good.clone();
            as_string["exp"] = serde_json::json!((now + 900).to_string());
            refused(&r, &sign_raw(as_string), now);
            for missing in [
                "exp", "nbf", "aud", "iss", "sub", "jti", "akid", "iat", "kind", "uid",
            ] {
                let mut c = good.clone();
                c.as_object_mut().unwrap().remove(missing);
                refused(&r, &sign_raw(c), now);
            }
            let mut wrong_aud = good.clone();
            wrong_aud["aud"] = serde_json::json!("someone-else");
            refused(&r, &sign_raw(wrong_aud), now);
            // No amr: accepted, but it carries no MFA.
            let mut no_mfa = good.clone();
            no_mfa.as_object_mut().unwrap().remove("amr");
            assert!(
                !r.verify(&sign_raw(no_mfa), &expect(), now)
                    .unwrap()
                    .mfa_present()
            );
        }
    }
}
