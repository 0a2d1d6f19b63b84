//! The hardware-token seed-file importer (`sts_broker::mfa::parse_seed_file`).
//!
//! Input: the file's text.
//!
//! Invariants: nothing panics; an accepted file yields one token per token line, each with a
//! valid serial, a 16-to-64-byte seed, and serials unique ignoring ASCII case; writing the
//! tokens back out (seed as `base32:`) and importing again gives the same tokens; a refused
//! file lists at least one problem, in line order, on lines that exist; and no seed field
//! appears in the error message or its `Debug` form (the module's SECURITY rule).
#![no_main]

use std::collections::HashSet;

use libfuzzer_sys::fuzz_target;
use sts_broker::mfa::import::validate_serial;
use sts_broker::mfa::{ImportError, parse_seed_file};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let body = text.strip_prefix('\u{feff}').unwrap_or(text);
    let token_lines: Vec<&str> = body
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect();

    match parse_seed_file(text) {
        Ok(tokens) => {
            assert_eq!(tokens.len(), token_lines.len(), "one token per token line");
            let mut serials = HashSet::new();
            for t in &tokens {
                assert!(validate_serial(&t.serial).is_ok(), "serial is valid");
                assert!((16..=64).contains(&t.seed.len()), "seed is 128 to 512 bits");
                assert!(
                    serials.insert(t.serial.to_ascii_lowercase()),
                    "serials are unique"
                );
            }
            let rewritten: String = tokens
                .iter()
                .map(|t| {
                    format!(
                        "{},base32:{},{},{},{}\n",
                        t.serial,
                        &*t.seed.to_base32(),
                        t.params.digits.get(),
                        t.params.period.as_secs(),
                        t.params.algorithm.as_str()
                    )
                })
                .collect();
            let again = parse_seed_file(&rewritten)
                .unwrap_or_else(|e| panic!("a written-out file imports again: {e}"));
            assert_eq!(again.len(), tokens.len());
            for (a, b) in tokens.iter().zip(&again) {
                assert_eq!(a.serial, b.serial);
                assert_eq!(a.params, b.params);
                assert_eq!(a.seed.expose_secret(), b.seed.expose_secret());
            }
        }
        Err(ImportError::NoTokens) => {
            assert!(token_lines.is_empty(), "NoTokens only without token lines");
        }
        Err(err @ ImportError::InvalidLines(_)) => {
            let ImportError::InvalidLines(lines) = &err else {
                return;
            };
            assert!(!lines.is_empty(), "a refusal names a problem");
            let count = body.lines().count();
            assert!(
                lines.windows(2).all(|w| w[0].line <= w[1].line),
                "problems in line order"
            );
            assert!(lines.iter().all(|l| (1..=count).contains(&l.line)));
            let shown = format!("{err}\n{err:?}");
            let serials: Vec<&str> = token_lines
                .iter()
                .filter_map(|l| l.split(',').next())
                .collect();
            for line in &token_lines {
                let Some(seed) = line.split(',').nth(1).map(str::trim) else {
                    continue;
                };
                // Long spaceless seed-like fields only: short or worded ones can occur in the
                // fixed message text, and a serial (which is echoed) may contain the same text.
                let seedlike = seed.len() >= 16
                    && seed.bytes().all(|b| b.is_ascii_alphanumeric() || b == b':');
                if seedlike && !serials.iter().any(|s| s.contains(seed)) {
                    assert!(!shown.contains(seed), "a seed field is never echoed");
                }
            }
        }
    }
});
