//! Date ranges as people pick them: whole UTC days, the end date inclusive, the last 7 days by
//! default. [`DateRange::to_utc`] turns the inclusive end into the API's half-open `to`.

use chrono::{DateTime, NaiveDate, NaiveTime, TimeDelta, Utc};

use calltrail_projections::kpis::MAX_DAYS;

/// Days in the default range (today and the six days before it).
pub const DEFAULT_DAYS: i64 = 7;

/// An inclusive range of UTC dates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DateRange {
    /// The first day.
    pub first: NaiveDate,
    /// The last day (inclusive).
    pub last: NaiveDate,
}

impl DateRange {
    /// The last `days` days up to and including `today`.
    pub fn last_days(today: NaiveDate, days: i64) -> Self {
        Self {
            first: today - TimeDelta::days(days - 1),
            last: today,
        }
    }

    /// The range of the `from`/`to` fields (`YYYY-MM-DD`; blank = absent). Both absent: the
    /// last 7 days. Only `from`: from then to today (or just that day, if it is in the
    /// future). Only `to`: the 7 days ending then. The error is a sentence for the form.
    pub fn parse(from: Option<&str>, to: Option<&str>, today: NaiveDate) -> Result<Self, String> {
        let from = date_field("start", from)?;
        let to = date_field("end", to)?;
        let range = match (from, to) {
            (None, None) => Self::last_days(today, DEFAULT_DAYS),
            (Some(first), None) => Self {
                first,
                last: today.max(first),
            },
            (None, Some(last)) => Self::last_days(last, DEFAULT_DAYS),
            (Some(first), Some(last)) => Self { first, last },
        };
        if range.last < range.first {
            return Err("The end date is before the start date.".to_owned());
        }
        Ok(range)
    }

    /// The range, if it is short enough to draw per day (at most [`MAX_DAYS`]).
    pub fn chartable(self) -> Result<Self, String> {
        if self.days() > MAX_DAYS {
            return Err(format!(
                "A chart covers at most {MAX_DAYS} days; pick a shorter range."
            ));
        }
        Ok(self)
    }

    /// Days in the range.
    pub fn days(&self) -> i64 {
        (self.last - self.first).num_days() + 1
    }

    /// Midnight UTC at the start of the first day: the API's `from`.
    pub fn from_utc(&self) -> DateTime<Utc> {
        self.first.and_time(NaiveTime::MIN).and_utc()
    }

    /// Midnight UTC after the last day: the API's exclusive `to`.
    pub fn to_utc(&self) -> DateTime<Utc> {
        (self.last + TimeDelta::days(1))
            .and_time(NaiveTime::MIN)
            .and_utc()
    }

    /// `from` as the form writes it.
    pub fn from_field(&self) -> String {
        self.first.format("%Y-%m-%d").to_string()
    }

    /// `to` (inclusive) as the form writes it.
    pub fn to_field(&self) -> String {
        self.last.format("%Y-%m-%d").to_string()
    }
}

/// Today's date in UTC.
pub fn today() -> NaiveDate {
    Utc::now().date_naive()
}

fn date_field(which: &str, raw: Option<&str>) -> Result<Option<NaiveDate>, String> {
    let Some(raw) = raw.map(str::trim).filter(|s| !s.is_empty()) else {
        return Ok(None);
    };
    NaiveDate::parse_from_str(raw, "%Y-%m-%d")
        .map(Some)
        .map_err(|_| format!("The {which} date must be a date like 2025-10-31."))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(y: i32, m: u32, d: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, d).unwrap_or_default()
    }

    #[test]
    fn the_default_is_the_last_seven_days_including_today() {
        let range = DateRange::parse(None, Some(" "), day(2025, 10, 8));
        assert_eq!(
            range,
            Ok(DateRange {
                first: day(2025, 10, 2),
                last: day(2025, 10, 8)
            })
        );
        assert_eq!(range.map(|r| r.days()), Ok(7));
    }

    #[test]
    fn the_end_date_is_inclusive_and_becomes_the_next_midnight() {
        let range = DateRange::parse(Some("2025-10-01"), Some("2025-10-31"), day(2025, 12, 1))
            .unwrap_or(DateRange::last_days(day(2000, 1, 1), 1));
        assert_eq!(range.from_utc().to_rfc3339(), "2025-10-01T00:00:00+00:00");
        assert_eq!(range.to_utc().to_rfc3339(), "2025-11-01T00:00:00+00:00");
        assert_eq!(
            (range.from_field(), range.to_field()),
            ("2025-10-01".into(), "2025-10-31".into())
        );
        let one_day = DateRange::parse(Some("2025-10-08"), Some("2025-10-08"), day(2025, 12, 1));
        assert_eq!(one_day.map(|r| r.days()), Ok(1));
    }

    #[test]
    fn half_given_ranges_are_completed() {
        let today = day(2025, 10, 8);
        let from_only = DateRange::parse(Some("2025-10-01"), None, today);
        assert_eq!(from_only.map(|r| r.last), Ok(today));
        let future = DateRange::parse(Some("2025-11-01"), None, today);
        assert_eq!(future.map(|r| r.last), Ok(day(2025, 11, 1)));
        let to_only = DateRange::parse(None, Some("2025-09-30"), today);
        assert_eq!(to_only.map(|r| r.first), Ok(day(2025, 9, 24)));
    }

    #[test]
    fn bad_ranges_say_why() {
        let today = day(2025, 10, 8);
        assert_eq!(
            DateRange::parse(Some("2025-10-08"), Some("2025-10-01"), today),
            Err("The end date is before the start date.".to_owned())
        );
        assert!(DateRange::parse(Some("08/10/2025"), None, today)
            .is_err_and(|e| e.contains("start date")));
        assert!(DateRange::parse(None, Some("2025-02-30"), today)
            .is_err_and(|e| e.contains("end date")));
        let long = DateRange::parse(Some("2020-01-01"), Some("2025-01-01"), today);
        assert!(long.is_ok_and(|r| r.chartable().is_err_and(|e| e.contains("366"))));
    }
}
