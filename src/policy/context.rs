//! The request context: condition keys with typed, possibly multiple values.
//!
//! Key names are case-insensitive (`UG:reference_policies_elements_condition.md`: "condition key
//! names are not case-sensitive"), so keys are stored lowercased; values keep their case.
//! The broker builds a [`Context`] directly with typed values; `SimulateCustomPolicy` and
//! `Authorize` build one from AWS `ContextEntry` strings with [`Context::from_entries`].
//!
//! Also here: [`Number`] (decimal-exact numeric values), the date parser shared with the
//! `Date*` operators, and the three-valued [`Tri`] used by the evaluator.

use std::borrow::Cow;
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;

use base64::Engine as _;
use serde::{Deserialize, Serialize};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;
use time::macros::format_description;

use super::error::ContextError;

/// Three-valued result of a comparison: `Error` means "could not be evaluated" (a value of the
/// wrong type, an unresolvable policy variable). See `evaluator.rs` for how it is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Tri {
    True,
    False,
    Error,
}

impl Tri {
    /// Conjunction: a definite `False` wins over an error, because the conjunction is false
    /// whatever the erroneous part would have been.
    pub fn and(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::False, _) | (_, Tri::False) => Tri::False,
            (Tri::Error, _) | (_, Tri::Error) => Tri::Error,
            _ => Tri::True,
        }
    }

    /// Disjunction: a definite `True` wins over an error.
    pub fn or(self, other: Tri) -> Tri {
        match (self, other) {
            (Tri::True, _) | (_, Tri::True) => Tri::True,
            (Tri::Error, _) | (_, Tri::Error) => Tri::Error,
            _ => Tri::False,
        }
    }

    pub fn not(self) -> Tri {
        match self {
            Tri::True => Tri::False,
            Tri::False => Tri::True,
            Tri::Error => Tri::Error,
        }
    }
}

impl From<bool> for Tri {
    fn from(b: bool) -> Self {
        if b { Tri::True } else { Tri::False }
    }
}

/// An exact decimal number: `mantissa / 10^scale`. IAM's numeric operators take "integer or
/// decimal" values; keeping them exact avoids `0.1 + 0.2` surprises at boundaries.
#[derive(Debug, Clone, Copy)]
pub struct Number {
    mantissa: i128,
    scale: u32,
}

/// Most digits accepted in a number; i128 holds 38.
const MAX_DIGITS: usize = 36;

impl Number {
    /// Parses `[-+]digits[.digits]`. Exponents are not accepted (IAM documents integers and
    /// decimals only).
    pub fn parse(text: &str) -> Option<Number> {
        let t = text.trim();
        let (neg, body) = match t.as_bytes().first() {
            Some(b'-') => (true, t.get(1..)?),
            Some(b'+') => (false, t.get(1..)?),
            _ => (false, t),
        };
        let (int, frac) = match body.split_once('.') {
            Some((i, f)) => (i, f),
            None => (body, ""),
        };
        if (int.is_empty() && frac.is_empty())
            || !int.bytes().all(|b| b.is_ascii_digit())
            || !frac.bytes().all(|b| b.is_ascii_digit())
            || (body.contains('.') && frac.is_empty())
        {
            return None;
        }
        let int = int.trim_start_matches('0');
        let frac = frac.trim_end_matches('0');
        if int.len() + frac.len() > MAX_DIGITS {
            return None;
        }
        let mut mantissa: i128 = 0;
        for b in int.bytes().chain(frac.bytes()) {
            mantissa = mantissa * 10 + i128::from(b - b'0');
        }
        if neg {
            mantissa = -mantissa;
        }
        Some(Number {
            mantissa,
            scale: u32::try_from(frac.len()).ok()?,
        })
    }

    /// An integer value.
    pub fn from_i64(n: i64) -> Number {
        Number {
            mantissa: i128::from(n),
            scale: 0,
        }
    }

    fn scaled(&self, scale: u32) -> Option<i128> {
        let diff = scale.checked_sub(self.scale)?;
        10i128
            .checked_pow(diff)
            .and_then(|m| self.mantissa.checked_mul(m))
    }

    fn approx(&self) -> f64 {
        // Only used when exact alignment overflows (numbers with more than ~38 digits combined).
        let m = self.mantissa as f64;
        m / 10f64.powi(i32::try_from(self.scale).unwrap_or(i32::MAX))
    }

    /// Compares two numbers exactly (approximately only if alignment would overflow i128).
    pub fn compare(&self, other: &Number) -> Ordering {
        let scale = self.scale.max(other.scale);
        match (self.scaled(scale), other.scaled(scale)) {
            (Some(a), Some(b)) => a.cmp(&b),
            _ => self
                .approx()
                .partial_cmp(&other.approx())
                .unwrap_or(Ordering::Equal),
        }
    }

    /// Whole seconds, if the number fits an i64 (used when a number is compared as an epoch date).
    fn whole(&self) -> Option<i64> {
        let div = 10i128.checked_pow(self.scale)?;
        i64::try_from(self.mantissa / div).ok()
    }
}

impl PartialEq for Number {
    fn eq(&self, other: &Self) -> bool {
        self.compare(other) == Ordering::Equal
    }
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.scale == 0 {
            return write!(f, "{}", self.mantissa);
        }
        let digits = self.mantissa.unsigned_abs().to_string();
        let scale = usize::try_from(self.scale).unwrap_or(0);
        let padded = format!("{digits:0>width$}", width = scale + 1);
        let (i, frac) = padded.split_at(padded.len() - scale);
        let sign = if self.mantissa < 0 { "-" } else { "" };
        write!(f, "{sign}{i}.{frac}")
    }
}

/// Parses a date as the `Date*` operators accept it: epoch seconds (`1500000000`, optionally with
/// a fraction), RFC 3339 / W3C ISO 8601 date-times (`2017-07-01T00:00:00Z`, with offset, with
/// fractional seconds, without seconds `2017-07-01T00:00Z`, without a zone = UTC), or a bare date
/// `2017-07-01` (midnight UTC). Returns nanoseconds since the Unix epoch.
pub(crate) fn parse_date(text: &str) -> Option<i128> {
    let t = text.trim();
    if let Some(n) = Number::parse(t) {
        // Epoch seconds, possibly fractional (at most nanosecond precision).
        return n.scaled(9);
    }
    if let Ok(dt) = OffsetDateTime::parse(t, &Rfc3339) {
        return Some(dt.unix_timestamp_nanos());
    }
    let upper = t.to_ascii_uppercase();
    if let Ok(dt) = OffsetDateTime::parse(&upper, &Rfc3339) {
        return Some(dt.unix_timestamp_nanos());
    }
    // Without seconds: insert `:00` after `hh:mm` and retry.
    if upper.get(10..11) == Some("T") && upper.get(13..14) == Some(":") {
        // `get` rather than `split_at`: byte 16 may fall inside a non-ASCII character.
        let (Some(head), Some(tail)) = (upper.get(..16), upper.get(16..)) else {
            return None;
        };
        if !tail.is_empty() && !tail.starts_with(':') {
            let with_secs = format!("{head}:00{tail}");
            if let Ok(dt) = OffsetDateTime::parse(&with_secs, &Rfc3339) {
                return Some(dt.unix_timestamp_nanos());
            }
        }
    }
    let no_zone = format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]");
    let no_zone_frac =
        format_description!("[year]-[month]-[day]T[hour]:[minute]:[second].[subsecond]");
    for fd in [no_zone, no_zone_frac] {
        if let Ok(dt) = time::PrimitiveDateTime::parse(&upper, fd) {
            return Some(dt.assume_utc().unix_timestamp_nanos());
        }
    }
    let date_only = format_description!("[year]-[month]-[day]");
    if let Ok(d) = time::Date::parse(t, date_only) {
        return Some(d.midnight().assume_utc().unix_timestamp_nanos());
    }
    None
}

/// One typed context value.
#[derive(Debug, Clone, PartialEq)]
pub enum ContextValue {
    /// Text (`string` / `stringList`).
    String(String),
    /// `boolean`.
    Bool(bool),
    /// `numeric`.
    Numeric(Number),
    /// `date`.
    Date(OffsetDateTime),
    /// `ip`.
    Ip(IpAddr),
    /// `binary` (the decoded bytes).
    Binary(Vec<u8>),
}

impl ContextValue {
    /// The text form used by string operators and policy variables.
    pub fn as_text(&self) -> Cow<'_, str> {
        match self {
            ContextValue::String(s) => Cow::Borrowed(s),
            ContextValue::Bool(true) => Cow::Borrowed("true"),
            ContextValue::Bool(false) => Cow::Borrowed("false"),
            ContextValue::Numeric(n) => Cow::Owned(n.to_string()),
            ContextValue::Date(d) => Cow::Owned(d.format(&Rfc3339).unwrap_or_default()),
            ContextValue::Ip(ip) => Cow::Owned(ip.to_string()),
            ContextValue::Binary(b) => {
                Cow::Owned(base64::engine::general_purpose::STANDARD.encode(b))
            }
        }
    }

    pub(crate) fn as_bool(&self) -> Option<bool> {
        match self {
            ContextValue::Bool(b) => Some(*b),
            ContextValue::String(s) => parse_bool(s),
            _ => None,
        }
    }

    pub(crate) fn as_number(&self) -> Option<Number> {
        match self {
            ContextValue::Numeric(n) => Some(*n),
            ContextValue::String(s) => Number::parse(s),
            _ => None,
        }
    }

    pub(crate) fn as_date(&self) -> Option<i128> {
        match self {
            ContextValue::Date(d) => Some(d.unix_timestamp_nanos()),
            ContextValue::Numeric(n) => n.whole().map(|s| i128::from(s) * 1_000_000_000),
            ContextValue::String(s) => parse_date(s),
            _ => None,
        }
    }

    pub(crate) fn as_ip(&self) -> Option<IpAddr> {
        match self {
            ContextValue::Ip(ip) => Some(*ip),
            ContextValue::String(s) => s.trim().parse().ok(),
            _ => None,
        }
    }

    pub(crate) fn as_binary(&self) -> Option<Cow<'_, [u8]>> {
        match self {
            ContextValue::Binary(b) => Some(Cow::Borrowed(b)),
            ContextValue::String(s) => base64::engine::general_purpose::STANDARD
                .decode(s.trim())
                .ok()
                .map(Cow::Owned),
            _ => None,
        }
    }
}

/// `true`/`false` in any case, as `Bool` accepts them.
pub(crate) fn parse_bool(s: &str) -> Option<bool> {
    if s.eq_ignore_ascii_case("true") {
        Some(true)
    } else if s.eq_ignore_ascii_case("false") {
        Some(false)
    } else {
        None
    }
}

/// AWS's `ContextEntry` as sent to `SimulateCustomPolicy` / `Authorize`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContextEntry {
    /// The key, e.g. `aws:MultiFactorAuthPresent`.
    pub context_key_name: String,
    /// The values as strings.
    pub context_key_values: Vec<String>,
    /// `string`, `stringList`, `numeric`, `numericList`, `boolean`, `booleanList`, `ip`,
    /// `ipList`, `date`, `dateList`, `binary`, `binaryList`.
    pub context_key_type: String,
}

/// The request context: lowercased key name → one or more typed values.
// SECURITY: keys can come from callers (`ContextEntry`), so this map keeps std's SipHash; the
// FNV hasher of the action index is only used for keys taken from stored policy documents.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Context {
    entries: HashMap<String, Vec<ContextValue>>,
}

impl Context {
    /// An empty context (what a long-term access key request carries for the MFA keys).
    pub fn new() -> Self {
        Context::default()
    }

    /// Sets a single-valued key (replacing any previous values).
    pub fn insert(&mut self, key: &str, value: ContextValue) {
        self.entries.insert(key.to_lowercase(), vec![value]);
    }

    /// Sets a multi-valued key. An empty list is kept and behaves as an empty data set
    /// (`ForAllValues` true, `ForAnyValue` false, every other operator as if absent).
    pub fn insert_list(&mut self, key: &str, values: Vec<ContextValue>) {
        self.entries.insert(key.to_lowercase(), values);
    }

    /// Removes a key.
    pub fn remove(&mut self, key: &str) -> Option<Vec<ContextValue>> {
        self.entries.remove(&key.to_lowercase())
    }

    /// Builder form of [`Context::insert`].
    #[must_use]
    pub fn with(mut self, key: &str, value: ContextValue) -> Self {
        self.insert(key, value);
        self
    }

    /// Builder: a string value.
    #[must_use]
    pub fn with_string(self, key: &str, value: &str) -> Self {
        self.with(key, ContextValue::String(value.to_owned()))
    }

    /// Builder: a boolean value.
    #[must_use]
    pub fn with_bool(self, key: &str, value: bool) -> Self {
        self.with(key, ContextValue::Bool(value))
    }

    /// Builder: an integer value.
    #[must_use]
    pub fn with_number(self, key: &str, value: i64) -> Self {
        self.with(key, ContextValue::Numeric(Number::from_i64(value)))
    }

    /// Builder: a date value.
    #[must_use]
    pub fn with_date(self, key: &str, value: OffsetDateTime) -> Self {
        self.with(key, ContextValue::Date(value))
    }

    /// The values of a key (case-insensitive lookup).
    pub fn get(&self, key: &str) -> Option<&[ContextValue]> {
        self.entries.get(&key.to_lowercase()).map(Vec::as_slice)
    }

    /// Lookup with an already-lowercased key (the evaluator's path; no allocation).
    pub(crate) fn get_lc(&self, key_lc: &str) -> Option<&[ContextValue]> {
        self.entries.get(key_lc).map(Vec::as_slice)
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// Whether no key is set.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Builds a context from AWS `ContextEntry` strings. A later entry for the same key (in any
    /// case) replaces an earlier one.
    pub fn from_entries(entries: &[ContextEntry]) -> Result<Self, ContextError> {
        let mut ctx = Context::new();
        for e in entries {
            let (values, _) = typed_values(e)?;
            ctx.insert_list(&e.context_key_name, values);
        }
        Ok(ctx)
    }
}

fn typed_values(e: &ContextEntry) -> Result<(Vec<ContextValue>, bool), ContextError> {
    let key = e.context_key_name.trim();
    if key.is_empty() {
        return Err(ContextError::EmptyKey);
    }
    let ty = e.context_key_type.as_str();
    let (base, list) = match ty.strip_suffix("List") {
        Some(b) => (b, true),
        None => (ty, false),
    };
    if !matches!(
        base,
        "string" | "numeric" | "boolean" | "ip" | "date" | "binary"
    ) {
        return Err(ContextError::UnknownType {
            key: key.to_owned(),
            ty: ty.to_owned(),
        });
    }
    if !list && e.context_key_values.len() != 1 {
        return Err(ContextError::NotSingleValued {
            key: key.to_owned(),
            ty: ty.to_owned(),
            count: e.context_key_values.len(),
        });
    }
    let bad = |v: &str| ContextError::BadValue {
        key: key.to_owned(),
        ty: base.to_owned(),
        value: v.to_owned(),
    };
    let mut out = Vec::with_capacity(e.context_key_values.len());
    for v in &e.context_key_values {
        let value = match base {
            "string" => ContextValue::String(v.clone()),
            "numeric" => ContextValue::Numeric(Number::parse(v).ok_or_else(|| bad(v))?),
            "boolean" => ContextValue::Bool(parse_bool(v.trim()).ok_or_else(|| bad(v))?),
            "ip" => ContextValue::Ip(v.trim().parse().map_err(|_| bad(v))?),
            "date" => {
                let nanos = parse_date(v).ok_or_else(|| bad(v))?;
                ContextValue::Date(
                    OffsetDateTime::from_unix_timestamp_nanos(nanos).map_err(|_| bad(v))?,
                )
            }
            _ => ContextValue::Binary(
                base64::engine::general_purpose::STANDARD
                    .decode(v.trim())
                    .map_err(|_| bad(v))?,
            ),
        };
        out.push(value);
    }
    Ok((out, list))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(name: &str, ty: &str, values: &[&str]) -> ContextEntry {
        ContextEntry {
            context_key_name: name.into(),
            context_key_values: values.iter().map(|s| (*s).to_owned()).collect(),
            context_key_type: ty.into(),
        }
    }

    #[test]
    fn numbers_are_exact() {
        let a = Number::parse("0.30").unwrap();
        let b = Number::parse(".3").unwrap();
        assert_eq!(a.compare(&b), Ordering::Equal);
        assert_eq!(
            Number::parse("3600")
                .unwrap()
                .compare(&Number::parse("3599.999").unwrap()),
            Ordering::Greater
        );
        assert_eq!(Number::parse("-1.5").unwrap().to_string(), "-1.5");
        assert_eq!(Number::parse("0.05").unwrap().to_string(), "0.05");
        for bad in ["", "-", "1.", "1e3", "abc", "1.2.3", "0x10"] {
            assert!(Number::parse(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn dates_in_every_documented_form() {
        let z = parse_date("2017-07-01T00:00:00Z").unwrap();
        assert_eq!(parse_date("1498867200"), Some(z));
        assert_eq!(parse_date("2017-07-01"), Some(z));
        assert_eq!(parse_date("2017-07-01T00:00Z"), Some(z));
        assert_eq!(parse_date("2017-07-01T02:00:00+02:00"), Some(z));
        assert_eq!(parse_date("2017-07-01T00:00:00"), Some(z));
        assert_eq!(parse_date("2017-07-01T00:00:00.000Z"), Some(z));
        assert!(parse_date("yesterday").is_none());
        assert!(parse_date("2017-07-01T00:0\u{e9}Z").is_none());
        assert!(parse_date("2017-07-01T00:00\u{e9}").is_none());
        assert!(parse_date("2017-13-01").is_none());
    }

    #[test]
    fn entries_are_typed_and_checked() {
        let ctx = Context::from_entries(&[
            entry("aws:MultiFactorAuthPresent", "boolean", &["TRUE"]),
            entry("aws:MultiFactorAuthAge", "numeric", &["120"]),
            entry("aws:SourceIp", "ip", &["10.1.2.3"]),
            entry("aws:TagKeys", "stringList", &["a", "b"]),
            entry("aws:CurrentTime", "date", &["2020-01-01T00:00:00Z"]),
            entry("x:bin", "binary", &["AAEC"]),
        ])
        .unwrap();
        assert_eq!(
            ctx.get("AWS:multifactorauthpresent"),
            Some(&[ContextValue::Bool(true)][..])
        );
        assert_eq!(ctx.get("aws:tagkeys").map(<[_]>::len), Some(2));
        assert_eq!(
            ctx.get("x:bin"),
            Some(&[ContextValue::Binary(vec![0, 1, 2])][..])
        );

        let err = Context::from_entries(&[entry("k", "numeric", &["ten"])]).unwrap_err();
        assert!(
            err.to_string().contains("`ten` is not a valid numeric"),
            "{err}"
        );
        let err = Context::from_entries(&[entry("k", "strin", &["a"])]).unwrap_err();
        assert!(err.to_string().contains("unknown type `strin`"), "{err}");
        let err = Context::from_entries(&[entry("k", "string", &["a", "b"])]).unwrap_err();
        assert!(
            err.to_string().contains("exactly one value, got 2"),
            "{err}"
        );
        assert!(Context::from_entries(&[entry("k", "boolean", &["yes"])]).is_err());
        assert!(Context::from_entries(&[entry("k", "ip", &["300.1.1.1"])]).is_err());
        assert!(Context::from_entries(&[entry("k", "date", &["soon"])]).is_err());
        assert!(Context::from_entries(&[entry("k", "binary", &["@@"])]).is_err());
        assert!(Context::from_entries(&[entry(" ", "string", &["a"])]).is_err());
    }

    #[test]
    fn tri_logic() {
        assert_eq!(Tri::Error.and(Tri::False), Tri::False);
        assert_eq!(Tri::Error.and(Tri::True), Tri::Error);
        assert_eq!(Tri::Error.or(Tri::True), Tri::True);
        assert_eq!(Tri::Error.or(Tri::False), Tri::Error);
        assert_eq!(Tri::Error.not(), Tri::Error);
    }
}
