//! KPIs over a tenant's calls in a time window (`GET /v1/kpis`), computed from the read tables
//! in one statement: one index range scan of the tenant's calls in the window.
//!
//! Definitions (CONTRACT §3), over the calls whose `created_at` is in `[from, to)`:
//! - `connected_calls`: the call reached `in-progress` (it has an answer time, a disconnect
//!   time, or a charged duration — a lost `in-progress` webhook does not hide a conversation);
//! - `missed_calls`: `no-answer` + `busy`; `failed_calls`: `failed`, `error`, `balance-low`
//!   (the call failed for a reason other than the callee);
//! - rates are fractions of `total_calls` (0 when there are none);
//! - `avg_conversation_seconds`: mean `duration_seconds` of connected calls;
//! - `leads_analyzed`: calls with an individual analysis;
//! - `hot/warm/cold_leads`: contacts called in the window, by their complete analysis's tag;
//! - `booked_calls`: calls whose outcome is `booked`; `booking_rate`: booked ÷ connected
//!   (rounded like the other rates, 0 when no call connected);
//! - `total_cost_by_unit`: the sum of the providers' reported costs per unit (calls without a
//!   cost add nothing); `total_cost` and `total_cost_unit` are that sum and its unit when the
//!   window's costs share one unit, else `null` (no cost at all, or units that cannot be
//!   added up: calltrail never converts).
//!
//! [`ReadStore::calls_per_day`] splits the same counts by UTC day (the console's charts).

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, TimeDelta, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Error, ReadStore};

/// The KPI block.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct KpisView {
    /// Inclusive start of the window, if bounded.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive end of the window, if bounded.
    pub to: Option<DateTime<Utc>>,
    /// Calls created in the window.
    pub total_calls: i64,
    /// Calls that reached `in-progress`.
    pub connected_calls: i64,
    /// `no-answer` + `busy`.
    pub missed_calls: i64,
    /// `failed`, `error`, `balance-low`.
    pub failed_calls: i64,
    /// connected ÷ total.
    pub connected_rate: f64,
    /// missed ÷ total.
    pub missed_rate: f64,
    /// Mean conversation length of connected calls.
    pub avg_conversation_seconds: f64,
    /// Sum of conversation lengths.
    pub total_duration_seconds: i64,
    /// Credits charged for these calls.
    pub credits_used: i64,
    /// Calls with an individual lead analysis.
    pub leads_analyzed: i64,
    /// Contacts called in the window whose complete analysis is Hot.
    pub hot_leads: i64,
    /// … Warm.
    pub warm_leads: i64,
    /// … Cold.
    pub cold_leads: i64,
    /// Calls whose outcome is `booked`.
    pub booked_calls: i64,
    /// booked ÷ connected (0 when no call connected).
    pub booking_rate: f64,
    /// The sum of the providers' reported costs when they share one unit; `null` when no call
    /// has a cost or the units differ (see `total_cost_by_unit`).
    pub total_cost: Option<f64>,
    /// The unit of `total_cost` (`usd`, `cents`, `credits`); `null` with it.
    pub total_cost_unit: Option<String>,
    /// The sum of the reported costs per unit, e.g. `{"cents": 487.0, "usd": 0.0473}` (`{}`
    /// when no call has a cost); never converted into one another.
    pub total_cost_by_unit: BTreeMap<String, f64>,
}

/// Most days [`ReadStore::calls_per_day`] answers for (a year and a day).
pub const MAX_DAYS: i64 = 366;

/// One UTC day's calls.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct DayCounts {
    /// The UTC date.
    pub date: NaiveDate,
    /// Calls created that day.
    pub total_calls: i64,
    /// … that reached `in-progress` (as in the KPIs).
    pub connected_calls: i64,
    /// … that ended `no-answer` or `busy`.
    pub missed_calls: i64,
}

const KPIS: &str = "
WITH w AS (
    SELECT execution_id, provider, phone_number, call_lifecycle_status, duration_seconds, credits_used,
           outcome, cost, cost_unit,
           (call_answered_at IS NOT NULL OR call_disconnected_at IS NOT NULL OR duration_seconds > 0) AS connected
      FROM calls
     WHERE user_id = $1
       AND ($2::timestamptz IS NULL OR created_at >= $2)
       AND ($3::timestamptz IS NULL OR created_at < $3)
), totals AS (
    SELECT count(*) AS total,
           count(*) FILTER (WHERE connected) AS connected,
           count(*) FILTER (WHERE call_lifecycle_status IN ('no-answer', 'busy')) AS missed,
           count(*) FILTER (WHERE call_lifecycle_status IN ('failed', 'error', 'balance-low')) AS failed,
           coalesce(avg(duration_seconds) FILTER (WHERE connected), 0)::float8 AS avg_seconds,
           coalesce(sum(duration_seconds), 0)::bigint AS total_seconds,
           coalesce(sum(credits_used), 0)::bigint AS credits,
           count(*) FILTER (WHERE outcome = 'booked') AS booked
      FROM w
), costs AS (
    -- Summed as numeric: 0.1 + 0.2 is 0.3, as the provider's own decimal numbers add up.
    SELECT array_agg(cost_unit ORDER BY cost_unit) AS units,
           array_agg(total ORDER BY cost_unit) AS totals
      FROM (SELECT cost_unit, sum(cost::numeric)::float8 AS total
              FROM w WHERE cost IS NOT NULL AND cost_unit IS NOT NULL
             GROUP BY cost_unit) per_unit
), analysed AS (
    SELECT count(*) AS n
      FROM lead_analytics la JOIN w ON la.key = w.execution_id AND la.provider = w.provider
     WHERE la.user_id = $1 AND la.analysis_type = 'individual'
), tags AS (
    SELECT count(*) FILTER (WHERE la.lead_status_tag = 'Hot') AS hot,
           count(*) FILTER (WHERE la.lead_status_tag = 'Warm') AS warm,
           count(*) FILTER (WHERE la.lead_status_tag = 'Cold') AS cold
      FROM lead_analytics la
     WHERE la.user_id = $1 AND la.analysis_type = 'complete'
       AND la.key IN (SELECT DISTINCT phone_number FROM w WHERE phone_number IS NOT NULL)
)
SELECT total AS total_calls, connected AS connected_calls, missed AS missed_calls,
       failed AS failed_calls, avg_seconds, total_seconds AS total_duration_seconds,
       credits AS credits_used, analysed.n AS leads_analyzed, hot AS hot_leads, warm AS warm_leads,
       cold AS cold_leads, booked AS booked_calls, costs.units AS cost_units,
       costs.totals AS cost_totals
  FROM totals, analysed, tags, costs";

/// The same definitions as [`KPIS`], grouped by UTC day.
const PER_DAY: &str = "
SELECT (created_at AT TIME ZONE 'UTC')::date AS day,
       count(*) AS total_calls,
       count(*) FILTER (WHERE call_answered_at IS NOT NULL OR call_disconnected_at IS NOT NULL OR duration_seconds > 0) AS connected_calls,
       count(*) FILTER (WHERE call_lifecycle_status IN ('no-answer', 'busy')) AS missed_calls
  FROM calls
 WHERE user_id = $1 AND created_at >= $2 AND created_at < $3
 GROUP BY day";

impl ReadStore {
    /// The tenant's calls per UTC day for every day from `first` to `last` inclusive (days
    /// without calls are zeros). At most [`MAX_DAYS`] days; a longer or reversed range is
    /// [`Error::InvalidInput`].
    pub async fn calls_per_day(
        &self,
        tenant: Uuid,
        first: NaiveDate,
        last: NaiveDate,
    ) -> Result<Vec<DayCounts>, Error> {
        let days = (last - first).num_days() + 1;
        if !(1..=MAX_DAYS).contains(&days) {
            return Err(Error::InvalidInput(format!(
                "a range of days runs forward over 1 to {MAX_DAYS} days"
            )));
        }
        let from = first.and_time(chrono::NaiveTime::MIN).and_utc();
        let to = from + TimeDelta::days(days);
        let client = self.client().await?;
        let rows = client.query(PER_DAY, &[&tenant, &from, &to]).await?;
        let mut counted = std::collections::HashMap::with_capacity(rows.len());
        for row in &rows {
            let day: NaiveDate = row.try_get("day")?;
            let counts = (
                row.try_get("total_calls")?,
                row.try_get("connected_calls")?,
                row.try_get("missed_calls")?,
            );
            counted.insert(day, counts);
        }
        Ok(first
            .iter_days()
            .take_while(|day| *day <= last)
            .map(|date| {
                let (total_calls, connected_calls, missed_calls) =
                    counted.get(&date).copied().unwrap_or((0, 0, 0));
                DayCounts {
                    date,
                    total_calls,
                    connected_calls,
                    missed_calls,
                }
            })
            .collect())
    }

    /// The tenant's KPIs over calls created in `[from, to)` (each bound optional).
    pub async fn kpis(
        &self,
        tenant: Uuid,
        from: Option<DateTime<Utc>>,
        to: Option<DateTime<Utc>>,
    ) -> Result<KpisView, Error> {
        let client = self.client().await?;
        let row = client.query_one(KPIS, &[&tenant, &from, &to]).await?;
        let total: i64 = row.try_get("total_calls")?;
        let connected: i64 = row.try_get("connected_calls")?;
        let missed: i64 = row.try_get("missed_calls")?;
        let booked: i64 = row.try_get("booked_calls")?;
        let rate = |part: i64| fraction(part, total);
        let units: Option<Vec<String>> = row.try_get("cost_units")?;
        let totals: Option<Vec<f64>> = row.try_get("cost_totals")?;
        let by_unit: BTreeMap<String, f64> = units
            .unwrap_or_default()
            .into_iter()
            .zip(totals.unwrap_or_default())
            .collect();
        let single = (by_unit.len() == 1)
            .then(|| by_unit.iter().next())
            .flatten()
            .map(|(unit, sum)| (unit.clone(), *sum));
        let avg: f64 = row.try_get("avg_seconds")?;
        Ok(KpisView {
            from,
            to,
            total_calls: total,
            connected_calls: connected,
            missed_calls: missed,
            failed_calls: row.try_get("failed_calls")?,
            connected_rate: rate(connected),
            missed_rate: rate(missed),
            avg_conversation_seconds: (avg * 100.0).round() / 100.0,
            total_duration_seconds: row.try_get("total_duration_seconds")?,
            credits_used: row.try_get("credits_used")?,
            leads_analyzed: row.try_get("leads_analyzed")?,
            hot_leads: row.try_get("hot_leads")?,
            warm_leads: row.try_get("warm_leads")?,
            cold_leads: row.try_get("cold_leads")?,
            booked_calls: booked,
            booking_rate: fraction(booked, connected),
            total_cost: single.as_ref().map(|(_, sum)| *sum),
            total_cost_unit: single.map(|(unit, _)| unit),
            total_cost_by_unit: by_unit,
        })
    }
}

/// `part ÷ whole` rounded to 4 decimals (0 when `whole` is 0): how every KPI rate is given.
fn fraction(part: i64, whole: i64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Counts far below 2^52: exact as f64.
    #[allow(clippy::as_conversions)]
    let fraction = part as f64 / whole as f64;
    (fraction * 10_000.0).round() / 10_000.0
}
