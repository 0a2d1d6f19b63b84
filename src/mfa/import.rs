//! Hardware-token seed file import (the broker's equivalent of the vendor seed
//! records behind AWS "hardware MFA device" serials; serial format and code
//! parameters as the AWS IAM User Guide describes hardware TOTP tokens).
//!
//! Format: UTF-8 text, one token per line, five comma-separated fields:
//!
//! ```text
//! # serial,seed,digits,period,algorithm
//! GAHT12345678,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,6,30,SHA1
//! GAHT12345679,hex:3132333435363738393031323334353637383930,6,30,SHA1
//! ```
//!
//! * Blank lines and lines whose first non-blank character is `#` are ignored;
//!   there are no trailing comments. Whitespace around fields is ignored; a
//!   leading UTF-8 byte-order mark and CRLF line ends are accepted.
//! * serial: 9–256 characters of AWS's `serialNumberType` alphabet
//!   (`[\w+=/:,.@-]`, `\w` read as ASCII word characters), the one
//!   `crate::ids::MfaSerial` checks requests with. A comma never reaches the
//!   check: it separates fields here.
//!   Serials are unique within the file, compared ASCII-case-insensitively so a
//!   file cannot hold two serials that a case-insensitive store would merge.
//! * seed: base32 by default (RFC 4648; case, padding and inner spaces
//!   tolerated, see `seed.rs`); a `hex:` prefix selects hexadecimal and an
//!   optional `base32:` prefix states the default explicitly. An explicit
//!   prefix is used instead of guessing because a hex string made only of
//!   the characters `A`-`F` and `2`-`7` is also valid base32.
//!   128 to 512 bits after decoding.
//! * digits: `6` or `8`; period: `30` or `60`; algorithm: `SHA1`, `SHA256`
//!   or `SHA512` (case-insensitive, `SHA-256` spelling accepted).
//!
//! All-or-nothing: every line is checked, and if any line is bad the result is
//! an error listing every problem with its 1-based line number, and no token.
//!
//! SECURITY: a seed is never echoed. The seed field is reported only by what
//! is wrong with it; other field values are echoed only when they are at most
//! [`MAX_ECHO_LEN`] characters, so a seed pasted into the wrong column (every
//! valid seed is 26+ characters) is never repeated in an error or a log.

use std::collections::HashMap;
use std::fmt;

use super::seed::{Seed, SeedError};
use super::totp::{Algorithm, Digits, Period, TotpParams};

/// Shortest accepted serial (AWS `serialNumberType` min).
pub const MIN_SERIAL_LEN: usize = *crate::ids::SERIAL_LEN.start();
/// Longest accepted serial (AWS `serialNumberType` max).
pub const MAX_SERIAL_LEN: usize = *crate::ids::SERIAL_LEN.end();
/// Field values longer than this are never echoed in errors.
pub const MAX_ECHO_LEN: usize = 8;

/// One imported hardware token.
#[derive(Debug)]
pub struct HardwareToken {
    /// Vendor serial number, e.g. `GAHT12345678`; the device identifier used
    /// as `SerialNumber` in STS/IAM calls.
    pub serial: String,
    /// The shared secret.
    pub seed: Seed,
    /// Digits, period and algorithm of the token.
    pub params: TotpParams,
}

/// What is wrong with one line.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum LineProblem {
    /// Not exactly five fields.
    #[error(
        "expected 5 comma-separated fields `serial,seed,digits,period,algorithm`, found {found}"
    )]
    FieldCount {
        /// Number of fields found.
        found: usize,
    },
    /// Serial length outside 9–256.
    #[error("serial must be 9 to 256 characters long, found {len}")]
    SerialLength {
        /// Length in characters.
        len: usize,
    },
    /// Serial contains a character outside the allowed set.
    #[error(
        "serial has a character that is not allowed at position {position} (allowed: `A`-`Z`, `a`-`z`, `0`-`9` and `_+=/:,.@-`)"
    )]
    SerialCharacter {
        /// 1-based character position.
        position: usize,
    },
    /// Serial already used on an earlier line.
    #[error("duplicate serial `{serial}`, first used on line {first_line}")]
    DuplicateSerial {
        /// The serial.
        serial: String,
        /// Line of the first occurrence.
        first_line: usize,
    },
    /// Seed missing, malformed or of a bad length (never echoed).
    #[error("bad seed: {0}")]
    Seed(SeedError),
    /// Digits not 6 or 8.
    #[error("unsupported digits {value}: expected `6` or `8`")]
    Digits {
        /// The value in backticks, or a note that it was too long to show.
        value: String,
    },
    /// Period not 30 or 60.
    #[error("unsupported period {value}: expected `30` or `60`")]
    Period {
        /// The value in backticks, or a note that it was too long to show.
        value: String,
    },
    /// Algorithm not SHA1/SHA256/SHA512.
    #[error("unsupported algorithm {value}: expected `SHA1`, `SHA256` or `SHA512`")]
    Algorithm {
        /// The value in backticks, or a note that it was too long to show.
        value: String,
    },
}

/// A problem on a given line.
#[derive(Debug, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number in the file.
    pub line: usize,
    /// What is wrong.
    pub problem: LineProblem,
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

/// Why a seed file was rejected. Nothing is imported in either case.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// The file has no token lines.
    #[error("seed file contains no tokens")]
    NoTokens,
    /// One or more lines are bad; every problem is listed, in line order.
    #[error("seed file rejected, {} problem(s):\n{}", .0.len(), render(.0))]
    InvalidLines(Vec<LineError>),
}

fn render(errors: &[LineError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

/// Echoes a short field value in backticks (control characters escaped);
/// longer values are described by length only.
fn echo(value: &str) -> String {
    let n = value.chars().count();
    if n <= MAX_ECHO_LEN {
        format!("`{}`", value.escape_debug())
    } else {
        format!("(a value of {n} characters, not shown)")
    }
}

/// Checks a hardware serial against the AWS `serialNumberType` rules (minus
/// the comma, see the module docs).
pub fn validate_serial(serial: &str) -> Result<(), LineProblem> {
    let len = serial.chars().count();
    if !(MIN_SERIAL_LEN..=MAX_SERIAL_LEN).contains(&len) {
        return Err(LineProblem::SerialLength { len });
    }
    match serial.chars().position(|c| !crate::ids::is_serial_char(c)) {
        Some(i) => Err(LineProblem::SerialCharacter { position: i + 1 }),
        None => Ok(()),
    }
}

fn parse_seed_field(field: &str) -> Result<Seed, SeedError> {
    let lower_prefix = |p: &str| {
        field
            .get(..p.len())
            .filter(|head| head.eq_ignore_ascii_case(p))
            .map(|_| &field[p.len()..])
    };
    if let Some(rest) = lower_prefix("hex:") {
        Seed::from_hex(rest)
    } else if let Some(rest) = lower_prefix("base32:") {
        Seed::from_base32(rest)
    } else {
        Seed::from_base32(field)
    }
}

/// Parses a whole seed file. Returns every token, or an error listing every
/// bad line (and no token).
///
/// The caller should hold `input` in a zeroizing buffer and wipe it after.
pub fn parse_seed_file(input: &str) -> Result<Vec<HardwareToken>, ImportError> {
    let input = input.strip_prefix('\u{feff}').unwrap_or(input);
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    // ASCII-lowercased serial → first line.
    let mut seen: HashMap<String, usize> = HashMap::new();

    for (idx, raw) in input.lines().enumerate() {
        let line = idx + 1;
        let trimmed = raw.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let mut bad = |problem| errors.push(LineError { line, problem });
        let fields: Vec<&str> = trimmed.split(',').map(str::trim).collect();
        let [serial, seed, digits, period, algorithm] = fields[..] else {
            bad(LineProblem::FieldCount {
                found: fields.len(),
            });
            continue;
        };

        let serial_ok = match validate_serial(serial) {
            Ok(()) => match seen.get(&serial.to_ascii_lowercase()) {
                Some(&first_line) => {
                    bad(LineProblem::DuplicateSerial {
                        serial: serial.to_owned(),
                        first_line,
                    });
                    false
                }
                None => {
                    seen.insert(serial.to_ascii_lowercase(), line);
                    true
                }
            },
            Err(p) => {
                bad(p);
                false
            }
        };
        let seed = parse_seed_field(seed)
            .map_err(|e| bad(LineProblem::Seed(e)))
            .ok();
        let digits = Digits::parse(digits)
            .map_err(|_| {
                bad(LineProblem::Digits {
                    value: echo(digits),
                })
            })
            .ok();
        let period = Period::parse(period)
            .map_err(|_| {
                bad(LineProblem::Period {
                    value: echo(period),
                })
            })
            .ok();
        let algorithm = Algorithm::parse(algorithm)
            .map_err(|_| {
                bad(LineProblem::Algorithm {
                    value: echo(algorithm),
                })
            })
            .ok();

        if let (true, Some(seed), Some(digits), Some(period), Some(algorithm)) =
            (serial_ok, seed, digits, period, algorithm)
        {
            tokens.push(HardwareToken {
                serial: serial.to_owned(),
                seed,
                params: TotpParams {
                    algorithm,
                    digits,
                    period,
                },
            });
        }
    }

    if !errors.is_empty() {
        // SECURITY: dropping `tokens` wipes every parsed seed.
        return Err(ImportError::InvalidLines(errors));
    }
    if tokens.is_empty() {
        return Err(ImportError::NoTokens);
    }
    Ok(tokens)
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = "\
# serial,seed,digits,period,algorithm
GAHT12345678,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,6,30,SHA1

  GAHT12345679 , hex:3132333435363738393031323334353637383930 , 8 , 60 , sha256
arn:aws:iam::123456789012:mfa/hw_token-1,base32:gezd gnbv gy3t qojq gezd gnbv gy3t qojq,6,30,SHA-512
";

    #[test]
    fn parses_good_file() {
        let tokens = parse_seed_file(GOOD).unwrap();
        assert_eq!(tokens.len(), 3);
        assert_eq!(tokens[0].serial, "GAHT12345678");
        assert_eq!(tokens[0].params, TotpParams::AWS);
        assert_eq!(tokens[0].seed.len(), 20);
        assert_eq!(tokens[1].serial, "GAHT12345679");
        assert_eq!(tokens[1].seed.expose_secret(), b"12345678901234567890");
        assert_eq!(
            tokens[1].params,
            TotpParams {
                algorithm: Algorithm::Sha256,
                digits: Digits::Eight,
                period: Period::Sixty
            }
        );
        assert_eq!(tokens[2].serial, "arn:aws:iam::123456789012:mfa/hw_token-1");
        assert_eq!(tokens[2].seed.expose_secret(), b"12345678901234567890");
        assert_eq!(tokens[2].params.algorithm, Algorithm::Sha512);
    }

    #[test]
    fn accepts_bom_and_crlf() {
        let text = "\u{feff}GAHT12345678,JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP,6,30,SHA1\r\n# c\r\n";
        let tokens = parse_seed_file(text).unwrap();
        assert_eq!(tokens.len(), 1);
        assert_eq!(tokens[0].serial, "GAHT12345678");
    }

    #[test]
    fn empty_or_comment_only_is_no_tokens() {
        assert_eq!(parse_seed_file("").unwrap_err(), ImportError::NoTokens);
        assert_eq!(
            parse_seed_file("# only\n\n   \n").unwrap_err(),
            ImportError::NoTokens
        );
    }

    #[test]
    fn every_bad_line_is_reported_and_nothing_returned() {
        let secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
        let text = format!(
            "GAHT12345678,{secret},6,30,SHA1\n\
             SHORT,{secret},6,30,SHA1\n\
             GAHT1234 5678,{secret},6,30,SHA1\n\
             gaht12345678,{secret},6,30,SHA1\n\
             GAHT00000001,JBSWY3DPEHPK3PXP,6,30,SHA1\n\
             GAHT00000002,{secret},7,45,MD5\n\
             GAHT00000003,{secret},6,30\n\
             \n\
             GAHT00000004,{secret},6,{secret},SHA1\n\
             GAHT00000005,hex:zz32333435363738393031323334353637383930,6,30,SHA1\n\
             GAHT00000006,,6,30,SHA1\n\
             GAHT00000007,{secret},6,30,SHA1\n"
        );
        let err = parse_seed_file(&text).unwrap_err();
        let ImportError::InvalidLines(lines) = &err else {
            panic!("expected InvalidLines, got {err:?}");
        };
        let got: Vec<(usize, &LineProblem)> = lines.iter().map(|e| (e.line, &e.problem)).collect();
        assert_eq!(
            got,
            vec![
                (2, &LineProblem::SerialLength { len: 5 }),
                (3, &LineProblem::SerialCharacter { position: 9 }),
                (
                    4,
                    &LineProblem::DuplicateSerial {
                        serial: "gaht12345678".into(),
                        first_line: 1
                    }
                ),
                (5, &LineProblem::Seed(SeedError::TooShort { len: 10 })),
                (
                    6,
                    &LineProblem::Digits {
                        value: "`7`".into()
                    }
                ),
                (
                    6,
                    &LineProblem::Period {
                        value: "`45`".into()
                    }
                ),
                (
                    6,
                    &LineProblem::Algorithm {
                        value: "`MD5`".into()
                    }
                ),
                (7, &LineProblem::FieldCount { found: 4 }),
                (
                    9,
                    &LineProblem::Period {
                        value: "(a value of 32 characters, not shown)".into()
                    }
                ),
                (10, &LineProblem::Seed(SeedError::InvalidHex)),
                (11, &LineProblem::Seed(SeedError::TooShort { len: 0 })),
            ]
        );
        let msg = err.to_string();
        assert!(msg.starts_with("seed file rejected, 11 problem(s):\nline 2: serial must be"));
        assert!(msg.contains("\nline 9: unsupported period (a value of 32 characters, not shown)"));
        // SECURITY: no seed material anywhere in the message or Debug output.
        for leak in [secret, "JBSWY3DP", "zz3233", "3132333435"] {
            assert!(!msg.contains(leak), "message leaks {leak}: {msg}");
            assert!(!format!("{err:?}").contains(leak), "debug leaks {leak}");
        }
    }

    #[test]
    fn serial_rules() {
        let (nine, max) = ("S".repeat(9), "S".repeat(256));
        for good in [
            "GAHT12345678",
            "ABCD12345678",
            "arn:aws:iam::123456789012:mfa/JaneDoeMFA",
            "a+b=c/d:e.f@g-h_i",
            &nine,
            &max,
        ] {
            assert!(validate_serial(good).is_ok(), "{good}");
        }
        assert_eq!(
            validate_serial("GAHT1234").unwrap_err(),
            LineProblem::SerialLength { len: 8 }
        );
        assert_eq!(
            validate_serial(&"S".repeat(257)).unwrap_err(),
            LineProblem::SerialLength { len: 257 }
        );
        assert_eq!(
            validate_serial("GAHT12345é78").unwrap_err(),
            LineProblem::SerialCharacter { position: 10 }
        );
        assert_eq!(
            validate_serial("GAHT1234;678").unwrap_err(),
            LineProblem::SerialCharacter { position: 9 }
        );
    }

    #[test]
    fn token_debug_is_redacted() {
        let tokens = parse_seed_file(GOOD).unwrap();
        let dbg = format!("{tokens:?}");
        assert!(dbg.contains("GAHT12345678"));
        assert!(!dbg.contains("72, 101"), "{dbg}");
        assert!(dbg.contains("REDACTED"));
    }

    #[test]
    fn error_messages_are_lowercase() {
        let problems = [
            LineProblem::FieldCount { found: 2 },
            LineProblem::SerialLength { len: 2 },
            LineProblem::SerialCharacter { position: 2 },
            LineProblem::DuplicateSerial {
                serial: "GAHT12345678".into(),
                first_line: 1,
            },
            LineProblem::Seed(SeedError::InvalidBase32),
            LineProblem::Digits {
                value: "`7`".into(),
            },
            LineProblem::Period {
                value: "`7`".into(),
            },
            LineProblem::Algorithm {
                value: "`7`".into(),
            },
        ];
        crate::mfa::assert_lowercase_messages(problems);
        assert!(ImportError::NoTokens.to_string().starts_with('s'));
    }
}
