//! `GET /calls`: the calls list: filters (UTC date range, the last 7 days by default; status,
//! lifecycle status, phone, agent), sort by date, duration or status, keyset pagination.

use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_projections::views::{CallView, Page};
use calltrail_projections::{CallFilter, CallSort};
use maud::{html, Markup};
use serde::Deserialize;

use super::dashboard::date_fields;
use super::dates::{self, DateRange};
use super::format::{self, call_href, contact_href, dash, duration, with_query};
use super::page::{page, Nav, PageError};
use super::parse_query;
use super::session::Session;
use crate::error::ApiError;
use crate::params::{non_empty, parse_phone, text_filter};
use crate::AppState;

/// Calls per page.
pub const PAGE_SIZE: i64 = 50;

/// User-facing statuses (CONTRACT §3 `status`).
const STATUSES: [&str; 4] = ["completed", "in_progress", "failed", "cancelled"];

/// Lifecycle statuses (CONTRACT §3, Bolna's vocabulary).
const LIFECYCLE: [&str; 15] = [
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

/// The list's query string, as the filter form and the pager write it.
#[derive(Debug, Default, Clone, Deserialize)]
pub struct ListQuery {
    /// First day (UTC), `YYYY-MM-DD`.
    pub from: Option<String>,
    /// Last day (UTC, inclusive), `YYYY-MM-DD`.
    pub to: Option<String>,
    /// User-facing status.
    pub status: Option<String>,
    /// Provider lifecycle status.
    pub lifecycle_status: Option<String>,
    /// The contact's number.
    pub phone: Option<String>,
    /// The provider's agent id.
    pub agent_id: Option<String>,
    /// `newest` (default), `oldest`, `longest`, `shortest`, `status`.
    pub sort: Option<String>,
    /// Only the calls of this campaign (its id).
    pub campaign_id: Option<String>,
    /// Where the page starts (the previous page's cursor).
    pub cursor: Option<String>,
}

/// The list's filters once read: what the query layer gets and what the form shows again.
#[derive(Debug, Clone)]
pub struct ListFilters {
    /// The dates as picked.
    pub range: DateRange,
    /// The filter of [`calltrail_projections::ReadStore::list_calls`].
    pub filter: CallFilter,
    /// The query-string pairs that reproduce these filters (no cursor): the pager, a CSV
    /// export and the sort links carry them.
    pub pairs: Vec<(&'static str, String)>,
}

impl ListQuery {
    /// Reads the filters; a value the API would refuse is refused with the API's message.
    pub fn filters(&self) -> Result<ListFilters, PageError> {
        let range = DateRange::parse(self.from.as_deref(), self.to.as_deref(), dates::today())
            .map_err(|problem| PageError::Api(ApiError::InvalidQuery(problem)))?;
        let sort = match non_empty(self.sort.as_deref()) {
            None => CallSort::default(),
            Some(name) => CallSort::parse(name).ok_or_else(|| {
                PageError::Api(ApiError::InvalidQuery(format!("unknown sort `{name}`")))
            })?,
        };
        let phone = non_empty(self.phone.as_deref())
            .map(parse_phone)
            .transpose()?
            .map(|p| p.as_str().to_owned());
        let campaign_id = non_empty(self.campaign_id.as_deref())
            .map(|id| {
                uuid::Uuid::parse_str(id).map_err(|_| {
                    PageError::Api(ApiError::InvalidQuery(format!("unknown campaign `{id}`")))
                })
            })
            .transpose()?;
        let filter = CallFilter {
            status: text_filter("status", self.status.as_deref())?,
            lifecycle_status: text_filter("lifecycle_status", self.lifecycle_status.as_deref())?,
            phone,
            agent_id: text_filter("agent_id", self.agent_id.as_deref())?,
            from: Some(range.from_utc()),
            to: Some(range.to_utc()),
            campaign_id,
            attributed: None,
            sort,
        };
        let mut pairs = vec![("from", range.from_field()), ("to", range.to_field())];
        let optional = [
            ("status", &filter.status),
            ("lifecycle_status", &filter.lifecycle_status),
            ("phone", &filter.phone),
            ("agent_id", &filter.agent_id),
        ];
        pairs.extend(
            optional
                .into_iter()
                .filter_map(|(name, value)| value.clone().map(|v| (name, v))),
        );
        if let Some(id) = campaign_id {
            pairs.push(("campaign_id", id.to_string()));
        }
        if sort != CallSort::default() {
            pairs.push(("sort", sort.name().to_owned()));
        }
        Ok(ListFilters {
            range,
            filter,
            pairs,
        })
    }
}

impl ListFilters {
    /// A URL of `path` with these filters, `extra` pairs added.
    pub fn url(&self, path: &str, extra: &[(&str, &str)]) -> String {
        let mut pairs: Vec<(&str, &str)> =
            self.pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        pairs.extend_from_slice(extra);
        with_query(path, &pairs)
    }
}

/// `GET /calls`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let query: ListQuery = parse_query(&req)?;
    let filters = query.filters()?;
    let tenant = session.tenant();
    let cursor = non_empty(query.cursor.as_deref()).map(str::to_owned);
    let filter = filters.filter.clone();
    let calls = state
        .read(move |store| async move {
            store
                .list_calls(tenant, &filter, cursor.as_deref(), PAGE_SIZE)
                .await
        })
        .await?;
    let body = html! {
        h1 { "Calls" }
        section aria-labelledby="filters-title" {
            h2.sr-only id="filters-title" { "Filters" }
            (filter_form(&query, &filters))
        }
        section aria-labelledby="list-title" {
            h2 id="list-title" {
                "Calls from " (filters.range.from_field()) " to " (filters.range.to_field()) " (UTC)"
            }
            (calls_table(&calls.items))
            (pager(&filters, &calls, query.cursor.as_deref()))
        }
    };
    Ok(page(&session, Nav::Calls, "Calls", body))
}

fn filter_form(query: &ListQuery, filters: &ListFilters) -> Markup {
    let status = filters.filter.status.as_deref().unwrap_or_default();
    let lifecycle = filters
        .filter
        .lifecycle_status
        .as_deref()
        .unwrap_or_default();
    html! {
        form.filters method="get" action="/calls" {
            (date_fields(&filters.range))
            div.field {
                label for="status" { "Status" }
                select id="status" name="status" {
                    option value="" selected[status.is_empty()] { "Any" }
                    @for s in STATUSES {
                        option value=(s) selected[status == s] { (s.replace('_', " ")) }
                    }
                }
            }
            div.field {
                label for="lifecycle_status" { "Provider status" }
                select id="lifecycle_status" name="lifecycle_status" {
                    option value="" selected[lifecycle.is_empty()] { "Any" }
                    @if !lifecycle.is_empty() && !LIFECYCLE.contains(&lifecycle) {
                        option value=(lifecycle) selected { (lifecycle) }
                    }
                    @for s in LIFECYCLE {
                        option value=(s) selected[lifecycle == s] { (s) }
                    }
                }
            }
            div.field {
                label for="phone" { "Phone" }
                input id="phone" name="phone" type="text" inputmode="tel" autocomplete="off"
                    placeholder="+14155550132" value=(query.phone.as_deref().unwrap_or_default());
            }
            div.field {
                label for="agent_id" { "Agent id" }
                input id="agent_id" name="agent_id" type="text" autocomplete="off"
                    value=(filters.filter.agent_id.as_deref().unwrap_or_default());
            }
            div.field {
                label for="sort" { "Sort by" }
                select id="sort" name="sort" {
                    @for sort in CallSort::ALL {
                        option value=(sort.name()) selected[filters.filter.sort == sort] { (sort_label(sort)) }
                    }
                }
            }
            div.actions {
                button type="submit" { "Apply" }
                a href="/calls" { "Reset" }
            }
        }
    }
}

/// How a sort reads in the picker.
fn sort_label(sort: CallSort) -> &'static str {
    match sort {
        CallSort::Newest => "Date, newest first",
        CallSort::Oldest => "Date, oldest first",
        CallSort::Longest => "Duration, longest first",
        CallSort::Shortest => "Duration, shortest first",
        CallSort::Status => "Status",
    }
}

/// A table of calls (also the contact page's recent calls).
pub fn calls_table(calls: &[CallView]) -> Markup {
    html! {
        @if calls.is_empty() {
            p.notice { "No calls match." }
        } @else {
            table.rows {
                thead {
                    tr {
                        th scope="col" { "Created (UTC)" }
                        th scope="col" { "Phone" }
                        th scope="col" { "Status" }
                        th scope="col" { "Provider status" }
                        th.num scope="col" { "Duration" }
                        th.num scope="col" { "Credits" }
                        th scope="col" { "Agent" }
                    }
                }
                tbody {
                    @for call in calls {
                        @let href = call_href(&call.execution_id);
                        tr data-href=(href) {
                            td data-label="Created" {
                                a href=(href) aria-label=(format!("Call {}", call.execution_id)) {
                                    (format::time(call.created_at))
                                }
                            }
                            td data-label="Phone" {
                                @match &call.phone_number {
                                    Some(phone) => a href=(contact_href(phone)) { (phone) },
                                    None => (dash()),
                                }
                            }
                            td data-label="Status" { (format::status(&call.status)) }
                            td data-label="Provider status" { (call.call_lifecycle_status) }
                            td.num data-label="Duration" { (duration(call.duration_seconds)) }
                            td.num data-label="Credits" { (call.credits_used) }
                            td data-label="Agent" {
                                @match &call.agent_id { Some(agent) => (agent), None => (dash()) }
                            }
                        }
                    }
                }
            }
        }
    }
}

fn pager(filters: &ListFilters, calls: &Page<CallView>, cursor: Option<&str>) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if non_empty(cursor).is_some() {
                a href=(filters.url("/calls", &[])) { "First page" }
            }
            @if let Some(next) = &calls.next_cursor {
                a href=(filters.url("/calls", &[("cursor", next)])) rel="next" { "Next page" }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filters_turn_an_inclusive_end_into_the_api_s_to() {
        let query = ListQuery {
            from: Some("2025-10-01".into()),
            to: Some("2025-10-07".into()),
            status: Some("completed".into()),
            phone: Some("+1 415 555 0132".into()),
            sort: Some("longest".into()),
            ..ListQuery::default()
        };
        let filters = query.filters().ok();
        let filter = filters.as_ref().map(|f| &f.filter);
        assert_eq!(
            filter.and_then(|f| f.to).map(|t| t.to_rfc3339()),
            Some("2025-10-08T00:00:00+00:00".to_owned())
        );
        assert_eq!(
            filter.and_then(|f| f.phone.as_deref()),
            Some("+14155550132")
        );
        assert_eq!(filter.map(|f| f.sort), Some(CallSort::Longest));
        assert_eq!(
            filters.map(|f| f.url("/calls", &[("cursor", "ab")])),
            Some("/calls?from=2025-10-01&to=2025-10-07&status=completed&phone=%2B14155550132&sort=longest&cursor=ab".to_owned())
        );
    }

    #[test]
    fn bad_filters_are_refused_with_a_reason() {
        let code = |query: ListQuery| match query.filters() {
            Err(PageError::Api(err)) => Some(err.code()),
            _ => None,
        };
        let phone = ListQuery {
            phone: Some("12".into()),
            ..ListQuery::default()
        };
        assert_eq!(code(phone), Some("invalid_phone"));
        let sort = ListQuery {
            sort: Some("loudest".into()),
            ..ListQuery::default()
        };
        assert_eq!(code(sort), Some("invalid_query"));
        let dates = ListQuery {
            from: Some("2025-10-08".into()),
            to: Some("2025-10-01".into()),
            ..ListQuery::default()
        };
        assert_eq!(code(dates), Some("invalid_query"));
    }
}
