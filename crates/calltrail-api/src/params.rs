//! Query-parameter parsing shared by the list routes: `limit`, `from`/`to`, `phone`.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, Utc};

use crate::error::ApiError;
use calltrail_core::PhoneNumber;

/// `limit` when absent.
pub const DEFAULT_LIMIT: i64 = 50;
/// Largest `limit` a list route accepts.
pub const MAX_LIMIT: i64 = 100;

/// Parses `limit`: absent → 50; an integer 1–100; anything else is `invalid_limit`.
pub fn parse_limit(raw: Option<&str>) -> Result<i64, ApiError> {
    let Some(raw) = raw else {
        return Ok(DEFAULT_LIMIT);
    };
    match raw.trim().parse::<i64>() {
        Ok(limit) if (1..=MAX_LIMIT).contains(&limit) => Ok(limit),
        _ => Err(ApiError::InvalidLimit),
    }
}

/// Parses `from`/`to`: RFC 3339 (any offset, converted to UTC) or `YYYY-MM-DD` (midnight UTC).
/// A timestamp without a zone is UTC, as in payloads (CONTRACT §4.4).
///
/// A `+` offset sent without URL-encoding arrives as a space (`…T10:00:00 05:30`); that is
/// read as the `+` it was meant to be.
pub fn parse_time(param: &'static str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = raw.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    if let Ok(at) = NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f") {
        return Ok(at.and_utc());
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(day.and_time(NaiveTime::MIN).and_utc());
    }
    if let Some(space) = text.rfind(' ').filter(|&i| i > "YYYY-MM-DDTHH:MM".len()) {
        let repaired = format!("{}+{}", &text[..space], &text[space + 1..]);
        if let Ok(at) = DateTime::parse_from_rfc3339(&repaired) {
            return Ok(at.with_timezone(&Utc));
        }
    }
    Err(ApiError::InvalidTime { param })
}

/// Parses an optional time parameter.
pub fn parse_optional_time(
    param: &'static str,
    raw: Option<&str>,
) -> Result<Option<DateTime<Utc>>, ApiError> {
    raw.map(|raw| parse_time(param, raw)).transpose()
}

/// Parses `phone` into E.164. A leading `+` sent without URL-encoding arrives as a space and is
/// restored.
pub fn parse_phone(raw: &str) -> Result<PhoneNumber, ApiError> {
    match PhoneNumber::parse(raw) {
        Ok(phone) => Ok(phone),
        Err(err) => {
            let trimmed = raw.trim();
            if raw.starts_with(' ') && trimmed.starts_with(|c: char| c.is_ascii_digit()) {
                if let Ok(phone) = PhoneNumber::parse(&format!("+{trimmed}")) {
                    return Ok(phone);
                }
            }
            Err(ApiError::InvalidPhone(err))
        }
    }
}

/// Treats an empty parameter (`?status=`) as absent.
pub fn non_empty(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(parse_limit(None).ok(), Some(50));
        assert_eq!(parse_limit(Some("1")).ok(), Some(1));
        assert_eq!(parse_limit(Some("100")).ok(), Some(100));
        for bad in ["0", "101", "-1", "abc", "", "1.5", "99999999999999999999"] {
            assert!(
                matches!(parse_limit(Some(bad)), Err(ApiError::InvalidLimit)),
                "{bad}"
            );
        }
    }

    #[test]
    fn time_accepts_rfc3339_and_dates() {
        let utc = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single();
        assert_eq!(
            parse_time("from", "2024-05-01T10:00:00Z").ok(),
            utc(2024, 5, 1, 10, 0)
        );
        assert_eq!(
            parse_time("from", "2024-05-01T10:00:00+05:30").ok(),
            utc(2024, 5, 1, 4, 30)
        );
        assert_eq!(
            parse_time("from", "2024-05-01T10:00:00 05:30").ok(),
            utc(2024, 5, 1, 4, 30)
        );
        assert_eq!(parse_time("to", "2024-05-01").ok(), utc(2024, 5, 1, 0, 0));
        assert_eq!(
            parse_time("to", "2024-05-01T10:00:00").ok(),
            utc(2024, 5, 1, 10, 0)
        );
        assert_eq!(parse_time("to", " 2024-05-01 ").ok(), utc(2024, 5, 1, 0, 0));
    }

    #[test]
    fn time_rejects_everything_else_naming_the_parameter() {
        for bad in [
            "yesterday",
            "2024-13-01",
            "2024-05-01T25:00:00Z",
            "1714557600",
            "",
        ] {
            match parse_time("to", bad) {
                Err(ApiError::InvalidTime { param }) => assert_eq!(param, "to"),
                other => panic!("{bad}: {other:?}"),
            }
        }
        assert!(parse_optional_time("from", None).is_ok_and(|t| t.is_none()));
    }

    #[test]
    fn phone_restores_an_unencoded_plus() {
        assert_eq!(
            parse_phone("+14155550132")
                .ok()
                .map(|p| p.as_str().to_owned()),
            Some("+14155550132".to_owned())
        );
        assert_eq!(
            parse_phone(" 14155550132")
                .ok()
                .map(|p| p.as_str().to_owned()),
            Some("+14155550132".to_owned())
        );
        assert!(matches!(
            parse_phone("4155550132"),
            Err(ApiError::InvalidPhone(_))
        ));
    }
}
