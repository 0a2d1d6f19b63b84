//! HOTP (RFC 4226) and TOTP (RFC 6238) code generation, the constant-time
//! window matcher used by the verifier, the replay classification and the
//! two-code resynchronisation search.
//!
//! * HOTP: HMAC over the 8-byte big-endian counter, RFC 4226 §5.3 dynamic
//!   truncation, `mod 10^digits` (§5.3, §5.4).
//! * TOTP: the HOTP counter is the time step `T = floor(unix_time / X)` with
//!   `T0 = 0` (RFC 6238 §4.2). Time and counters are `u64` everywhere; RFC 6238
//!   §4.2 requires values beyond 32 bits (the Appendix B row t=20000000000).
//! * Verification: every candidate step in the window is computed and compared
//!   in constant time with no early exit (OWASP ASVS 5.0 11.2.4);
//!   replay refusal follows RFC 6238 §5.2 ("MUST NOT accept the second attempt
//!   of the OTP after the successful validation"); drift recording follows
//!   RFC 6238 §6.
//!
//! The module is pure: it never reads the clock or the store. The caller passes
//! the current step (from server time only, ASVS 5.0 6.5.8) and the device's
//! recorded drift and last accepted step, and records the outcome atomically.

use hmac::Hmac;
use hmac::digest::{Key, KeyInit, Mac};
use sha1::Sha1;
use sha2::{Sha256, Sha512};
use subtle::{Choice, ConditionallySelectable, ConstantTimeEq, ConstantTimeGreater, CtOption};
use zeroize::Zeroize;

pub use super::seed::Seed;

/// Default acceptance window: one step either side of the centre step.
///
/// RFC 6238 §5.2 recommends "at most one time step … as the network delay".
/// The verifier may pass 0 for a stricter policy (OWASP ASVS 5.0 6.5.5 caps a code's life at one 30 s step, RFC 6238 §5.2
/// tolerates one step of delay; single use keeps the longer window from meaning longer reuse).
pub const DEFAULT_WINDOW: u32 = 1;
/// Window used when enabling a device with two consecutive codes
/// (EnableMFADevice): the normal verification window.
pub const ENABLE_WINDOW: u32 = DEFAULT_WINDOW;
/// Search bound for ResyncMFADevice: ±10 steps (±5 minutes at 30 s).
///
/// RFC 6238 §6 asks for "a specific limit to the number of time steps a prover
/// can be out of synch"; RFC 4226 §7.4 bounds the look-ahead to keep the work
/// and the attacker's odds small. Two consecutive 6-digit codes matching by
/// chance somewhere in 21 positions has probability ≈ 21·10⁻¹².
pub const RESYNC_WINDOW: u32 = 10;
/// Hard cap on any window passed to this module; larger values are clamped.
/// SECURITY: bounds CPU per request (RFC 4226 §7.4 DoS remark) and the
/// guessing odds (RFC 4226 §6: Sec = s·v/10^Digit).
pub const MAX_WINDOW: u32 = RESYNC_WINDOW;

/// Errors from this module.
///
/// SECURITY: no variant carries a code or a seed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TotpError {
    /// The submitted code is not exactly N ASCII digits.
    #[error("invalid MFA code: expected exactly {expected} ASCII digits `0`-`9`")]
    InvalidCode {
        /// The number of digits the device is configured for.
        expected: u32,
    },
    /// Digit count other than 6 or 8.
    #[error("unsupported digit count `{0}`: expected `6` or `8`")]
    UnsupportedDigits(String),
    /// Period other than 30 or 60 seconds.
    #[error("unsupported period `{0}`: expected `30` or `60` seconds")]
    UnsupportedPeriod(String),
    /// Unknown HMAC algorithm name.
    #[error("unsupported algorithm `{0}`: expected `SHA1`, `SHA256` or `SHA512`")]
    UnsupportedAlgorithm(String),
    /// Resync/enable was given the same code twice.
    #[error("the two MFA codes must be different consecutive codes")]
    IdenticalCodes,
    /// Resync/enable found no pair of consecutive steps matching the two codes.
    #[error("the two MFA codes are not consecutive codes of this device")]
    ResyncFailed,
}

/// HMAC hash function (RFC 6238 §1.2: SHA-1, SHA-256, SHA-512).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Algorithm {
    /// HMAC-SHA-1, the default and what AWS and most apps use.
    #[default]
    Sha1,
    /// HMAC-SHA-256.
    Sha256,
    /// HMAC-SHA-512.
    Sha512,
}

impl Algorithm {
    /// The name used in `otpauth://` URIs and seed files.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// Parses `SHA1` / `SHA256` / `SHA512`, case-insensitive, an optional `-`
    /// after `SHA` tolerated (`sha-256`).
    pub fn parse(text: &str) -> Result<Self, TotpError> {
        let t = text.trim();
        let upper = t.to_ascii_uppercase();
        let name = match upper.strip_prefix("SHA-") {
            Some(rest) => format!("SHA{rest}"),
            None => upper,
        };
        match name.as_str() {
            "SHA1" => Ok(Self::Sha1),
            "SHA256" => Ok(Self::Sha256),
            "SHA512" => Ok(Self::Sha512),
            _ => Err(TotpError::UnsupportedAlgorithm(t.to_owned())),
        }
    }
}

impl std::str::FromStr for Algorithm {
    type Err = TotpError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

/// The one of `choices` whose `number` is written `text` (white space around it ignored), in
/// decimal and nothing else (no sign, no leading zero); else `text`, trimmed, for the error.
fn by_decimal<T: Copy, N: ToString>(
    text: &str,
    choices: [T; 2],
    number: fn(T) -> N,
) -> Result<T, String> {
    let text = text.trim();
    choices
        .into_iter()
        .find(|&c| number(c).to_string() == text)
        .ok_or_else(|| text.to_owned())
}

/// Number of code digits (RFC 4226 §5.3: at least 6; 8 for the RFC 6238 tables).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Digits {
    /// Six digits — AWS's `TokenCode` contract (AWS IAM API Reference, EnableMFADevice: `AuthenticationCode1` is six digits).
    #[default]
    Six,
    /// Eight digits.
    Eight,
}

impl Digits {
    /// 6 or 8.
    pub fn get(self) -> u32 {
        match self {
            Self::Six => 6,
            Self::Eight => 8,
        }
    }

    /// 10^digits: a code is the truncated HOTP value modulo this (RFC 4226 §5.3).
    fn modulus(self) -> u32 {
        10u32.pow(self.get())
    }

    /// Parses `6` or `8`.
    pub fn parse(text: &str) -> Result<Self, TotpError> {
        by_decimal(text, [Self::Six, Self::Eight], Self::get).map_err(TotpError::UnsupportedDigits)
    }
}

/// Time-step size X (RFC 6238 §4.1; 30 s recommended by §5.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Period {
    /// 30 seconds — the RFC default and AWS's step.
    #[default]
    Thirty,
    /// 60 seconds (some hardware tokens).
    Sixty,
}

impl Period {
    /// 30 or 60.
    pub fn as_secs(self) -> u64 {
        match self {
            Self::Thirty => 30,
            Self::Sixty => 60,
        }
    }

    /// Parses `30` or `60`.
    pub fn parse(text: &str) -> Result<Self, TotpError> {
        by_decimal(text, [Self::Thirty, Self::Sixty], Self::as_secs)
            .map_err(TotpError::UnsupportedPeriod)
    }
}

/// `TryFrom<number>` for a parameter: the same rule as its `parse`, on the number's decimal form.
macro_rules! try_from_decimal {
    ($($param:ty: $number:ty),*) => {$(
        impl TryFrom<$number> for $param {
            type Error = TotpError;
            fn try_from(v: $number) -> Result<Self, Self::Error> {
                Self::parse(&v.to_string())
            }
        }
    )*};
}

try_from_decimal!(Digits: u32, Period: u64);

/// The non-secret TOTP parameters of a device.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct TotpParams {
    /// HMAC hash.
    pub algorithm: Algorithm,
    /// Code length.
    pub digits: Digits,
    /// Time step.
    pub period: Period,
}

impl TotpParams {
    /// SHA1 / 6 digits / 30 s: what AWS virtual and hardware devices use
    /// (AWS IAM User Guide, 'Virtual MFA devices') and what every authenticator app assumes.
    pub const AWS: Self = Self {
        algorithm: Algorithm::Sha1,
        digits: Digits::Six,
        period: Period::Thirty,
    };
}

/// A syntactically valid OTP value.
///
/// The only public constructor is [`TotpCode::parse`], which accepts exactly
/// 6 or 8 ASCII digits. SECURITY: there is no `Display`, `PartialEq` or
/// `Clone`; `Debug` is redacted; comparison is constant-time inside this
/// module. Use [`TotpCode::expose_code`] to show a generated code on purpose.
pub struct TotpCode {
    value: u32,
    digits: Digits,
}

impl std::fmt::Debug for TotpCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "TotpCode([REDACTED; {} digits])", self.digits.get())
    }
}

impl TotpCode {
    /// Parses exactly `^[0-9]{6}$` or `^[0-9]{8}$` (per `digits`): ASCII only,
    /// no whitespace, sign, separator or Unicode digit; leading zeros kept.
    ///
    /// SECURITY: the error names what was expected and never echoes the input.
    pub fn parse(input: &str, digits: Digits) -> Result<Self, TotpError> {
        let err = TotpError::InvalidCode {
            expected: digits.get(),
        };
        let bytes = input.as_bytes();
        // Byte length equals char length only for ASCII; a multi-byte digit such
        // as U+FF11 fails the `is_ascii_digit` test below either way.
        if bytes.len() != digits.get() as usize {
            return Err(err);
        }
        let mut value: u32 = 0;
        for &b in bytes {
            if !b.is_ascii_digit() {
                return Err(err);
            }
            // At most 8 digits: fits in u32 without overflow.
            value = value * 10 + u32::from(b - b'0');
        }
        Ok(Self { value, digits })
    }

    /// The configured digit count of this code.
    pub fn digits(&self) -> Digits {
        self.digits
    }

    /// The code as a zero-padded digit string (e.g. to display a generated code
    /// or to drive a test client). SECURITY: never log it.
    pub fn expose_code(&self) -> String {
        format!("{:0width$}", self.value, width = self.digits.get() as usize)
    }

    /// Constant-time equality of value and digit count.
    fn ct_eq(&self, other: &Self) -> Choice {
        let same_digits = (self.digits.get() as u8).ct_eq(&(other.digits.get() as u8));
        self.value.ct_eq(&other.value) & same_digits
    }
}

/// The TOTP time step for a Unix time: `floor(unix_secs / X)`, `T0 = 0`
/// (RFC 6238 §4.2). 64-bit throughout.
pub fn step_for(unix_secs: u64, period: Period) -> u64 {
    unix_secs / period.as_secs()
}

/// Centre step for verification: the current step shifted by the device's
/// recorded drift (RFC 6238 §6), saturating at the ends of the `u64` range.
pub fn centre_step(current_step: u64, drift: i64) -> u64 {
    current_step.saturating_add_signed(drift)
}

/// Signed drift of `step` relative to `current_step`, saturating to `i64`.
pub fn drift_of(step: u64, current_step: u64) -> i64 {
    if step >= current_step {
        i64::try_from(step - current_step).unwrap_or(i64::MAX)
    } else {
        i64::try_from(current_step - step).map_or(i64::MIN, |d| -d)
    }
}

/// HOTP value (RFC 4226 §5.3) for `counter`.
pub fn hotp(seed: &Seed, algorithm: Algorithm, digits: Digits, counter: u64) -> TotpCode {
    let mut tag = [0u8; 64];
    let msg = counter.to_be_bytes();
    let len = match algorithm {
        Algorithm::Sha1 => hmac_into::<Hmac<Sha1>>(seed.expose_secret(), &msg, &mut tag),
        Algorithm::Sha256 => hmac_into::<Hmac<Sha256>>(seed.expose_secret(), &msg, &mut tag),
        Algorithm::Sha512 => hmac_into::<Hmac<Sha512>>(seed.expose_secret(), &msg, &mut tag),
    };
    let value = truncate(&tag, len) % digits.modulus();
    // SECURITY: the MAC output is key-derived; wipe it.
    tag.zeroize();
    TotpCode { value, digits }
}

/// TOTP value for time step `step` (RFC 6238 §4: HOTP with counter T).
pub fn code_at(seed: &Seed, params: &TotpParams, step: u64) -> TotpCode {
    hotp(seed, params.algorithm, params.digits, step)
}

/// HMAC(key, msg) into `out`, returning the tag length (20, 32 or 64).
///
/// SECURITY/correctness: RFC 2104 step (1) pads a key shorter than the hash
/// block size B with zeros to B bytes. `Seed` guarantees ≤ 64 bytes, and B is
/// 64 (SHA-1, SHA-256) or 128 (SHA-512), so copying the key into a zeroed
/// block-sized array and using the infallible fixed-size `KeyInit::new` is
/// exactly HMAC(key) — verified by the RFC 4226/6238 vectors below — and
/// avoids a fallible constructor whose error could never happen.
fn hmac_into<M: Mac + KeyInit>(key: &[u8], msg: &[u8], out: &mut [u8; 64]) -> usize {
    debug_assert!(key.len() <= super::seed::MAX_SEED_LEN);
    let mut block = Key::<M>::default();
    for (dst, src) in block.iter_mut().zip(key) {
        *dst = *src;
    }
    let mut mac = <M as KeyInit>::new(&block);
    block.as_mut_slice().zeroize();
    Mac::update(&mut mac, msg);
    let mut tag = mac.finalize().into_bytes();
    let mut len = 0;
    for (dst, src) in out.iter_mut().zip(tag.iter()) {
        *dst = *src;
        len += 1;
    }
    tag.as_mut_slice().zeroize();
    len
}

/// RFC 4226 §5.3 dynamic truncation: offset = low nibble of the last byte,
/// 31-bit big-endian integer at that offset.
fn truncate(tag: &[u8; 64], len: usize) -> u32 {
    // len ≥ 20 and offset ≤ 15, so offset + 3 ≤ 18 is always inside the tag.
    let offset = usize::from(tag[len.saturating_sub(1) & 63] & 0x0f);
    u32::from_be_bytes([
        tag[offset],
        tag[offset + 1],
        tag[offset + 2],
        tag[offset + 3],
    ]) & 0x7fff_ffff
}

/// Runs `check(step)` for every step in `centre-window ..= centre+window`
/// (window clamped to [`MAX_WINDOW`]) and returns the highest step for which it
/// returned true.
///
/// SECURITY: the number of evaluations is always `2·window+1`; steps that would
/// fall outside the `u64` range are still evaluated (on a dummy step) and then
/// masked out; results are folded with `subtle` selects, never a branch or an
/// early return, so timing does not reveal which candidate (if any) matched.
/// The *highest* matching step is kept so that recording it as the last used
/// step refuses every lower candidate afterwards (a code that collides with an
/// earlier step cannot be accepted twice).
fn scan(centre: u64, window: u32, mut check: impl FnMut(u64) -> Choice) -> CtOption<u64> {
    let w = u64::from(window.min(MAX_WINDOW));
    let mut found = Choice::from(0);
    let mut best = 0u64;
    for i in 0..=(2 * w) {
        // candidate = centre + (i - w), without wrapping at either end.
        let candidate = if i < w {
            centre.checked_sub(w - i)
        } else {
            centre.checked_add(i - w)
        };
        let in_range = Choice::from(u8::from(candidate.is_some()));
        let step = candidate.unwrap_or(0);
        let hit = check(step) & in_range;
        best = u64::conditional_select(&best, &step, hit);
        found |= hit;
    }
    CtOption::new(best, found)
}

/// Window matcher: which step in `centre ± window` produces `code`?
///
/// `centre` is the current step plus the device's recorded drift (see
/// [`centre_step`]); `window` is normally [`DEFAULT_WINDOW`]. Returns the
/// highest matching step. Every candidate is computed and compared in
/// constant time (see `scan`).
pub fn match_window(
    seed: &Seed,
    params: &TotpParams,
    code: &TotpCode,
    centre: u64,
    window: u32,
) -> Option<u64> {
    scan(centre, window, |step| {
        code_at(seed, params, step).ct_eq(code)
    })
    .into()
}

/// Outcome of a verification, for the store layer to record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Match {
    /// The code matched `step`, which is newer than the last accepted step:
    /// record `step` as the device's last used step (and, optionally, the drift
    /// `drift_of(step, current_step)`).
    Accepted {
        /// The matched time step.
        step: u64,
    },
    /// The code matched, but at a step ≤ the last accepted step (RFC 6238 §5.2).
    /// Must be answered exactly like [`Match::NoMatch`] (OWASP ASVS 5.0 6.3.8: no oracle telling replay from a wrong code).
    Replayed,
    /// The code matched no step in the window.
    NoMatch,
}

/// Applies the replay rule to a window-match result: a match at a step ≤
/// `last_used_step` is [`Match::Replayed`].
///
/// SECURITY: the comparison is done with `subtle`; the only branch is the
/// final construction of the enum, so "replayed" and "fresh" cost the same
/// here. The caller must make the two failure outcomes indistinguishable
/// (same error, same counter increment, same latency class).
pub fn classify(matched: Option<u64>, last_used_step: Option<u64>) -> Match {
    let found = Choice::from(u8::from(matched.is_some()));
    let step = matched.unwrap_or(0);
    let has_last = Choice::from(u8::from(last_used_step.is_some()));
    let last = last_used_step.unwrap_or(0);
    let fresh = !has_last | step.ct_gt(&last);
    let accepted = found & fresh;
    let replayed = found & !fresh;
    if bool::from(accepted) {
        Match::Accepted { step }
    } else if bool::from(replayed) {
        Match::Replayed
    } else {
        Match::NoMatch
    }
}

/// Full verification: [`match_window`] followed by [`classify`].
pub fn verify(
    seed: &Seed,
    params: &TotpParams,
    code: &TotpCode,
    centre: u64,
    window: u32,
    last_used_step: Option<u64>,
) -> Match {
    classify(
        match_window(seed, params, code, centre, window),
        last_used_step,
    )
}

/// Result of a successful two-code resynchronisation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resync {
    /// The step of the second code (`s + 1`): record it as the device's last
    /// used step, so neither code can be replayed.
    pub step: u64,
    /// `step - current_step` (signed): record it as the device's drift.
    pub drift: i64,
}

/// Two-code resynchronisation (AWS ResyncMFADevice / EnableMFADevice, RFC 6238
/// §6): finds a step `s` in `current_step ± window` with `code1` at `s` and
/// `code2` at `s + 1`.
///
/// * `window`: [`RESYNC_WINDOW`] (±10) for resync, [`ENABLE_WINDOW`] (±1)
///   for enable; clamped to [`MAX_WINDOW`]. The search is centred on
///   server time, not on the old drift, because resync re-measures the drift.
/// * `last_used_step`: both codes must be newer than it (RFC 6238 §5.2), so a
///   resync cannot reuse already-accepted codes. Pass `None` at enable time.
///
/// Identical codes are refused up front; a non-consecutive pair finds no `s`.
/// Every candidate is evaluated (see `scan`); if several `s` match, the
/// highest is used.
pub fn resync(
    seed: &Seed,
    params: &TotpParams,
    code1: &TotpCode,
    code2: &TotpCode,
    current_step: u64,
    window: u32,
    last_used_step: Option<u64>,
) -> Result<Resync, TotpError> {
    // Comparing the user's two inputs reveals nothing about the seed, but use
    // the constant-time path anyway for uniformity.
    if bool::from(code1.ct_eq(code2)) {
        return Err(TotpError::IdenticalCodes);
    }
    let has_last = Choice::from(u8::from(last_used_step.is_some()));
    let last = last_used_step.unwrap_or(0);
    let found: Option<u64> = scan(current_step, window, |s| {
        // s + 1 would overflow only at u64::MAX; such an s never matches.
        let next_ok = Choice::from(u8::from(s < u64::MAX));
        let first = code_at(seed, params, s).ct_eq(code1);
        let second = code_at(seed, params, s.saturating_add(1)).ct_eq(code2);
        let fresh = !has_last | s.ct_gt(&last);
        first & second & next_ok & fresh
    })
    .into();
    match found {
        Some(s) => {
            let step = s.saturating_add(1);
            Ok(Resync {
                step,
                drift: drift_of(step, current_step),
            })
        }
        None => Err(TotpError::ResyncFailed),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const SEED20: &[u8] = b"12345678901234567890";
    const SEED32: &[u8] = b"12345678901234567890123456789012";
    const SEED64: &[u8] = b"1234567890123456789012345678901234567890123456789012345678901234";

    fn seed(b: &[u8]) -> Seed {
        Seed::from_slice(b).unwrap()
    }

    fn params(algorithm: Algorithm, digits: Digits) -> TotpParams {
        TotpParams {
            algorithm,
            digits,
            period: Period::Thirty,
        }
    }

    fn code(s: &str, d: Digits) -> TotpCode {
        TotpCode::parse(s, d).unwrap()
    }

    /// RFC 4226 Appendix D, Table 1 (intermediate HMAC-SHA-1 values).
    #[test]
    fn rfc4226_appendix_d_hmac_values() {
        let table = [
            "cc93cf18508d94934c64b65d8ba7667fb7cde4b0",
            "75a48a19d4cbe100644e8ac1397eea747a2d33ab",
            "0bacb7fa082fef30782211938bc1c5e70416ff44",
            "66c28227d03a2d5529262ff016a1e6ef76557ece",
            "a904c900a64b35909874b33e61c5938a8e15ed1c",
            "a37e783d7b7233c083d4f62926c7a25f238d0316",
            "bc9cd28561042c83f219324d3c607256c03272ae",
            "a4fb960c0bc06e1eabb804e5b397cdc4b45596fa",
            "1b3c89f65e6c9e883012052823443f048b4332db",
            "1637409809a679dc698207310c8c7fc07290d9e5",
        ];
        for (count, want) in table.iter().enumerate() {
            let mut tag = [0u8; 64];
            let len = hmac_into::<Hmac<Sha1>>(SEED20, &(count as u64).to_be_bytes(), &mut tag);
            assert_eq!(len, 20);
            assert_eq!(hex::encode(&tag[..len]), *want, "count {count}");
        }
    }

    /// RFC 4226 Appendix D, Table 2 (truncated values and 6-digit HOTP).
    #[test]
    fn rfc4226_appendix_d_hotp_values() {
        let table: [(u32, &str); 10] = [
            (1284755224, "755224"),
            (1094287082, "287082"),
            (137359152, "359152"),
            (1726969429, "969429"),
            (1640338314, "338314"),
            (868254676, "254676"),
            (1918287922, "287922"),
            (82162583, "162583"),
            (673399871, "399871"),
            (645520489, "520489"),
        ];
        let s = seed(SEED20);
        for (count, (truncated, want)) in table.iter().enumerate() {
            let mut tag = [0u8; 64];
            let len = hmac_into::<Hmac<Sha1>>(SEED20, &(count as u64).to_be_bytes(), &mut tag);
            assert_eq!(truncate(&tag, len), *truncated, "count {count}");
            let c = hotp(&s, Algorithm::Sha1, Digits::Six, count as u64);
            assert_eq!(c.expose_code(), *want, "count {count}");
        }
    }

    /// RFC 4226 §5.4 worked truncation example.
    #[test]
    fn rfc4226_section_5_4_truncation_example() {
        let mut tag = [0u8; 64];
        let bytes = hex::decode("1f8698690e02ca16618550ef7f19da8e945b555a").unwrap();
        tag[..20].copy_from_slice(&bytes);
        assert_eq!(truncate(&tag, 20), 0x50ef7f19);
        assert_eq!(truncate(&tag, 20) % 1_000_000, 872921);
    }

    /// RFC 6238 Appendix B, all 18 rows, 8 digits, per-mode seeds.
    #[test]
    fn rfc6238_appendix_b() {
        let rows: [(u64, u64, &str, &str, &str); 6] = [
            (59, 0x1, "94287082", "46119246", "90693936"),
            (1111111109, 0x23523EC, "07081804", "68084774", "25091201"),
            (1111111111, 0x23523ED, "14050471", "67062674", "99943326"),
            (1234567890, 0x273EF07, "89005924", "91819424", "93441116"),
            (2000000000, 0x3F940AA, "69279037", "90698825", "38618901"),
            (20000000000, 0x27BC86AA, "65353130", "77737706", "47863826"),
        ];
        let (s1, s256, s512) = (seed(SEED20), seed(SEED32), seed(SEED64));
        for (t, step_hex, sha1, sha256, sha512) in rows {
            let step = step_for(t, Period::Thirty);
            assert_eq!(step, step_hex, "T for t={t}");
            let got1 = code_at(&s1, &params(Algorithm::Sha1, Digits::Eight), step);
            let got256 = code_at(&s256, &params(Algorithm::Sha256, Digits::Eight), step);
            let got512 = code_at(&s512, &params(Algorithm::Sha512, Digits::Eight), step);
            assert_eq!(got1.expose_code(), sha1, "SHA1 t={t}");
            assert_eq!(got256.expose_code(), sha256, "SHA256 t={t}");
            assert_eq!(got512.expose_code(), sha512, "SHA512 t={t}");
        }
    }

    /// Vectors derived from RFC 6238 Appendix B's seeds: 6-digit SHA1 and the classic
    /// wrong-seed SHA256 regression values.
    #[test]
    fn derived_vectors_six_digits_and_wrong_seed_regression() {
        let s1 = seed(SEED20);
        let six = [
            (59, "287082"),
            (1111111109, "081804"),
            (1111111111, "050471"),
            (1234567890, "005924"),
            (2000000000, "279037"),
            (20000000000, "353130"),
        ];
        for (t, want) in six {
            let got = code_at(&s1, &TotpParams::AWS, step_for(t, Period::Thirty));
            assert_eq!(got.expose_code(), want, "t={t}");
        }
        // SHA256 with the 20-byte seed gives these (a different key, so not
        // the Appendix B values); pins that the key is used as given.
        let wrong = [
            (59, "32247374"),
            (1111111109, "34756375"),
            (20000000000, "24142410"),
        ];
        for (t, want) in wrong {
            let got = code_at(
                &s1,
                &params(Algorithm::Sha256, Digits::Eight),
                step_for(t, Period::Thirty),
            );
            assert_eq!(got.expose_code(), want, "t={t}");
        }
    }

    #[test]
    fn step_for_floor_and_64_bit() {
        assert_eq!(step_for(59, Period::Thirty), 1);
        assert_eq!(step_for(60, Period::Thirty), 2);
        assert_eq!(step_for(59, Period::Sixty), 0);
        assert_eq!(step_for(60, Period::Sixty), 1);
        assert_eq!(step_for(20_000_000_000, Period::Thirty), 0x27BC86AA);
        assert_eq!(step_for(u64::MAX, Period::Thirty), u64::MAX / 30);
    }

    #[test]
    fn code_parse_accepts_leading_zeros() {
        let c = code("000000", Digits::Six);
        assert_eq!(c.expose_code(), "000000");
        let c = code("081804", Digits::Six);
        assert_eq!(c.expose_code(), "081804");
        let c = code("07081804", Digits::Eight);
        assert_eq!(c.expose_code(), "07081804");
        assert_eq!(c.digits(), Digits::Eight);
    }

    #[test]
    fn code_parse_rejects() {
        let six = TotpError::InvalidCode { expected: 6 };
        for bad in [
            "12345",
            "1234567",
            " 123456",
            "123456 ",
            "12345a",
            "１２３４５６",
            "",
            "+12345",
            "-12345",
            "12 456",
            "١٢٣٤٥٦",
            "12345\n",
        ] {
            assert_eq!(
                TotpCode::parse(bad, Digits::Six).unwrap_err(),
                six,
                "{bad:?}"
            );
        }
        let eight = TotpError::InvalidCode { expected: 8 };
        for bad in ["123456", "123456789", "1234567a"] {
            assert_eq!(TotpCode::parse(bad, Digits::Eight).unwrap_err(), eight);
        }
    }

    #[test]
    fn code_errors_and_debug_never_echo_the_code() {
        let e = TotpCode::parse("98765a", Digits::Six).unwrap_err();
        let msg = e.to_string();
        assert_eq!(
            msg,
            "invalid MFA code: expected exactly 6 ASCII digits `0`-`9`"
        );
        assert!(!msg.contains("98765"));
        let c = code("987654", Digits::Six);
        let dbg = format!("{c:?}");
        assert!(!dbg.contains("987654"), "{dbg}");
    }

    #[test]
    fn parse_params() {
        assert_eq!(Algorithm::parse("sha1").unwrap(), Algorithm::Sha1);
        assert_eq!(Algorithm::parse("SHA-256").unwrap(), Algorithm::Sha256);
        assert_eq!("Sha512".parse::<Algorithm>().unwrap(), Algorithm::Sha512);
        assert!(Algorithm::parse("MD5").is_err());
        assert!(Algorithm::parse("SHA-").is_err());
        assert!(Algorithm::parse("SHA").is_err());
        assert!(Algorithm::parse("").is_err());
        assert_eq!(Digits::parse("8").unwrap(), Digits::Eight);
        assert!(Digits::parse("7").is_err());
        assert_eq!(Digits::try_from(6).unwrap(), Digits::Six);
        assert_eq!(Period::parse("60").unwrap(), Period::Sixty);
        assert!(Period::parse("45").is_err());
        assert_eq!(Period::try_from(30).unwrap(), Period::Thirty);
        assert_eq!(TotpParams::default(), TotpParams::AWS);
    }

    #[test]
    fn window_edges() {
        let s = seed(SEED20);
        let p = TotpParams::AWS;
        let centre = 1_000_000u64;
        for w in [0u32, 1, 2] {
            let wi = i64::from(w);
            for off in -(wi + 1)..=(wi + 1) {
                let step = centre.saturating_add_signed(off);
                let c = code_at(&s, &p, step);
                let got = match_window(&s, &p, &c, centre, w);
                if off.abs() <= wi {
                    assert_eq!(got, Some(step), "w={w} off={off}");
                } else {
                    // A chance collision inside the window is ~1e-6; these
                    // fixed vectors have none.
                    assert_eq!(got, None, "w={w} off={off}");
                }
            }
        }
    }

    #[test]
    fn window_at_u64_ends_does_not_wrap() {
        let s = seed(SEED20);
        let p = TotpParams::AWS;
        let c0 = code_at(&s, &p, 0);
        assert_eq!(match_window(&s, &p, &c0, 0, 1), Some(0));
        let cmax = code_at(&s, &p, u64::MAX);
        assert_eq!(match_window(&s, &p, &cmax, u64::MAX, 1), Some(u64::MAX));
        // A code for step 1 must not be found by wrapping around from MAX.
        let c1 = code_at(&s, &p, 1);
        assert_eq!(match_window(&s, &p, &c1, u64::MAX, 1), None);
    }

    #[test]
    fn window_is_clamped() {
        let s = seed(SEED20);
        let p = TotpParams::AWS;
        let centre = 5_000u64;
        let inside = code_at(&s, &p, centre + u64::from(MAX_WINDOW));
        let outside = code_at(&s, &p, centre + u64::from(MAX_WINDOW) + 1);
        assert!(match_window(&s, &p, &inside, centre, u32::MAX).is_some());
        assert_eq!(match_window(&s, &p, &outside, centre, u32::MAX), None);
    }

    #[test]
    fn wrong_digit_count_never_matches() {
        let s = seed(SEED20);
        let step = 42;
        let eight = code_at(&s, &params(Algorithm::Sha1, Digits::Eight), step);
        // Same numeric value, wrong configured length.
        let as_six = code(&eight.expose_code()[2..], Digits::Six);
        assert_eq!(
            match_window(
                &s,
                &params(Algorithm::Sha1, Digits::Eight),
                &as_six,
                step,
                1
            ),
            None
        );
    }

    #[test]
    fn replay_helper() {
        assert_eq!(classify(None, None), Match::NoMatch);
        assert_eq!(classify(None, Some(5)), Match::NoMatch);
        assert_eq!(classify(Some(5), None), Match::Accepted { step: 5 });
        assert_eq!(classify(Some(6), Some(5)), Match::Accepted { step: 6 });
        assert_eq!(classify(Some(5), Some(5)), Match::Replayed);
        assert_eq!(classify(Some(4), Some(5)), Match::Replayed);
        assert_eq!(classify(Some(0), None), Match::Accepted { step: 0 });
        assert_eq!(classify(Some(0), Some(0)), Match::Replayed);
    }

    #[test]
    fn verify_then_replay() {
        let s = seed(SEED20);
        let p = TotpParams::AWS;
        let now = step_for(1_700_000_000, p.period);
        let c = code_at(&s, &p, now);
        let first = verify(&s, &p, &c, now, DEFAULT_WINDOW, None);
        assert_eq!(first, Match::Accepted { step: now });
        let Match::Accepted { step } = first else {
            unreachable!()
        };
        assert_eq!(
            verify(&s, &p, &c, now, DEFAULT_WINDOW, Some(step)),
            Match::Replayed
        );
        // The previous step's code after accepting `now` is also refused.
        let prev = code_at(&s, &p, now - 1);
        assert_eq!(
            verify(&s, &p, &prev, now, DEFAULT_WINDOW, Some(step)),
            Match::Replayed
        );
        // The next step is fresh.
        let next = code_at(&s, &p, now + 1);
        assert_eq!(
            verify(&s, &p, &next, now + 1, DEFAULT_WINDOW, Some(step)),
            Match::Accepted { step: now + 1 }
        );
        let wrong = code(
            if c.expose_code() == "000000" {
                "000001"
            } else {
                "000000"
            },
            Digits::Six,
        );
        // (A chance match of the wrong code is ~3e-6; fixed vector has none.)
        assert_eq!(
            verify(&s, &p, &wrong, now, DEFAULT_WINDOW, None),
            Match::NoMatch
        );
    }

    #[test]
    fn drift_helpers() {
        assert_eq!(centre_step(100, -3), 97);
        assert_eq!(centre_step(100, 3), 103);
        assert_eq!(centre_step(1, -3), 0);
        assert_eq!(centre_step(u64::MAX, 1), u64::MAX);
        assert_eq!(drift_of(97, 100), -3);
        assert_eq!(drift_of(103, 100), 3);
        assert_eq!(drift_of(u64::MAX, 0), i64::MAX);
        assert_eq!(drift_of(0, u64::MAX), i64::MIN);
    }

    /// The step the resync tests run at.
    const NOW: u64 = 56_666_666;

    /// `resync` at step [`NOW`] over SEED20's codes (AWS parameters) of steps `first` and
    /// `second`, in `window`, after `last` was accepted.
    fn resync_steps(
        first: u64,
        second: u64,
        window: u32,
        last: Option<u64>,
    ) -> Result<Resync, TotpError> {
        let (s, p) = (seed(SEED20), TotpParams::AWS);
        let (c1, c2) = (code_at(&s, &p, first), code_at(&s, &p, second));
        resync(&s, &p, &c1, &c2, NOW, window, last)
    }

    #[test]
    fn resync_found_ahead_and_behind() {
        for drift in [-10i64, -4, 0, 1, 7, 9] {
            let d = NOW.saturating_add_signed(drift);
            let r = resync_steps(d, d + 1, RESYNC_WINDOW, None).unwrap();
            assert_eq!(r.step, d + 1, "drift {drift}");
            assert_eq!(r.drift, drift + 1, "drift {drift}");
        }
    }

    #[test]
    fn resync_not_found_outside_window() {
        let d = NOW + 11;
        assert_eq!(
            resync_steps(d, d + 1, RESYNC_WINDOW, None).unwrap_err(),
            TotpError::ResyncFailed
        );
        // Enable uses the normal window: two steps off is refused.
        assert_eq!(
            resync_steps(NOW + 2, NOW + 3, ENABLE_WINDOW, None).unwrap_err(),
            TotpError::ResyncFailed
        );
        assert_eq!(
            resync_steps(NOW - 1, NOW, ENABLE_WINDOW, None).unwrap(),
            Resync {
                step: NOW,
                drift: 0
            }
        );
    }

    #[test]
    fn resync_rejects_identical_reversed_and_gapped() {
        assert_eq!(
            resync_steps(NOW, NOW, RESYNC_WINDOW, None).unwrap_err(),
            TotpError::IdenticalCodes
        );
        assert_eq!(
            resync_steps(NOW + 1, NOW, RESYNC_WINDOW, None).unwrap_err(),
            TotpError::ResyncFailed
        );
        assert_eq!(
            resync_steps(NOW, NOW + 2, RESYNC_WINDOW, None).unwrap_err(),
            TotpError::ResyncFailed
        );
    }

    #[test]
    fn resync_refuses_already_used_codes() {
        assert_eq!(
            resync_steps(NOW, NOW + 1, RESYNC_WINDOW, Some(NOW)).unwrap_err(),
            TotpError::ResyncFailed
        );
        assert_eq!(
            resync_steps(NOW, NOW + 1, RESYNC_WINDOW, Some(NOW - 1))
                .unwrap()
                .step,
            NOW + 1
        );
    }

    #[test]
    fn error_messages_are_lowercase() {
        crate::mfa::assert_lowercase_messages([
            TotpError::InvalidCode { expected: 6 },
            TotpError::UnsupportedDigits("7".into()),
            TotpError::UnsupportedPeriod("45".into()),
            TotpError::UnsupportedAlgorithm("MD5".into()),
            TotpError::IdenticalCodes,
            TotpError::ResyncFailed,
        ]);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn parse_roundtrips_any_value(v in 0u32..1_000_000, v8 in 0u32..100_000_000) {
            let s6 = format!("{v:06}");
            prop_assert_eq!(TotpCode::parse(&s6, Digits::Six).unwrap().expose_code(), s6);
            let s8 = format!("{v8:08}");
            prop_assert_eq!(TotpCode::parse(&s8, Digits::Eight).unwrap().expose_code(), s8);
        }

        #[test]
        fn generated_code_matches_its_own_step(
            key in proptest::collection::vec(any::<u8>(), 16..=64),
            step in 1u64..u64::MAX,
            alg in prop_oneof![Just(Algorithm::Sha1), Just(Algorithm::Sha256), Just(Algorithm::Sha512)],
        ) {
            let s = Seed::from_slice(&key).unwrap();
            let p = params(alg, Digits::Eight);
            let c = code_at(&s, &p, step);
            prop_assert_eq!(c.expose_code().len(), 8);
            let m = match_window(&s, &p, &c, step, 1);
            // The highest match is kept; a collision at step+1 is ~1e-8.
            prop_assert!(m == Some(step) || m == Some(step + 1));
        }
    }
}
