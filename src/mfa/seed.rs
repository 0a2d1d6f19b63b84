//! TOTP shared secrets ("seeds"): the [`Seed`] secret type, fresh generation from
//! the operating system's CSPRNG, and the base32 / hex text forms.
//!
//! Length policy (RFC 4226 §4 R6, RFC 6238 §5.1, NIST SP 800-63B §5.1.4.1):
//! * at least [`MIN_SEED_LEN`] bytes (128 bits) — the RFC 4226 MUST;
//! * fresh seeds are [`GENERATED_SEED_LEN`] bytes (160 bits), the RFC 4226
//!   recommendation and what authenticator apps expect for HMAC-SHA1;
//! * at most [`MAX_SEED_LEN`] bytes (512 bits, the SHA-512 output length that
//!   RFC 6238 §5.1 suggests as the largest useful key). The bound also keeps
//!   every seed no longer than the HMAC block size of SHA-1/SHA-256 (64 bytes),
//!   which `totp.rs` relies on to key HMAC without a fallible constructor.
//!
//! Text forms:
//! * base32 is RFC 4648 §6, uppercase, without `=` padding on output — the form
//!   authenticator apps and AWS's `Base32StringSeed` use. Parsing is lenient
//!   about case, trailing padding and ASCII whitespace (people copy seeds from
//!   PDFs with spaces every four characters), strict about everything else.
//! * hex is accepted for hardware-token seed files; case-insensitive, ASCII
//!   whitespace ignored.
//!
//! SECURITY: no error in this module carries any part of the input, because the
//! input is the secret. Errors may say how long the decoded value was; a length
//! is not the secret and is needed to fix a bad file.

use std::fmt;

use data_encoding::BASE32_NOPAD;
use rand::RngCore;
use rand::rngs::OsRng;
use zeroize::Zeroizing;

/// Smallest accepted seed: 16 bytes = 128 bits (RFC 4226 §4 R6 "MUST").
pub const MIN_SEED_LEN: usize = 16;
/// Size of a freshly generated seed: 20 bytes = 160 bits (RFC 4226 §4 R6 "RECOMMENDs").
pub const GENERATED_SEED_LEN: usize = 20;
/// Largest accepted seed: 64 bytes = 512 bits (the HMAC-SHA-512 output length).
pub const MAX_SEED_LEN: usize = 64;

/// Errors from building or parsing a [`Seed`].
///
/// SECURITY: variants carry lengths only, never seed material.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SeedError {
    /// The decoded seed is shorter than 128 bits.
    #[error(
        "seed too short: {len} bytes ({bits} bits), at least {min} bytes (128 bits) are required",
        bits = len * 8,
        min = MIN_SEED_LEN
    )]
    TooShort {
        /// Length of the decoded seed in bytes.
        len: usize,
    },
    /// The decoded seed is longer than [`MAX_SEED_LEN`].
    #[error("seed too long: {len} bytes, at most {max} bytes are accepted", max = MAX_SEED_LEN)]
    TooLong {
        /// Length of the decoded seed in bytes.
        len: usize,
    },
    /// The text is not valid RFC 4648 base32.
    #[error(
        "seed is not valid base32: expected RFC 4648 letters `A`-`Z` and digits `2`-`7` with a valid length (padding optional)"
    )]
    InvalidBase32,
    /// The text is not valid hexadecimal.
    #[error("seed is not valid hex: expected an even number of characters `0`-`9`, `a`-`f`")]
    InvalidHex,
    /// The operating system's random number generator failed.
    #[error("the operating system random number generator failed")]
    Rng,
}

/// A TOTP/HOTP shared secret.
///
/// SECURITY:
/// * the bytes live in a [`Zeroizing`] buffer allocated at its final size, so
///   they are wiped on drop and never copied by a reallocation;
/// * `Debug` is redacted and there is no `Display`, `Clone`, `PartialEq` or
///   `Serialize`: copying or printing a seed must be an explicit act
///   ([`Seed::expose_secret`], [`Seed::to_base32`]);
/// * the length is always within [`MIN_SEED_LEN`]..=[`MAX_SEED_LEN`].
pub struct Seed {
    bytes: Zeroizing<Vec<u8>>,
}

impl fmt::Debug for Seed {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // SECURITY: show that a seed is present and its size, never its bytes.
        write!(f, "Seed([REDACTED; {} bytes])", self.bytes.len())
    }
}

impl Seed {
    /// Takes ownership of raw seed bytes (for example just decrypted from the
    /// store). The vector is moved, not copied; on error it is wiped.
    pub fn from_bytes(bytes: Zeroizing<Vec<u8>>) -> Result<Self, SeedError> {
        check_len(bytes.len())?;
        Ok(Self { bytes })
    }

    /// Copies raw seed bytes into a new zeroizing buffer. The caller remains
    /// responsible for wiping `bytes`.
    pub fn from_slice(bytes: &[u8]) -> Result<Self, SeedError> {
        check_len(bytes.len())?;
        let mut buf = Zeroizing::new(Vec::with_capacity(bytes.len()));
        buf.extend_from_slice(bytes);
        Ok(Self { bytes: buf })
    }

    /// Generates a fresh 160-bit seed from the operating system CSPRNG.
    pub fn generate() -> Result<Self, SeedError> {
        Self::generate_with_len(GENERATED_SEED_LEN)
    }

    /// Generates a fresh seed of `len` bytes (within the accepted bounds) from
    /// the operating system CSPRNG.
    pub fn generate_with_len(len: usize) -> Result<Self, SeedError> {
        check_len(len)?;
        let mut buf = Zeroizing::new(vec![0u8; len]);
        // SECURITY: `OsRng` reads the kernel CSPRNG (RFC 4226 §4 R6, RFC 6238
        // §3 R6, ASVS 5.0 11.5.1). `try_fill_bytes` surfaces a failure instead
        // of panicking; a failed fill must never yield a predictable seed.
        OsRng.try_fill_bytes(&mut buf).map_err(|_| SeedError::Rng)?;
        Ok(Self { bytes: buf })
    }

    /// Parses a base32 seed: case-insensitive, trailing `=` padding optional,
    /// ASCII whitespace anywhere ignored.
    pub fn from_base32(text: &str) -> Result<Self, SeedError> {
        // SECURITY: the normalised copy is itself secret; keep it zeroizing.
        let mut norm = Zeroizing::new(Vec::with_capacity(text.len()));
        norm.extend(
            text.bytes()
                .filter(|b| !b.is_ascii_whitespace())
                .map(|b| b.to_ascii_uppercase()),
        );
        while norm.last() == Some(&b'=') {
            norm.pop();
        }
        let out_len = BASE32_NOPAD
            .decode_len(norm.len())
            .map_err(|_| SeedError::InvalidBase32)?;
        // Check the length before decoding so an absurdly long input costs nothing.
        check_len(out_len)?;
        let mut out = Zeroizing::new(vec![0u8; out_len]);
        let written = BASE32_NOPAD
            .decode_mut(&norm, &mut out)
            .map_err(|_| SeedError::InvalidBase32)?;
        out.truncate(written);
        Self::from_bytes(out)
    }

    /// Parses a hex seed: case-insensitive, ASCII whitespace anywhere ignored.
    pub fn from_hex(text: &str) -> Result<Self, SeedError> {
        let mut norm = Zeroizing::new(Vec::with_capacity(text.len()));
        norm.extend(text.bytes().filter(|b| !b.is_ascii_whitespace()));
        if norm.len() % 2 != 0 {
            return Err(SeedError::InvalidHex);
        }
        check_len(norm.len() / 2)?;
        let mut out = Zeroizing::new(vec![0u8; norm.len() / 2]);
        hex::decode_to_slice(&*norm, &mut out[..]).map_err(|_| SeedError::InvalidHex)?;
        Self::from_bytes(out)
    }

    /// The seed as RFC 4648 base32, uppercase, no padding (the form shown to
    /// users for manual entry and used in `otpauth://` URIs).
    pub fn to_base32(&self) -> Zeroizing<String> {
        let mut out = Zeroizing::new(String::with_capacity(
            BASE32_NOPAD.encode_len(self.bytes.len()),
        ));
        BASE32_NOPAD.encode_append(&self.bytes, &mut out);
        out
    }

    /// The raw seed bytes, for encrypting at rest and for HMAC keying.
    ///
    /// SECURITY: do not copy the result into non-zeroizing storage.
    pub fn expose_secret(&self) -> &[u8] {
        &self.bytes
    }

    /// Seed length in bytes (always within the accepted bounds).
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    /// Always `false`: a seed is never empty. Present for API completeness.
    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }
}

fn check_len(len: usize) -> Result<(), SeedError> {
    if len < MIN_SEED_LEN {
        Err(SeedError::TooShort { len })
    } else if len > MAX_SEED_LEN {
        Err(SeedError::TooLong { len })
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn generated_seed_is_160_bits_and_differs() {
        let a = Seed::generate().unwrap();
        let b = Seed::generate().unwrap();
        assert_eq!(a.len(), 20);
        assert_eq!(b.len(), 20);
        assert_ne!(a.expose_secret(), b.expose_secret());
        assert!(!a.is_empty());
    }

    #[test]
    fn generate_with_len_enforces_bounds() {
        assert_eq!(Seed::generate_with_len(64).unwrap().len(), 64);
        assert_eq!(Seed::generate_with_len(16).unwrap().len(), 16);
        assert_eq!(
            Seed::generate_with_len(15).unwrap_err(),
            SeedError::TooShort { len: 15 }
        );
        assert_eq!(
            Seed::generate_with_len(65).unwrap_err(),
            SeedError::TooLong { len: 65 }
        );
    }

    #[test]
    fn base32_known_value() {
        // RFC 6238 SHA1 test seed "12345678901234567890".
        let s = Seed::from_slice(b"12345678901234567890").unwrap();
        assert_eq!(&*s.to_base32(), "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
        let back = Seed::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        assert_eq!(back.expose_secret(), b"12345678901234567890");
    }

    #[test]
    fn base32_lenient_forms() {
        let want = b"12345678901234567890";
        for text in [
            "gezdgnbvgy3tqojqgezdgnbvgy3tqojq",
            "GEZD GNBV GY3T QOJQ GEZD GNBV GY3T QOJQ",
            " gezd\tgnbv gy3t qojq gezd gnbv gy3t qojq \n",
        ] {
            assert_eq!(Seed::from_base32(text).unwrap().expose_secret(), want);
        }
        // 16 bytes → 26 chars + 6 padding.
        let s16 = Seed::from_slice(&[0xA5; 16]).unwrap();
        let enc = s16.to_base32();
        assert_eq!(enc.len(), 26);
        let padded = format!("{}======", &*enc);
        assert_eq!(
            Seed::from_base32(&padded).unwrap().expose_secret(),
            &[0xA5; 16]
        );
    }

    #[test]
    fn base32_rejects() {
        // Too long: 65 bytes.
        let long = BASE32_NOPAD.encode(&[7u8; 65]);
        for (text, want) in [
            // Invalid alphabet ('1', '0', '8' are not base32).
            ("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1", SeedError::InvalidBase32),
            // Padding in the middle.
            ("GEZDGNBV=Y3TQOJQGEZDGNBVGY3TQOJQ", SeedError::InvalidBase32),
            // Impossible length (1 mod 8).
            (
                "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQA",
                SeedError::InvalidBase32,
            ),
            // 80-bit seed: valid base32 but below the 128-bit minimum.
            ("JBSWY3DPEHPK3PXP", SeedError::TooShort { len: 10 }),
            ("", SeedError::TooShort { len: 0 }),
            (&long, SeedError::TooLong { len: 65 }),
        ] {
            assert_eq!(Seed::from_base32(text).unwrap_err(), want, "{text:?}");
        }
    }

    #[test]
    fn hex_forms() {
        let s = Seed::from_hex("3132333435363738393031323334353637383930").unwrap();
        assert_eq!(s.expose_secret(), b"12345678901234567890");
        let s = Seed::from_hex("3132 3334 3536 3738 3930 3132 3334 3536 3738 393A").unwrap();
        assert_eq!(s.len(), 20);
        for (text, want) in [
            (
                "3132333435363738393031323334353637383930F",
                SeedError::InvalidHex,
            ),
            (
                "zz32333435363738393031323334353637383930",
                SeedError::InvalidHex,
            ),
            (
                "00112233445566778899aabbccddee",
                SeedError::TooShort { len: 15 },
            ),
        ] {
            assert_eq!(Seed::from_hex(text).unwrap_err(), want, "{text:?}");
        }
    }

    #[test]
    fn debug_and_errors_never_show_secret() {
        let s = Seed::from_base32("GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ").unwrap();
        let dbg = format!("{s:?}");
        assert_eq!(dbg, "Seed([REDACTED; 20 bytes])");
        let bad = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJ1";
        let msg = Seed::from_base32(bad).unwrap_err().to_string();
        assert!(!msg.contains("GEZD"), "{msg}");
        let msg = Seed::from_hex("zz32333435363738393031323334353637383930")
            .unwrap_err()
            .to_string();
        assert!(!msg.contains("3132"), "{msg}");
    }

    #[test]
    fn error_messages_are_lowercase() {
        crate::mfa::assert_lowercase_messages([
            SeedError::TooShort { len: 3 },
            SeedError::TooLong { len: 99 },
            SeedError::InvalidBase32,
            SeedError::InvalidHex,
            SeedError::Rng,
        ]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        #[test]
        fn base32_and_hex_roundtrip(bytes in proptest::collection::vec(any::<u8>(), MIN_SEED_LEN..=MAX_SEED_LEN)) {
            let s = Seed::from_slice(&bytes).unwrap();
            let b32 = s.to_base32();
            prop_assert!(!b32.contains('='));
            let upper = Seed::from_base32(&b32).unwrap();
            prop_assert_eq!(upper.expose_secret(), &bytes[..]);
            let lower = Seed::from_base32(&b32.to_lowercase()).unwrap();
            prop_assert_eq!(lower.expose_secret(), &bytes[..]);
            let hx = Seed::from_hex(&hex::encode_upper(&bytes)).unwrap();
            prop_assert_eq!(hx.expose_secret(), &bytes[..]);
        }
    }
}
