//! `GET /`: the dashboard: the KPIs of `GET /v1/kpis` for a range of UTC days (the last 7 by
//! default), calls per day, and connected vs missed.

use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_projections::kpis::{DayCounts, KpisView};
use chrono::{Datelike, NaiveDate, TimeDelta};
use maud::{html, Markup};
use serde::Deserialize;

use super::dates::{self, DateRange};
use super::format::{duration, percent, with_query};
use super::page::{page, Nav, PageError};
use super::session::Session;
use super::{charts, parse_query};
use crate::AppState;

/// The dashboard's query: a range of UTC dates, the end inclusive.
#[derive(Debug, Default, Deserialize)]
pub struct RangeQuery {
    /// First day, `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day (inclusive), `YYYY-MM-DD`.
    pub to: Option<String>,
}

/// `GET /`.
pub async fn dashboard(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let query: RangeQuery = parse_query(&req)?;
    let today = dates::today();
    let picked = DateRange::parse(query.from.as_deref(), query.to.as_deref(), today);
    let (range, problem) = match picked.and_then(DateRange::chartable) {
        Ok(range) => (range, None),
        Err(problem) => (
            DateRange::last_days(today, dates::DEFAULT_DAYS),
            Some(problem),
        ),
    };
    let tenant = session.tenant();
    let (from, to) = (range.from_utc(), range.to_utc());
    let (kpis, days) = tokio::try_join!(
        state.read(move |store| async move { store.kpis(tenant, Some(from), Some(to)).await }),
        state.read(move |store| async move {
            store.calls_per_day(tenant, range.first, range.last).await
        }),
    )?;
    let body = html! {
        h1 { "Dashboard" }
        section aria-labelledby="range-title" {
            h2.sr-only id="range-title" { "Date range" }
            @if let Some(problem) = &problem {
                p.alert role="alert" { (problem) " Showing the last 7 days instead." }
            }
            (range_form("/", &range, &[]))
            (presets(today))
        }
        (kpi_list(&kpis, &range))
        section aria-labelledby="per-day" {
            h2 id="per-day" { "Calls per day" }
            (charts::calls_per_day(&days))
            (legend())
            (per_day_table(&days))
        }
        section aria-labelledby="split" {
            h2 id="split" { "Connected vs missed" }
            (charts::connected_vs_missed(&kpis))
            (legend())
            p {
                (kpis.connected_calls) " connected (" (percent(kpis.connected_rate)) "), "
                (kpis.missed_calls) " missed (" (percent(kpis.missed_rate)) ") of "
                (kpis.total_calls) " calls."
            }
        }
    };
    Ok(page(&session, Nav::Dashboard, "Dashboard", body))
}

/// The date fields of a filter form, with `hidden` fields kept as they are.
pub fn range_form(action: &str, range: &DateRange, hidden: &[(&str, &str)]) -> Markup {
    html! {
        form.filters method="get" action=(action) {
            @for (name, value) in hidden {
                input type="hidden" name=(name) value=(value);
            }
            (date_fields(range))
            div.actions { button type="submit" { "Show" } }
        }
    }
}

/// The "From" and "To (inclusive)" date inputs.
pub fn date_fields(range: &DateRange) -> Markup {
    html! {
        div.field {
            label for="from" { "From (UTC)" }
            input id="from" name="from" type="date" value=(range.from_field()) required;
        }
        div.field {
            label for="to" { "To (UTC, inclusive)" }
            input id="to" name="to" type="date" value=(range.to_field()) required;
        }
    }
}

/// Links to common ranges.
fn presets(today: NaiveDate) -> Markup {
    let month_start = today.with_day(1).unwrap_or(today);
    let last_month_end = month_start - TimeDelta::days(1);
    let last_month_start = last_month_end.with_day(1).unwrap_or(last_month_end);
    let ranges = [
        ("Today", DateRange::last_days(today, 1)),
        ("Last 7 days", DateRange::last_days(today, 7)),
        ("Last 30 days", DateRange::last_days(today, 30)),
        (
            "This month",
            DateRange {
                first: month_start,
                last: today,
            },
        ),
        (
            "Last month",
            DateRange {
                first: last_month_start,
                last: last_month_end,
            },
        ),
    ];
    html! {
        ul.presets aria-label="Quick ranges" {
            @for (label, range) in ranges {
                li { a href=(with_query("/", &[("from", &range.from_field()), ("to", &range.to_field())])) { (label) } }
            }
        }
    }
}

fn kpi_list(kpis: &KpisView, range: &DateRange) -> Markup {
    let calls_link = with_query(
        "/calls",
        &[("from", &range.from_field()), ("to", &range.to_field())],
    );
    let items: [(&str, &str, String); 15] = [
        ("total_calls", "Total calls", kpis.total_calls.to_string()),
        (
            "connected_calls",
            "Connected",
            kpis.connected_calls.to_string(),
        ),
        ("missed_calls", "Missed", kpis.missed_calls.to_string()),
        (
            "connected_rate",
            "Connected rate",
            percent(kpis.connected_rate),
        ),
        ("missed_rate", "Missed rate", percent(kpis.missed_rate)),
        ("failed_calls", "Failed", kpis.failed_calls.to_string()),
        (
            "avg_conversation_seconds",
            "Average conversation",
            avg_duration(kpis.avg_conversation_seconds),
        ),
        (
            "total_duration_seconds",
            "Total talk time",
            duration(kpis.total_duration_seconds),
        ),
        (
            "credits_used",
            "Credits used",
            kpis.credits_used.to_string(),
        ),
        (
            "leads_analyzed",
            "Leads analysed",
            kpis.leads_analyzed.to_string(),
        ),
        ("hot_leads", "Hot leads", kpis.hot_leads.to_string()),
        ("warm_leads", "Warm leads", kpis.warm_leads.to_string()),
        ("cold_leads", "Cold leads", kpis.cold_leads.to_string()),
        ("booked_calls", "Booked", kpis.booked_calls.to_string()),
        ("booking_rate", "Booking rate", percent(kpis.booking_rate)),
    ];
    html! {
        section aria-labelledby="kpis-title" {
            h2 id="kpis-title" {
                "From " (range.from_field()) " to " (range.to_field()) " (UTC)"
            }
            ul.kpis {
                @for (key, name, value) in items {
                    li data-kpi=(key) {
                        span.name { (name) }
                        span.value { (value) }
                    }
                }
            }
            p { a href=(calls_link) { "See these calls" } }
        }
    }
}

/// A mean duration, rounded to the second.
fn avg_duration(seconds: f64) -> String {
    // Rounded and bounded first: the cast cannot truncate meaningfully.
    #[allow(clippy::as_conversions)]
    let whole = seconds.round().clamp(0.0, 1e12) as i64;
    duration(whole)
}

fn legend() -> Markup {
    html! {
        ul.legend aria-hidden="true" {
            li { span.swatch.connected {} "Connected" }
            li { span.swatch.missed {} "Missed (no answer, busy)" }
            li { span.swatch.other {} "Other" }
        }
    }
}

fn per_day_table(days: &[DayCounts]) -> Markup {
    html! {
        details {
            summary { "Calls per day as a table" }
            table {
                thead { tr { th scope="col" { "Date (UTC)" } th.num scope="col" { "Calls" } th.num scope="col" { "Connected" } th.num scope="col" { "Missed" } } }
                tbody {
                    @for day in days {
                        tr {
                            th scope="row" { (day.date) }
                            td.num { (day.total_calls) }
                            td.num { (day.connected_calls) }
                            td.num { (day.missed_calls) }
                        }
                    }
                }
            }
        }
    }
}
