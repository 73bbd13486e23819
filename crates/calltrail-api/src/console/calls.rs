//! `GET /calls`: the calls list: filters (UTC date range, the last 7 days by default; status,
//! lifecycle status, phone, agent, campaign or unattributed), sort by date, duration or
//! status, keyset pagination; and `GET /calls.csv`, the same filters through the API's
//! streamed export ([`crate::export::csv_response`]).

use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_projections::views::{CallView, Page};
use calltrail_projections::{CallFilter, CallSort};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::campaigns::{self, Campaigns};
use super::dashboard::date_fields;
use super::dates::{self, DateRange};
use super::format::{self, contact_href, dash, duration, provider_call_href, with_query};
use super::page::{page, Nav, PageError};
use super::parse_query;
use super::session::Session;
use crate::error::ApiError;
use crate::params::{lifecycle_status_filter, non_empty, parse_phone, status_filter, text_filter};
use crate::AppState;

/// Calls per page.
pub const PAGE_SIZE: i64 = 50;

/// User-facing statuses: the ones the API's `status` filter takes.
const STATUSES: &[&str] = crate::params::CALL_STATUSES;

/// Lifecycle statuses: the ones the API's `lifecycle_status` filter takes.
const LIFECYCLE: &[&str] = crate::params::LIFECYCLE_STATUSES;

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
    /// Only the calls of this campaign (its id); [`UNATTRIBUTED`] (the picker's choice) is
    /// `attributed=false`.
    pub campaign_id: Option<String>,
    /// `true`: only attributed calls; `false`: only unattributed ones (as the JSON list).
    pub attributed: Option<String>,
    /// Where the page starts (the previous page's cursor).
    pub cursor: Option<String>,
}

/// The campaign picker's value for "no campaign" (`attributed=false`).
pub const UNATTRIBUTED: &str = "none";
/// The campaign picker's value for "any campaign" (`attributed=true`).
pub const ATTRIBUTED: &str = "any";

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
        let sort = crate::params::sort_filter(self.sort.as_deref())?;
        let phone = non_empty(self.phone.as_deref())
            .map(parse_phone)
            .transpose()?
            .map(|p| p.as_str().to_owned());
        let mut attributed = match non_empty(self.attributed.as_deref()) {
            None => None,
            Some("true") => Some(true),
            Some("false") => Some(false),
            Some(_) => {
                return Err(PageError::Api(ApiError::InvalidQuery(
                    "`attributed` must be true or false".into(),
                )))
            }
        };
        let campaign_id = match non_empty(self.campaign_id.as_deref()) {
            None => None,
            Some(UNATTRIBUTED) => {
                attributed = Some(false);
                None
            }
            Some(ATTRIBUTED) => {
                attributed = Some(true);
                None
            }
            Some(id) => Some(Uuid::parse_str(id).map_err(|_| {
                PageError::Api(ApiError::InvalidQuery(format!("unknown campaign `{id}`")))
            })?),
        };
        let filter = CallFilter {
            // The API's own checks: a value outside its list is the API's message, in the
            // console's error page.
            status: status_filter(self.status.as_deref())?,
            lifecycle_status: lifecycle_status_filter(self.lifecycle_status.as_deref())?,
            phone,
            agent_id: text_filter("agent_id", self.agent_id.as_deref())?,
            from: Some(range.from_utc()),
            to: Some(range.to_utc()),
            campaign_id,
            attributed,
            provider: None,
            outcome: None,
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
        if let Some(attributed) = attributed {
            pairs.push(("attributed", attributed.to_string()));
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

    /// The list of `path` with these filters, but only the calls of `campaign`.
    pub fn with_campaign(&self, path: &str, campaign: Uuid) -> String {
        let id = campaign.to_string();
        let mut pairs: Vec<(&str, &str)> = self
            .pairs
            .iter()
            .filter(|(k, _)| !matches!(*k, "campaign_id" | "attributed"))
            .map(|(k, v)| (*k, v.as_str()))
            .collect();
        pairs.push(("campaign_id", &id));
        with_query(path, &pairs)
    }
}

/// How [`calls_table`] shows a list's rows.
#[derive(Debug, Clone, Copy)]
pub struct TableOptions<'a> {
    /// The tenant's campaigns (the Campaign column's names).
    pub campaigns: &'a Campaigns,
    /// The list's filters: a campaign's name links to them narrowed to the campaign (else to
    /// the campaign's calls of all dates).
    pub filters: Option<&'a ListFilters>,
    /// A checkbox per row (`execution_id`) for a form around the table, instead of the
    /// Campaign column.
    pub select: bool,
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
    let (calls, campaigns) = tokio::try_join!(
        state.read(move |store| async move {
            store
                .list_calls(tenant, &filter, cursor.as_deref(), PAGE_SIZE)
                .await
        }),
        Campaigns::load(&state, tenant),
    )?;
    let options = TableOptions {
        campaigns: &campaigns,
        filters: Some(&filters),
        select: false,
    };
    let body = html! {
        h1 { "Calls" }
        section aria-labelledby="filters-title" {
            h2.sr-only id="filters-title" { "Filters" }
            (filter_form(&query, &filters, &campaigns))
        }
        section aria-labelledby="list-title" {
            h2 id="list-title" {
                "Calls from " (filters.range.from_field()) " to " (filters.range.to_field()) " (UTC)"
            }
            div.toolbar {
                a.button.secondary href=(filters.url("/calls.csv", &[])) download="calls.csv" {
                    "Download CSV"
                }
            }
            (calls_table(&calls.items, options))
            (pager("/calls", &filters, &calls, query.cursor.as_deref()))
        }
    };
    Ok(page(&session, Nav::Calls, "Calls", body))
}

/// `GET /calls.csv`: every call of the list's filters, in its order, as the API's export
/// streams it (the session instead of the API key; `cursor` is ignored).
pub async fn csv(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let query: ListQuery = parse_query(&req)?;
    let filters = query.filters()?;
    let mut response = crate::export::csv_response(&state, session.tenant(), filters.filter);
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    Ok(response)
}

fn filter_form(query: &ListQuery, filters: &ListFilters, campaigns: &Campaigns) -> Markup {
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
                        option value=(s) selected[status == *s] { (s.replace('_', " ")) }
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
                        option value=(s) selected[lifecycle == *s] { (s) }
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
                label for="campaign_id" { "Campaign" }
                select id="campaign_id" name="campaign_id" {
                    option value="" selected[filters.filter.campaign_id.is_none() && filters.filter.attributed.is_none()] { "Any" }
                    option value=(ATTRIBUTED) selected[filters.filter.campaign_id.is_none() && filters.filter.attributed == Some(true)] { "Any campaign" }
                    option value=(UNATTRIBUTED) selected[filters.filter.campaign_id.is_none() && filters.filter.attributed == Some(false)] { "Unattributed" }
                    @if let Some(id) = filters.filter.campaign_id.filter(|id| campaigns.name(*id).is_none()) {
                        option value=(id) selected { "Campaign " (id) }
                    }
                    (campaigns.options(filters.filter.campaign_id))
                }
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

/// A table of calls (also the contact page's recent calls and the unattributed page).
pub fn calls_table(calls: &[CallView], options: TableOptions<'_>) -> Markup {
    html! {
        @if calls.is_empty() {
            p.notice { "No calls match." }
        } @else {
            table.rows {
                thead {
                    tr {
                        @if options.select { th scope="col" { "Select" } }
                        th scope="col" { "Created (UTC)" }
                        th scope="col" { "Phone" }
                        th scope="col" { "Status" }
                        th scope="col" { "Provider status" }
                        th.num scope="col" { "Duration" }
                        th.num scope="col" { "Credits" }
                        th scope="col" { "Agent" }
                        @if !options.select { th scope="col" { "Campaign" } }
                    }
                }
                tbody {
                    @for (i, call) in calls.iter().enumerate() {
                        @let href = provider_call_href(&call.provider, &call.execution_id);
                        // A selectable row is not a link as a whole: a click beside the
                        // checkbox must not leave the form.
                        tr data-href=[(!options.select).then_some(&href)] {
                            @if options.select {
                                @let id = format!("pick-{i}");
                                td data-label="Select" {
                                    input type="checkbox" id=(id) name="execution_id" value=(call.execution_id);
                                    label.sr-only for=(id) { "Select call " (call.execution_id) }
                                }
                            }
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
                            @if !options.select {
                                td data-label="Campaign" {
                                    @match call.campaign_id {
                                        Some(id) => (options.campaigns.link(id, &campaign_href(options.filters, id))),
                                        None => span.none { "Unattributed" },
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    }
}

/// Where a campaign's name in a list leads: the list narrowed to it, or its calls of all dates.
fn campaign_href(filters: Option<&ListFilters>, id: Uuid) -> String {
    match filters {
        Some(filters) => filters.with_campaign("/calls", id),
        None => campaigns::calls_href(id),
    }
}

/// The pager of a list at `path` (`/calls`, `/unattributed`).
pub fn pager(
    path: &str,
    filters: &ListFilters,
    calls: &Page<CallView>,
    cursor: Option<&str>,
) -> Markup {
    html! {
        nav.pager aria-label="Pages" {
            @if non_empty(cursor).is_some() {
                a href=(filters.url(path, &[])) { "First page" }
            }
            @if let Some(next) = &calls.next_cursor {
                a href=(filters.url(path, &[("cursor", next)])) rel="next" { "Next page" }
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
    fn the_campaign_picker_is_the_json_list_s_campaign_id_and_attributed() {
        let id = Uuid::new_v4();
        let read = |campaign: &str, attributed: Option<&str>| {
            let query = ListQuery {
                from: Some("2025-10-01".into()),
                to: Some("2025-10-31".into()),
                campaign_id: Some(campaign.into()),
                attributed: attributed.map(Into::into),
                ..ListQuery::default()
            };
            query.filters().ok().map(|f| {
                (
                    f.filter.campaign_id,
                    f.filter.attributed,
                    f.url("/calls.csv", &[]),
                )
            })
        };
        let range = "/calls.csv?from=2025-10-01&to=2025-10-31";
        assert_eq!(
            read(UNATTRIBUTED, None),
            Some((None, Some(false), format!("{range}&attributed=false")))
        );
        assert_eq!(
            read(ATTRIBUTED, None),
            Some((None, Some(true), format!("{range}&attributed=true")))
        );
        assert_eq!(
            read(&id.to_string(), None),
            Some((Some(id), None, format!("{range}&campaign_id={id}")))
        );
        assert_eq!(
            read("", Some("false")),
            Some((None, Some(false), format!("{range}&attributed=false")))
        );
        assert_eq!(read("spring", None), None);
        assert_eq!(read("", Some("maybe")), None);
        let filters = ListQuery {
            attributed: Some("false".into()),
            status: Some("failed".into()),
            ..ListQuery::default()
        }
        .filters()
        .ok();
        let narrowed = filters.map(|f| f.with_campaign("/calls", id));
        assert!(
            narrowed.as_deref().is_some_and(|url| url
                .ends_with(&format!("&status=failed&campaign_id={id}"))
                && !url.contains("attributed")),
            "{narrowed:?}"
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
