//! Manual attribution in the console (CONTRACT §6): `GET /unattributed` lists the calls with
//! `attributed=false` with a checkbox each and one form to attribute the checked ones to a
//! campaign (`POST /unattributed`, at most [`MAX_BULK`]); the call page's form posts to
//! `POST /calls/{execution_id}/attribution` (a campaign, or "clear"). Both run the JSON API's
//! own attribution ([`crate::attributions`]) and answer with a 303 back to the page and a
//! notice. Attribution is a projection: the page may show the old state for a moment, and the
//! notice says so.

use actix_web::{web, HttpRequest, HttpResponse};
use maud::html;
use serde::Deserialize;
use uuid::Uuid;

use super::calls::{calls_table, pager, ListFilters, ListQuery, TableOptions, PAGE_SIZE};
use super::campaigns::Campaigns;
use super::dashboard::date_fields;
use super::format::{call_href, with_query};
use super::page::{page, see_other, Nav, PageError};
use super::parse_query;
use super::session::Session;
use crate::attributions::{attribute_many, attribute_one, MAX_BULK};
use crate::params::{non_empty, parse_execution_id, parse_provider};
use crate::AppState;

/// Largest attribution form read (500 ids of 255 characters, percent-encoded, fit).
const MAX_FORM_BYTES: usize = 1024 * 1024;

/// The notice of a page after an attribution form, read back from its query string.
#[derive(Debug, Default, Deserialize)]
pub struct Notice {
    /// How many calls were attributed (bulk), or `set`/`cleared` (one call).
    pub saved: Option<String>,
    /// How many checked calls were no longer found.
    pub missing: Option<String>,
}

/// `GET /unattributed`: the unattributed calls of a date range, each with a checkbox, in one
/// form with a campaign picker.
pub async fn unattributed(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let query: ListQuery = parse_query(&req)?;
    let notice: Notice = parse_query(&req)?;
    let filters = unattributed_filters(&query)?;
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
    let saved = notice
        .saved
        .as_deref()
        .and_then(|n| n.parse::<usize>().ok());
    let missing = notice
        .missing
        .as_deref()
        .and_then(|n| n.parse::<usize>().ok())
        .filter(|n| *n > 0);
    let action = with_query(
        "/unattributed",
        &form_pairs(&filters, query.cursor.as_deref()),
    );
    let body = html! {
        h1 { "Unattributed calls" }
        @if let Some(saved) = saved {
            p.notice role="status" {
                "Saved: " (saved) (if saved == 1 { " call" } else { " calls" }) " attributed. "
                "The list is updating; a call leaves it once the change is processed (reload in a moment)."
                @if let Some(missing) = missing { " " (missing) " of the selected calls were not found." }
            }
        }
        section aria-labelledby="filters-title" {
            h2.sr-only id="filters-title" { "Dates" }
            form.filters method="get" action="/unattributed" {
                (date_fields(&filters.range))
                div.actions {
                    button type="submit" { "Apply" }
                    a href="/unattributed" { "Reset" }
                }
            }
        }
        section aria-labelledby="list-title" {
            h2 id="list-title" {
                "Calls without a campaign from " (filters.range.from_field()) " to " (filters.range.to_field()) " (UTC)"
            }
            @if campaigns.is_empty() {
                p.notice { "No campaigns yet: create one with " code { "POST /v1/campaigns" } " to attribute calls to it." }
                (calls_table(&calls.items, TableOptions { campaigns: &campaigns, filters: Some(&filters), select: false }))
            } @else if calls.items.is_empty() {
                (calls_table(&calls.items, TableOptions { campaigns: &campaigns, filters: Some(&filters), select: true }))
            } @else {
                form.attribute method="post" action=(action) {
                    input type="hidden" name="csrf" value=(session.csrf());
                    (calls_table(&calls.items, TableOptions { campaigns: &campaigns, filters: Some(&filters), select: true }))
                    div.actions {
                        div.field {
                            label for="campaign_id" { "Attribute the selected calls to" }
                            select id="campaign_id" name="campaign_id" required {
                                option value="" { "Pick a campaign" }
                                (campaigns.options(None))
                            }
                        }
                        button type="submit" { "Attribute" }
                    }
                }
            }
            (pager("/unattributed", &filters, &calls, query.cursor.as_deref()))
        }
    };
    Ok(page(
        &session,
        Nav::Unattributed,
        "Unattributed calls",
        body,
    ))
}

/// The list's filters with only the unattributed calls; its pairs omit `attributed` (the page
/// itself says it).
fn unattributed_filters(query: &ListQuery) -> Result<ListFilters, PageError> {
    let query = ListQuery {
        campaign_id: None,
        attributed: None,
        ..query.clone()
    };
    let mut filters = query.filters()?;
    filters.filter.attributed = Some(false);
    Ok(filters)
}

/// The page's filters and cursor: the form posts to them, so the answer leads back to the
/// same page.
fn form_pairs<'a>(filters: &'a ListFilters, cursor: Option<&'a str>) -> Vec<(&'a str, &'a str)> {
    let mut pairs: Vec<(&str, &str)> = filters
        .pairs
        .iter()
        .map(|(k, v)| (*k, v.as_str()))
        .collect();
    if let Some(cursor) = non_empty(cursor) {
        pairs.push(("cursor", cursor));
    }
    pairs
}

/// The fields of an attribution form, read from its body (`execution_id` repeats).
#[derive(Debug, Default)]
struct AttributionForm {
    csrf: Option<String>,
    campaign_id: Option<String>,
    action: Option<String>,
    execution_ids: Vec<String>,
}

impl AttributionForm {
    async fn read(payload: web::Payload) -> Result<Self, PageError> {
        Self::parse(&crate::body::read(payload, MAX_FORM_BYTES).await?)
    }

    fn parse(body: &[u8]) -> Result<Self, PageError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(body)
            .map_err(|_| PageError::Invalid("The form could not be read."))?;
        let mut form = Self::default();
        for (name, value) in pairs {
            match name.as_str() {
                "csrf" => form.csrf = Some(value),
                "campaign_id" => form.campaign_id = Some(value),
                "action" => form.action = Some(value),
                "execution_id" => form.execution_ids.push(value),
                _ => {}
            }
        }
        Ok(form)
    }

    /// The picked campaign: a campaign id, or a refusal naming what to do.
    fn campaign(&self) -> Result<Uuid, PageError> {
        let picked = non_empty(self.campaign_id.as_deref())
            .ok_or(PageError::Invalid("Pick a campaign first."))?;
        // Not a campaign id: no campaign of this account, like another account's.
        Uuid::parse_str(picked).map_err(|_| PageError::Api(crate::error::ApiError::NotFound))
    }
}

/// `POST /unattributed`: attributes the checked calls to the picked campaign.
pub async fn attribute_bulk(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form = AttributionForm::read(payload).await?;
    session.check_csrf(form.csrf.as_deref())?;
    let query: ListQuery = parse_query(&req)?;
    let filters = unattributed_filters(&query)?;
    let campaign = form.campaign()?;
    let mut ids = form.execution_ids;
    ids.retain(|id| !id.trim().is_empty());
    ids.sort_unstable();
    ids.dedup();
    if ids.is_empty() {
        return Err(PageError::Invalid("Select at least one call to attribute."));
    }
    if ids.len() > MAX_BULK {
        return Err(PageError::Api(crate::error::ApiError::TooMany {
            field: "execution_ids",
            got: ids.len(),
            limit: MAX_BULK,
        }));
    }
    let answer = attribute_many(&state, session.tenant(), &ids, Some(campaign)).await?;
    let (saved, missing) = (
        answer.attributed.to_string(),
        answer.not_found.len().to_string(),
    );
    let mut pairs = form_pairs(&filters, query.cursor.as_deref());
    pairs.extend([("saved", saved.as_str()), ("missing", missing.as_str())]);
    Ok(see_other(&with_query("/unattributed", &pairs)).finish())
}

/// `POST /calls/{execution_id}/attribution`: attributes one call to the picked campaign, or
/// (`action=clear`) clears its manual attribution so the automatic rules apply again.
pub async fn attribute_call(
    state: web::Data<AppState>,
    session: Session,
    execution_id: web::Path<String>,
    query: web::Query<crate::calls::CallQuery>,
    payload: web::Payload,
) -> Result<HttpResponse, PageError> {
    let form = AttributionForm::read(payload).await?;
    session.check_csrf(form.csrf.as_deref())?;
    let id = parse_execution_id(execution_id.into_inner())?;
    let provider = parse_provider(query.provider.as_deref())?;
    let (campaign, saved) = match form.action.as_deref() {
        Some("clear") => (None, "cleared"),
        _ => (Some(form.campaign()?), "set"),
    };
    attribute_one(&state, session.tenant(), &id, provider, campaign).await?;
    let mut back_query = vec![("saved", saved)];
    if let Some(provider) = provider {
        back_query.insert(0, ("provider", provider.as_str()));
    }
    let back = with_query(&call_href(&id), &back_query);
    Ok(see_other(&format!("{back}#campaign")).finish())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_form_keeps_every_checked_call() {
        let form = AttributionForm::parse(
            b"csrf=t&campaign_id=&execution_id=a&execution_id=b%2Fc&other=x&execution_id=a",
        );
        let form = form.ok().unwrap_or_default();
        assert_eq!(form.csrf.as_deref(), Some("t"));
        assert_eq!(form.execution_ids, ["a", "b/c", "a"]);
        assert!(matches!(form.campaign(), Err(PageError::Invalid(_))));
        let form = AttributionForm::parse(b"campaign_id=nope")
            .ok()
            .unwrap_or_default();
        assert!(matches!(form.campaign(), Err(PageError::Api(_))));
    }
}
