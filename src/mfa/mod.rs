//! MFA primitives for the broker: everything about one-time passwords that
//! does not touch the clock, the network or the store.
//!
//! This module owns:
//! * [`totp`] — HOTP (RFC 4226 §5.3) and TOTP (RFC 6238 §4) over
//!   HMAC-SHA-1/256/512, the [`TotpCode`] input type, the constant-time window
//!   matcher, the replay classification ([`Match`]) and two-code resync;
//! * [`seed`] — the [`Seed`] secret type, CSPRNG generation and base32/hex
//!   forms (RFC 4226 §4 R6 length rules, RFC 4648 base32);
//! * [`otpauth`] — the `otpauth://totp/` provisioning URI and its QR PNG;
//! * [`import`] — the hardware-token seed file parser.
//!
//! Why hand-written rather than the `totp-rs` crate: that crate compared codes
//! with `==` before 1.1.0 (RUSTSEC-2022-0018), and the
//! verifier here needs control it does not offer — a window evaluated in full
//! without early exit, the matched step returned so the store can refuse
//! replays (RFC 6238 §5.2) and record drift (RFC 6238 §6), a bounded two-code
//! resync, 64-bit steps (RFC 6238 §4.2), and secret types that zeroize and never
//! print. The algorithms are small and pinned by the RFC 4226 Appendix D and
//! RFC 6238 Appendix B vectors in the tests.
//!
//! The caller (store/service layer) is responsible for: taking the current
//! step from server time, applying the device's drift with
//! [`totp::centre_step`], recording `Match::Accepted { step }` atomically
//! together with issuance, answering `Replayed` and `NoMatch` identically, and
//! throttling failures (RFC 6238 §5.2, NIST SP 800-63B §5.1.4.2 and §5.2.2).

pub mod import;
pub mod lockout;
pub mod otpauth;
pub mod seed;
pub mod totp;

pub use import::{HardwareToken, ImportError, LineError, LineProblem, parse_seed_file};
pub use otpauth::{OtpauthError, otpauth_uri, qr_png};
pub use seed::{Seed, SeedError};
pub use totp::{
    Algorithm, Digits, Match, Period, Resync, TotpCode, TotpError, TotpParams, code_at, hotp,
    match_window, resync, step_for, verify,
};

/// Asserts that every message starts with a lowercase letter: the standard library's
/// `std::error::Error` documentation asks for "concise lowercase sentences", as callers print them
/// after a colon.
#[cfg(test)]
#[track_caller]
fn assert_lowercase_messages<E: std::fmt::Display>(errors: impl IntoIterator<Item = E>) {
    for e in errors {
        let m = e.to_string();
        assert!(m.starts_with(|c: char| c.is_ascii_lowercase()), "{m}");
    }
}
