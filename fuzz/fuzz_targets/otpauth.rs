//! The `otpauth://totp/` provisioning URI (`sts_broker::mfa::otpauth_uri`) and the base32 seed
//! parser behind it.
//!
//! Input, one item a line: the issuer, the account name, the parameters
//! `ALGORITHM,DIGITS,PERIOD` (unparsable ones fall back to AWS's SHA1, 6, 30), then the seed as
//! base32 text (when it does not parse as base32, its raw bytes are the seed).
//!
//! Invariants: nothing panics; the URI is refused exactly when a label rule is broken (empty,
//! over 256 bytes, a `:`, a control character); an accepted URI is printable ASCII with no
//! space, and parsing it back the way authenticator apps do (label split on its first `:`,
//! query split on `&` and `=`, percent-decoding) gives the issuer, the account, the seed and
//! the parameters that went in; a base32 seed written out and read again is the same seed.
#![no_main]

use libfuzzer_sys::fuzz_target;
use sts_broker::mfa::{Algorithm, Digits, Period, Seed, TotpParams, otpauth_uri};

fn label_ok(s: &str) -> bool {
    !s.is_empty() && s.len() <= 256 && !s.contains(':') && !s.chars().any(char::is_control)
}

fn hex(b: u8) -> Option<u8> {
    char::from(b)
        .to_digit(16)
        .and_then(|d| u8::try_from(d).ok())
}

/// RFC 3986 percent-decoding; `None` for a stray `%` or a result that is not UTF-8.
fn decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' {
            out.push(hex(*b.get(i + 1)?)? << 4 | hex(*b.get(i + 2)?)?);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn params_of(line: &str) -> TotpParams {
    let mut f = line.split(',');
    let (a, d, p) = (f.next(), f.next(), f.next());
    TotpParams {
        algorithm: a
            .and_then(|a| Algorithm::parse(a).ok())
            .unwrap_or(Algorithm::Sha1),
        digits: d.and_then(|d| Digits::parse(d).ok()).unwrap_or(Digits::Six),
        period: p
            .and_then(|p| Period::parse(p).ok())
            .unwrap_or(Period::Thirty),
    }
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.splitn(4, '\n');
    let issuer = lines.next().unwrap_or_default();
    let account = lines.next().unwrap_or_default();
    let params = params_of(lines.next().unwrap_or_default());
    let seed_text = lines.next().unwrap_or_default();
    let seed = match Seed::from_base32(seed_text) {
        Ok(seed) => {
            let again = Seed::from_base32(&seed.to_base32())
                .unwrap_or_else(|e| panic!("written base32 reads back: {e}"));
            assert_eq!(seed.expose_secret(), again.expose_secret());
            seed
        }
        Err(_) => match Seed::from_slice(seed_text.as_bytes()) {
            Ok(seed) => seed,
            Err(_) => return,
        },
    };

    let uri = otpauth_uri(issuer, account, &seed, &params);
    let valid = label_ok(issuer) && label_ok(account);
    assert_eq!(uri.is_ok(), valid, "refused exactly when a label is bad");
    let Ok(uri) = uri else {
        return;
    };
    assert!(
        uri.bytes().all(|b| b.is_ascii_graphic()),
        "printable ASCII, no space"
    );
    let rest = uri
        .strip_prefix("otpauth://totp/")
        .unwrap_or_else(|| panic!("the scheme and type come first"));
    let (label, query) = rest
        .split_once('?')
        .unwrap_or_else(|| panic!("a query follows the label"));
    let (l_issuer, l_account) = label
        .split_once(':')
        .unwrap_or_else(|| panic!("the label is issuer:account"));
    assert_eq!(decode(l_issuer).as_deref(), Some(issuer));
    assert_eq!(decode(l_account).as_deref(), Some(account));

    let mut got: Vec<(&str, String)> = Vec::new();
    for pair in query.split('&') {
        let (k, v) = pair
            .split_once('=')
            .unwrap_or_else(|| panic!("each parameter is name=value: {pair}"));
        got.push((k, decode(v).unwrap_or_else(|| panic!("{k} decodes"))));
    }
    let names: Vec<&str> = got.iter().map(|(k, _)| *k).collect();
    assert_eq!(
        names,
        ["secret", "issuer", "algorithm", "digits", "period"],
        "each parameter once"
    );
    let value = |name: &str| {
        got.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    };
    let secret = Seed::from_base32(value("secret").unwrap_or_default())
        .unwrap_or_else(|e| panic!("the secret is base32: {e}"));
    assert_eq!(
        secret.expose_secret(),
        seed.expose_secret(),
        "the same seed"
    );
    assert_eq!(value("issuer"), Some(issuer));
    let back = TotpParams {
        algorithm: Algorithm::parse(value("algorithm").unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}")),
        digits: Digits::parse(value("digits").unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}")),
        period: Period::parse(value("period").unwrap_or_default())
            .unwrap_or_else(|e| panic!("{e}")),
    };
    assert_eq!(back, params, "the same parameters");
});
