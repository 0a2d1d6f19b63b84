//! The SigV4 timestamp format `YYYYMMDDTHHMMSSZ` (ISO 8601 basic, UTC).

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time, UtcOffset};

use super::SigV4Error;
use super::error::sanitize;

/// Formats a time as `x-amz-date` (`YYYYMMDDTHHMMSSZ`, UTC).
///
/// # Errors
/// [`SigV4Error::InvalidSigningTime`] for years outside 0000-9999.
pub fn format_amz_date(t: OffsetDateTime) -> Result<String, SigV4Error> {
    let t = t.to_offset(UtcOffset::UTC);
    if !(0..=9999).contains(&t.year()) {
        return Err(SigV4Error::InvalidSigningTime);
    }
    Ok(format!(
        "{:04}{:02}{:02}T{:02}{:02}{:02}Z",
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second()
    ))
}

/// Formats unix seconds for messages; falls back to the number.
pub(crate) fn format_unix_lossy(secs: i64) -> String {
    OffsetDateTime::from_unix_timestamp(secs)
        .ok()
        .and_then(|t| format_amz_date(t).ok())
        .unwrap_or_else(|| format!("@{secs}"))
}

fn digits(b: &[u8]) -> Option<u32> {
    b.iter().try_fold(0u32, |acc, &c| {
        c.is_ascii_digit().then(|| acc * 10 + u32::from(c - b'0'))
    })
}

/// Parses `x-amz-date` strictly (exactly `YYYYMMDDTHHMMSSZ`, a real
/// calendar date and time) into unix seconds.
///
/// # Errors
/// [`SigV4Error::MalformedDate`] for anything else.
pub fn parse_amz_date(s: &str) -> Result<i64, SigV4Error> {
    let bad = || SigV4Error::MalformedDate { value: sanitize(s) };
    let b = s.as_bytes();
    if b.len() != 16 || b[8] != b'T' || b[15] != b'Z' {
        return Err(bad());
    }
    let year = digits(&b[0..4]).ok_or_else(bad)?;
    let month = digits(&b[4..6]).ok_or_else(bad)?;
    let day = digits(&b[6..8]).ok_or_else(bad)?;
    let hour = digits(&b[9..11]).ok_or_else(bad)?;
    let minute = digits(&b[11..13]).ok_or_else(bad)?;
    let second = digits(&b[13..15]).ok_or_else(bad)?;
    let month = u8::try_from(month)
        .ok()
        .and_then(|m| Month::try_from(m).ok())
        .ok_or_else(bad)?;
    let small = |v: u32| u8::try_from(v).map_err(|_| bad());
    let year = i32::try_from(year).map_err(|_| bad())?;
    let date = Date::from_calendar_date(year, month, small(day)?).map_err(|_| bad())?;
    let time = Time::from_hms(small(hour)?, small(minute)?, small(second)?).map_err(|_| bad())?;
    Ok(PrimitiveDateTime::new(date, time)
        .assume_utc()
        .unix_timestamp())
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    #[test]
    fn round_trip() {
        let t = datetime!(2015-08-30 12:36:00 UTC);
        let s = format_amz_date(t).unwrap();
        assert_eq!(s, "20150830T123600Z");
        assert_eq!(parse_amz_date(&s).unwrap(), t.unix_timestamp());
        let t2 = datetime!(2015-08-30 14:36:00 +2);
        assert_eq!(format_amz_date(t2).unwrap(), s);
    }

    #[test]
    fn rejects_garbage() {
        for s in [
            "",
            "20150830T123600",
            "20150830T123600z",
            "2015-08-30T12:36:00Z",
            "20151330T123600Z",
            "20150230T123600Z",
            "20150830T253600Z",
            "20150830T126000Z",
            "+0150830T123600Z",
            "20150830 123600Z",
            "20150830T123600Z ",
        ] {
            let err = parse_amz_date(s).unwrap_err();
            assert_eq!(err.aws_code(), "IncompleteSignature", "{s}");
        }
    }
}
