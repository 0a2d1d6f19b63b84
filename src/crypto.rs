//! Secrets at rest and random identifiers.
//!
//! Every secret the broker stores (access-key secrets, TOTP seeds, signing keys) is sealed with
//! XChaCha20-Poly1305 under the data dir's master key. The associated data names the row the secret
//! belongs to (`kind` + the row's identity), so a ciphertext copied into another row fails to open:
//! a row swap in the database cannot move a secret between principals or devices.
//!
//! Blob layout: `version (1 byte) || nonce (24 bytes) || ciphertext+tag`. The random 192-bit nonce
//! makes nonce reuse under one key negligible without any counter state.

use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use rand::RngCore;
use rand::rngs::OsRng;
use std::fmt;
use zeroize::Zeroizing;

const BLOB_VERSION: u8 = 1;
const NONCE_LEN: usize = 24;
/// Length of the master key in bytes.
pub const MASTER_KEY_LEN: usize = 32;

/// Failures of sealing or opening a secret. Deliberately carries no detail: the only useful fact
/// is that the blob does not belong here (wrong key, wrong row, or damaged).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum CryptoError {
    #[error(
        "a stored secret could not be decrypted: wrong master key, or the secret belongs to another record"
    )]
    Open,
    #[error("a stored secret has an unknown format")]
    Format,
    #[error("the master key must be {MASTER_KEY_LEN} bytes")]
    KeyLength,
}

/// The key that encrypts every secret at rest.
pub struct MasterKey {
    cipher: XChaCha20Poly1305,
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// What a sealed secret belongs to; becomes the AEAD associated data.
#[derive(Debug, Clone, Copy)]
pub struct Binding<'a> {
    /// The kind of secret, e.g. `access-key`, `mfa-seed`, `signing-key`.
    pub kind: &'a str,
    /// The identity of the owning row, e.g. `AKIA...|AIDA...`.
    pub owner: &'a str,
}

impl Binding<'_> {
    fn aad(&self) -> Vec<u8> {
        let mut aad = Vec::with_capacity(16 + self.kind.len() + self.owner.len());
        aad.extend_from_slice(b"sts-broker/v1/");
        aad.extend_from_slice(self.kind.as_bytes());
        aad.push(0);
        aad.extend_from_slice(self.owner.as_bytes());
        aad
    }
}

impl MasterKey {
    /// A fresh key from the operating system's CSPRNG.
    pub fn generate() -> Zeroizing<[u8; MASTER_KEY_LEN]> {
        let mut k = Zeroizing::new([0u8; MASTER_KEY_LEN]);
        OsRng.fill_bytes(k.as_mut());
        k
    }

    /// Build from raw key bytes.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CryptoError> {
        if bytes.len() != MASTER_KEY_LEN {
            return Err(CryptoError::KeyLength);
        }
        let cipher =
            XChaCha20Poly1305::new_from_slice(bytes).map_err(|_| CryptoError::KeyLength)?;
        Ok(Self { cipher })
    }

    /// Encrypt `plaintext` for the row named by `binding`.
    pub fn seal(&self, binding: Binding<'_>, plaintext: &[u8]) -> Result<Vec<u8>, CryptoError> {
        let mut nonce = [0u8; NONCE_LEN];
        OsRng.fill_bytes(&mut nonce);
        let aad = binding.aad();
        let ct = self
            .cipher
            .encrypt(
                XNonce::from_slice(&nonce),
                Payload {
                    msg: plaintext,
                    aad: &aad,
                },
            )
            .map_err(|_| CryptoError::Format)?;
        let mut blob = Vec::with_capacity(1 + NONCE_LEN + ct.len());
        blob.push(BLOB_VERSION);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&ct);
        Ok(blob)
    }

    /// Decrypt a blob sealed for the row named by `binding`.
    pub fn open(
        &self,
        binding: Binding<'_>,
        blob: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, CryptoError> {
        let (version, rest) = blob.split_first().ok_or(CryptoError::Format)?;
        if *version != BLOB_VERSION || rest.len() < NONCE_LEN {
            return Err(CryptoError::Format);
        }
        let (nonce, ct) = rest.split_at(NONCE_LEN);
        let aad = binding.aad();
        self.cipher
            .decrypt(XNonce::from_slice(nonce), Payload { msg: ct, aad: &aad })
            .map(Zeroizing::new)
            .map_err(|_| CryptoError::Open)
    }
}

const BASE32_UPPER: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

/// `n` random characters of `[A-Z2-7]` (the alphabet of AWS access key ids).
pub fn random_base32(n: usize) -> String {
    random_from_alphabet(n, BASE32_UPPER)
}

/// `n` random characters of `[A-Z0-9]` (the alphabet of AWS unique ids such as `AIDA...`).
pub fn random_upper_alnum(n: usize) -> String {
    random_from_alphabet(n, b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")
}

/// A 40-character secret access key over `[A-Za-z0-9+/]` (240 bits of entropy).
pub fn random_secret_access_key() -> Zeroizing<String> {
    Zeroizing::new(random_from_alphabet(
        40,
        b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/",
    ))
}

/// Uniform choice by rejection sampling, so no character is favoured.
fn random_from_alphabet(n: usize, alphabet: &[u8]) -> String {
    let len = alphabet.len();
    debug_assert!(len > 0 && len <= 256);
    let limit = 256 - (256 % len);
    let mut out = String::with_capacity(n);
    let mut buf = [0u8; 64];
    while out.len() < n {
        OsRng.fill_bytes(&mut buf);
        for &b in &buf {
            if usize::from(b) < limit {
                out.push(char::from(alphabet[usize::from(b) % len]));
                if out.len() == n {
                    break;
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> MasterKey {
        MasterKey::from_bytes(MasterKey::generate().as_ref()).unwrap()
    }

    fn binding<'a>(kind: &'a str, owner: &'a str) -> Binding<'a> {
        Binding { kind, owner }
    }

    #[test]
    fn seal_open_round_trip() {
        let k = key();
        let b = binding("access-key", "AKIAEXAMPLE|root");
        let blob = k.seal(b, b"secret").unwrap();
        assert_eq!(k.open(b, &blob).unwrap().as_slice(), b"secret");
        assert!(
            !blob.windows(6).any(|w| w == b"secret"),
            "plaintext must not show"
        );
    }

    #[test]
    fn blob_moved_to_another_row_does_not_open() {
        let k = key();
        let a = binding("mfa-seed", "device-a");
        let b = binding("mfa-seed", "device-b");
        let blob = k.seal(a, b"seed").unwrap();
        assert_eq!(k.open(b, &blob), Err(CryptoError::Open));
        let other_kind = binding("access-key", "device-a");
        assert_eq!(k.open(other_kind, &blob), Err(CryptoError::Open));
    }

    #[test]
    fn wrong_key_or_tampered_blob_fails() {
        let b = binding("k", "o");
        let blob = key().seal(b, b"x").unwrap();
        assert_eq!(key().open(b, &blob), Err(CryptoError::Open));
        let k = key();
        let mut blob = k.seal(b, b"x").unwrap();
        let last = blob.len() - 1;
        blob[last] ^= 1;
        assert_eq!(k.open(b, &blob), Err(CryptoError::Open));
        assert_eq!(k.open(b, &[]), Err(CryptoError::Format));
    }

    #[test]
    fn random_ids_have_the_documented_alphabets() {
        let id = random_base32(16);
        assert_eq!(id.len(), 16);
        assert!(id.bytes().all(|c| BASE32_UPPER.contains(&c)));
        let s = random_secret_access_key();
        assert_eq!(s.len(), 40);
        assert_ne!(*s, *random_secret_access_key());
    }
}
