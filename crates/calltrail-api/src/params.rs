//! Query-parameter parsing shared by the list routes: `limit`, `from`/`to`, `phone`, and the
//! OpenAPI schemas that describe exactly what these parsers accept.

use chrono::{DateTime, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, Utc};
use utoipa::openapi::schema::{AnyOfBuilder, KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::{RefOr, Schema};

use crate::error::{ApiError, MAX_ECHOED};
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
        _ => Err(ApiError::InvalidLimit { max: MAX_LIMIT }),
    }
}

/// Parses `from`/`to`: RFC 3339 (any offset, converted to UTC) or `YYYY-MM-DD` (midnight UTC).
/// A timestamp without a zone is UTC, as in payloads (CONTRACT §4.4).
///
/// A `+` offset sent without URL-encoding arrives as a space (`…T10:00:00 05:30`); that is
/// read as the `+` it was meant to be.
///
/// An instant that falls outside years 0000–9999 once converted to UTC
/// (`9999-12-31T23:00:00-05:00`) is moved to the nearest end of that range, so that the bound
/// echoed in an answer is RFC 3339 too; it selects the same calls.
pub fn parse_time(param: &'static str, raw: &str) -> Result<DateTime<Utc>, ApiError> {
    let text = raw.trim();
    let parsed = DateTime::parse_from_rfc3339(text)
        .map(|at| at.with_timezone(&Utc))
        .or_else(|_| {
            NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").map(|at| at.and_utc())
        })
        .or_else(|_| {
            NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .map(|day| day.and_time(NaiveTime::MIN).and_utc())
        })
        .ok()
        .or_else(|| {
            let space = text.rfind(' ').filter(|&i| i > "YYYY-MM-DDTHH:MM".len())?;
            let repaired = format!("{}+{}", &text[..space], &text[space + 1..]);
            DateTime::parse_from_rfc3339(&repaired)
                .ok()
                .map(|at| at.with_timezone(&Utc))
        });
    match parsed {
        Some(at) => Ok(at.clamp(earliest_rfc3339(), latest_rfc3339())),
        None => Err(ApiError::InvalidTime { param }),
    }
}

/// `0000-01-01T00:00:00Z`, the earliest instant RFC 3339 can write.
fn earliest_rfc3339() -> DateTime<Utc> {
    NaiveDate::from_yo_opt(0, 1).map_or(DateTime::<Utc>::MIN_UTC, |day| {
        day.and_time(NaiveTime::MIN).and_utc()
    })
}

/// `9999-12-31T23:59:59.999999999Z`, the latest instant RFC 3339 can write.
fn latest_rfc3339() -> DateTime<Utc> {
    NaiveDate::from_yo_opt(10_000, 1).map_or(DateTime::<Utc>::MAX_UTC, |day| {
        day.and_time(NaiveTime::MIN).and_utc() - TimeDelta::nanoseconds(1)
    })
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

/// A call id from the path. An id holding U+0000 answers `call_not_found`: the event log cannot
/// store that character, so no call has such an id (and the read store cannot be asked).
pub fn parse_execution_id(raw: String) -> Result<String, ApiError> {
    if raw.contains('\0') {
        return Err(ApiError::CallNotFound);
    }
    Ok(raw)
}

/// Parses `provider` (a call's provider, CONTRACT §5): blank is absent; a name of the provider
/// table, or `invalid_provider` naming the allowed ones.
pub fn parse_provider(raw: Option<&str>) -> Result<Option<calltrail_core::Provider>, ApiError> {
    non_empty(raw)
        .map(|name| {
            name.parse()
                .map_err(|_| ApiError::InvalidProvider(name.to_owned()))
        })
        .transpose()
}

/// A free-text filter (`status`, `agent_id`, …): blank is absent; U+0000, which PostgreSQL
/// cannot compare, is `invalid_query`.
pub fn text_filter(param: &'static str, raw: Option<&str>) -> Result<Option<String>, ApiError> {
    match non_empty(raw) {
        Some(value) if value.contains('\0') => Err(ApiError::InvalidQuery(format!(
            "`{param}` contains the character U+0000"
        ))),
        value => Ok(value.map(str::to_owned)),
    }
}

/// The values `status` takes (a call's user-facing status, CONTRACT §3).
pub const CALL_STATUSES: &[&str] = &["completed", "failed", "cancelled", "in_progress"];

/// The values `lifecycle_status` takes: the lifecycle vocabulary (CONTRACT §3).
pub const LIFECYCLE_STATUSES: &[&str] = &[
    "scheduled",
    "queued",
    "rescheduled",
    "initiated",
    "ringing",
    "in-progress",
    "call-disconnected",
    "completed",
    "no-answer",
    "busy",
    "failed",
    "canceled",
    "stopped",
    "error",
    "balance-low",
];

/// Every Call `outcome` (CONTRACT §6), the values `?outcome=` takes.
pub const OUTCOMES: &[&str] = &[
    "booked",
    "transferred",
    "voicemail",
    "information",
    "no_answer",
    "busy",
    "failed",
    "other",
];

/// Parses `outcome`: blank is absent, else one of [`OUTCOMES`] exactly.
pub fn outcome_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    one_of("outcome", raw, OUTCOMES)
}

/// Parses a calls list's `sort`: blank is the default (newest first), else one of
/// [`CallSort`]'s names (`invalid_query` naming them otherwise).
pub fn sort_filter(raw: Option<&str>) -> Result<calltrail_projections::CallSort, ApiError> {
    use calltrail_projections::CallSort;
    match non_empty(raw) {
        None => Ok(CallSort::default()),
        Some(name) => CallSort::parse(name).ok_or_else(|| {
            ApiError::InvalidQuery(format!(
                "`sort` must be newest, oldest, longest, shortest or status, not `{name}`"
            ))
        }),
    }
}

/// Parses `status`: blank is absent, else one of [`CALL_STATUSES`] exactly (`invalid_parameter`
/// naming them otherwise).
pub fn status_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    one_of("status", raw, CALL_STATUSES)
}

/// Parses `lifecycle_status`: blank is absent, else one of [`LIFECYCLE_STATUSES`] exactly.
pub fn lifecycle_status_filter(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    one_of("lifecycle_status", raw, LIFECYCLE_STATUSES)
}

/// A parameter with a closed list of values: blank is absent, else one of `allowed`.
fn one_of(
    param: &'static str,
    raw: Option<&str>,
    allowed: &'static [&'static str],
) -> Result<Option<String>, ApiError> {
    match non_empty(raw) {
        None => Ok(None),
        Some(value) if allowed.contains(&value) => Ok(Some(value.to_owned())),
        Some(value) => Err(invalid_parameter(param, value, allowed)),
    }
}

fn invalid_parameter(
    param: &'static str,
    value: &str,
    allowed: &'static [&'static str],
) -> ApiError {
    ApiError::InvalidParameter {
        param,
        value: value.chars().take(MAX_ECHOED).collect(),
        allowed,
    }
}

/// A `[from, to)` window, each end unbounded when absent.
pub type Window = (Option<DateTime<Utc>>, Option<DateTime<Utc>>);

/// Parses `from` and `to` (each optional); `from` later than `to` is `invalid_range`.
pub fn parse_window(from: Option<&str>, to: Option<&str>) -> Result<Window, ApiError> {
    let from = parse_optional_time("from", non_empty(from))?;
    let to = parse_optional_time("to", non_empty(to))?;
    if let (Some(from), Some(to)) = (from, to) {
        if from > to {
            return Err(ApiError::InvalidRange);
        }
    }
    Ok((from, to))
}

/// Treats an empty parameter (`?status=`) as absent.
pub fn non_empty(raw: Option<&str>) -> Option<&str> {
    raw.map(str::trim).filter(|s| !s.is_empty())
}

/// Whitespace as `char::is_whitespace` (and so `str::trim`) knows it, as the inside of a regex
/// character class: spelled out, because `\s` is a different set in ECMA-262, Python and Rust.
pub(crate) const WHITESPACE: &str =
    r"\t-\r \u0085\u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000";

/// The ECMA-262 regex of what [`parse_phone`] accepts: `+` or `00`, then 8–15 digits of which
/// the first is not 0, with separators (whitespace, `-`, `.`, `(`, `)`) anywhere; or a space
/// (an unencoded `+`) and such digits. With `blank_is_absent`, also a blank value.
fn phone_pattern(blank_is_absent: bool) -> String {
    let separator = format!("[{WHITESPACE}().-]");
    let digits = format!("[1-9](?:{separator}*[0-9]){{7,14}}{separator}*");
    let international = format!(r"{separator}*(?:\+|0{separator}*0){separator}*{digits}");
    let restored_plus = format!(" [{WHITESPACE}]*{digits}");
    let blank = if blank_is_absent {
        format!("|[{WHITESPACE}]*")
    } else {
        String::new()
    };
    format!("^(?:{international}|{restored_plus}{blank})$")
}

/// Schema of a `phone` parameter: an international number ([`parse_phone`]); in the query,
/// where a blank value means absent, also a blank value.
pub fn phone_schema(blank_is_absent: bool) -> RefOr<Schema> {
    ObjectBuilder::new()
        .schema_type(Type::String)
        .pattern(Some(phone_pattern(blank_is_absent)))
        .examples(["+14155550132"])
        .into()
}

/// Schema of `from`/`to`: an RFC 3339 date-time, a date `YYYY-MM-DD`, or blank (= absent).
pub fn time_schema() -> RefOr<Schema> {
    let string = |format: KnownFormat| {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(format)))
    };
    AnyOfBuilder::new()
        .item(string(KnownFormat::DateTime).examples(["2024-05-01T10:00:00+05:30"]))
        .item(string(KnownFormat::Date).examples(["2024-05-01"]))
        .item(
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!("^[{WHITESPACE}]*$"))),
        )
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_core::lifecycle::LifecycleStatus;
    use chrono::TimeZone;

    #[test]
    fn limit_defaults_and_bounds() {
        assert_eq!(parse_limit(None).ok(), Some(50));
        assert_eq!(parse_limit(Some("1")).ok(), Some(1));
        assert_eq!(parse_limit(Some("100")).ok(), Some(100));
        for bad in ["0", "101", "-1", "abc", "", "1.5", "99999999999999999999"] {
            assert!(
                matches!(
                    parse_limit(Some(bad)),
                    Err(ApiError::InvalidLimit { max: 100 })
                ),
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
    fn time_outside_what_rfc3339_can_write_is_moved_to_its_ends() {
        let latest = parse_time("to", "9999-12-31T23:00:00-05:00").ok();
        assert_eq!(latest, Some(latest_rfc3339()));
        assert_eq!(
            latest.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Some("9999-12-31T23:59:59.999999999Z".to_owned())
        );
        let earliest = parse_time("from", "0000-01-01T01:00:00+05:00").ok();
        assert_eq!(earliest, Some(earliest_rfc3339()));
        assert_eq!(
            earliest.map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::AutoSi, true)),
            Some("0000-01-01T00:00:00Z".to_owned())
        );
        // Inside the range nothing moves, up to the last day.
        let utc = |y, mo, d, h, mi| Utc.with_ymd_and_hms(y, mo, d, h, mi, 0).single();
        assert_eq!(
            parse_time("to", "9999-12-31T10:00:00-05:00").ok(),
            utc(9999, 12, 31, 15, 0)
        );
        assert_eq!(parse_time("from", "0000-01-01").ok(), utc(0, 1, 1, 0, 0));
    }

    #[test]
    fn ids_and_filters_with_nul_never_reach_the_database() {
        assert!(matches!(
            parse_execution_id("a\0b".to_owned()),
            Err(ApiError::CallNotFound)
        ));
        assert_eq!(
            parse_execution_id("e1".to_owned()).ok().as_deref(),
            Some("e1")
        );
        match text_filter("status", Some("a\0")) {
            Err(err @ ApiError::InvalidQuery(_)) => {
                assert_eq!(err.code(), "invalid_query");
                assert!(err.message().contains("`status`"), "{}", err.message());
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            text_filter("status", Some(" completed "))
                .ok()
                .flatten()
                .as_deref(),
            Some("completed")
        );
        assert!(text_filter("status", Some("  ")).is_ok_and(|v| v.is_none()));
        assert!(text_filter("status", None).is_ok_and(|v| v.is_none()));
    }

    #[test]
    fn statuses_come_from_their_closed_lists() {
        assert_eq!(
            status_filter(Some(" failed ")).ok().flatten().as_deref(),
            Some("failed")
        );
        assert!(status_filter(Some("")).is_ok_and(|v| v.is_none()));
        match status_filter(Some("bogus")) {
            Err(err @ ApiError::InvalidParameter { .. }) => {
                assert_eq!(err.code(), "invalid_parameter");
                let message = err.message();
                assert!(
                    message.contains("`status`") && message.contains("in_progress"),
                    "{message}"
                );
                assert!(message.contains("`bogus`"), "{message}");
            }
            other => panic!("{other:?}"),
        }
        assert!(outcome_filter(Some("bogus")).is_err_and(|e| e.message().contains("no_answer")));
        assert_eq!(outcome_filter(Some("")).ok(), Some(None));
        let outcomes: Vec<&str> = calltrail_core::Outcome::ALL
            .iter()
            .map(|o| o.as_str())
            .collect();
        assert_eq!(outcomes, OUTCOMES, "the core's outcomes, in the same order");
        let known: Vec<&str> = calltrail_core::LifecycleStatus::KNOWN
            .iter()
            .map(|s| s.as_str())
            .collect();
        assert_eq!(
            known, LIFECYCLE_STATUSES,
            "the core's lifecycle statuses, in rank order"
        );
        assert!(lifecycle_status_filter(Some("bogus"))
            .is_err_and(|e| e.message().contains("call-disconnected")));
        // Every name the list shows is one the filter takes.
        for name in LIFECYCLE_STATUSES {
            assert_eq!(
                lifecycle_status_filter(Some(name))
                    .ok()
                    .flatten()
                    .as_deref(),
                Some(*name)
            );
        }
        let known: Vec<&str> = LifecycleStatus::KNOWN.iter().map(|s| s.as_str()).collect();
        assert_eq!(LIFECYCLE_STATUSES, known.as_slice());
    }

    #[test]
    fn a_window_ends_after_it_starts() {
        assert!(parse_window(Some("2024-05-02"), Some("2024-05-01"))
            .is_err_and(|e| e.code() == "invalid_range"));
        assert!(parse_window(Some("2024-05-01"), Some("2024-05-01")).is_ok());
        assert!(parse_window(Some("2024-05-01"), None).is_ok());
        assert!(parse_window(None, Some("x")).is_err_and(|e| e.code() == "invalid_time"));
    }

    #[test]
    fn the_phone_pattern_spells_out_the_separators_and_the_blank_case() {
        let query = phone_pattern(true);
        let path = phone_pattern(false);
        assert!(
            query.starts_with("^(?:") && query.ends_with(")$"),
            "{query}"
        );
        assert!(query.contains(&format!("|[{WHITESPACE}]*)$")));
        assert!(!path.contains(&format!("|[{WHITESPACE}]*)$")));
        assert!(path.contains("{7,14}") && !path.contains(r"\s"));
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
