//! `GET /contacts` (with each contact's lead tag and score) and `GET /contacts/{phone}` (its
//! complete analysis, score history, and recent calls).

use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_projections::CallFilter;
use maud::html;
use serde::Deserialize;

use super::call::analysis_facts;
use super::calls::{calls_table, TableOptions};
use super::campaigns::Campaigns;
use super::format::{self, contact_href, dash, lead_tag, opt_text, with_query};
use super::page::{page, Nav, PageError};
use super::session::Session;
use super::{charts, parse_query};
use crate::error::ApiError;
use crate::params::{non_empty, parse_phone};
use crate::AppState;

/// Contacts per page.
const PAGE_SIZE: i64 = 50;
/// Calls shown on a contact's page.
const RECENT_CALLS: i64 = 20;

/// The contacts list's query.
#[derive(Debug, Default, Deserialize)]
pub struct ContactsQuery {
    /// Where the page starts.
    pub cursor: Option<String>,
}

/// `GET /contacts`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let query: ContactsQuery = parse_query(&req)?;
    let tenant = session.tenant();
    let cursor = non_empty(query.cursor.as_deref()).map(str::to_owned);
    let (contacts, standings) = state
        .read(move |store| async move {
            let contacts = store
                .list_contacts(tenant, cursor.as_deref(), PAGE_SIZE)
                .await?;
            let phones: Vec<String> = contacts
                .items
                .iter()
                .map(|c| c.phone_number.clone())
                .collect();
            let standings = store.lead_standings(tenant, &phones).await?;
            Ok((contacts, standings))
        })
        .await?;
    let body = html! {
        h1 { "Contacts" }
        section aria-labelledby="contacts-title" {
            h2.sr-only id="contacts-title" { "All contacts, newest first" }
            @if contacts.items.is_empty() {
                p.notice { "No contacts yet: a contact appears with its first call." }
            } @else {
                table.rows {
                    thead { tr {
                        th scope="col" { "Phone" } th scope="col" { "Name" } th scope="col" { "E-mail" }
                        th scope="col" { "Company" } th scope="col" { "Lead" } th.num scope="col" { "Score" }
                        th.num scope="col" { "Not connected" } th scope="col" { "Since (UTC)" }
                    } }
                    tbody {
                        @for contact in &contacts.items {
                            @let href = contact_href(&contact.phone_number);
                            @let standing = standings.get(&contact.phone_number);
                            tr data-href=(href) {
                                td data-label="Phone" { a href=(href) { (contact.phone_number) } }
                                td data-label="Name" { (opt_text(contact.name.as_deref())) }
                                td data-label="E-mail" { (opt_text(contact.email.as_deref())) }
                                td data-label="Company" { (opt_text(contact.company.as_deref())) }
                                td data-label="Lead" {
                                    @match standing { Some(s) => (lead_tag(&s.lead_status_tag)), None => (dash()) }
                                }
                                td.num data-label="Score" {
                                    @match standing { Some(s) => (s.total_score), None => (dash()) }
                                }
                                td.num data-label="Not connected" { (contact.not_connected) }
                                td data-label="Since" { (format::time(contact.created_at)) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if non_empty(query.cursor.as_deref()).is_some() {
                    a href="/contacts" { "First page" }
                }
                @if let Some(next) = &contacts.next_cursor {
                    a href=(with_query("/contacts", &[("cursor", next)])) rel="next" { "Next page" }
                }
            }
        }
    };
    Ok(page(&session, Nav::Contacts, "Contacts", body))
}

/// `GET /contacts/{phone}`.
pub async fn detail(
    state: web::Data<AppState>,
    session: Session,
    phone: web::Path<String>,
) -> Result<HttpResponse, PageError> {
    let phone = parse_phone(&phone)
        .map_err(|_| ApiError::NotFound)?
        .as_str()
        .to_owned();
    let tenant = session.tenant();
    let ((contact, analysis, history, calls), campaigns) = tokio::try_join!(
        state.read(move |store| async move {
            let filter = CallFilter {
                phone: Some(phone.clone()),
                ..CallFilter::default()
            };
            tokio::try_join!(
                store.contact_by_phone(tenant, &phone),
                store.contact_analysis(tenant, &phone),
                store.score_history(tenant, &phone),
                store.list_calls(tenant, &filter, None, RECENT_CALLS),
            )
        }),
        Campaigns::load(&state, tenant),
    )?;
    let contact = contact.ok_or(ApiError::NotFound)?;
    let title = format!("Contact {}", contact.phone_number);
    let since = contact.created_at.format("%Y-%m-%d").to_string();
    let all_calls = with_query(
        "/calls",
        &[("phone", &contact.phone_number), ("from", &since)],
    );
    let body = html! {
        h1 { (title) }
        p { a href="/contacts" { "← All contacts" } }
        section aria-labelledby="details" {
            h2 id="details" { "Details" }
            dl.facts {
                dt { "Name" } dd { (opt_text(contact.name.as_deref())) }
                dt { "E-mail" } dd { (opt_text(contact.email.as_deref())) }
                dt { "Company" } dd { (opt_text(contact.company.as_deref())) }
                dt { "Not connected" } dd { (contact.not_connected) " calls" }
                dt { "Since" } dd { (format::time(contact.created_at)) }
            }
        }
        section aria-labelledby="lead" {
            h2 id="lead" { "Lead" }
            @match &analysis {
                Some(a) => {
                    p { "Over " (a.previous_calls_analyzed) " analysed calls." }
                    (analysis_facts(a))
                }
                None => p { "No analysed call yet." },
            }
        }
        section aria-labelledby="history" {
            h2 id="history" { "Score history" }
            @if history.is_empty() {
                p { "No analysed call yet." }
            } @else {
                (charts::score_history(&history))
                table.rows {
                    thead { tr { th scope="col" { "Analysed (UTC)" } th scope="col" { "Call" } th.num scope="col" { "Score" } th scope="col" { "Lead" } } }
                    tbody {
                        @for point in history.iter().rev() {
                            tr {
                                td data-label="Analysed" { (format::time(point.analysis_timestamp)) }
                                td data-label="Call" { a href=(format::provider_call_href(&point.provider, &point.execution_id)) { (point.execution_id) } }
                                td.num data-label="Score" { (point.total_score) }
                                td data-label="Lead" { (lead_tag(&point.lead_status_tag)) }
                            }
                        }
                    }
                }
            }
        }
        section aria-labelledby="recent" {
            h2 id="recent" { "Recent calls" }
            (calls_table(&calls.items, TableOptions { campaigns: &campaigns, filters: None, select: false }))
            @if calls.next_cursor.is_some() {
                p { a href=(all_calls) { "All calls of this contact" } }
            }
        }
    };
    Ok(page(&session, Nav::Contacts, &title, body))
}
