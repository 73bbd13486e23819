//! `GET /campaigns`: the tenant's campaigns, newest first, with their batch ids, recipients,
//! calls and connected calls; and [`Campaigns`], the names and picker the calls list, the
//! unattributed page and the call page share.

use std::collections::HashMap;

use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup};
use serde::Deserialize;
use uuid::Uuid;

use super::format::{self, dash, with_query};
use super::page::{page, Nav, PageError};
use super::parse_query;
use super::session::Session;
use crate::error::ApiError;
use crate::params::non_empty;
use crate::AppState;

/// Campaigns per page of `/campaigns`.
const PAGE_SIZE: i64 = 50;
/// Most campaigns a picker lists and the calls list names (the query layer's largest page).
pub const PICKER_LIMIT: i64 = 1000;
/// The first day of the "all dates" link to a campaign's calls (the list always has a range).
pub const ALL_DATES_FROM: &str = "1970-01-01";

/// The tenant's campaigns (the newest [`PICKER_LIMIT`]) by id: names for the calls list,
/// options for the attribution forms.
#[derive(Debug, Default)]
pub struct Campaigns {
    /// Id and name, newest first.
    items: Vec<(Uuid, String)>,
    names: HashMap<Uuid, usize>,
}

impl Campaigns {
    /// Reads the tenant's campaigns.
    pub async fn load(state: &AppState, tenant: Uuid) -> Result<Self, ApiError> {
        let items = state
            .read(move |store| async move { store.campaign_names(tenant, PICKER_LIMIT).await })
            .await?;
        Ok(Self::from_names(items))
    }

    fn from_names(items: Vec<(Uuid, String)>) -> Self {
        let names = items
            .iter()
            .enumerate()
            .map(|(i, (id, _))| (*id, i))
            .collect();
        Self { items, names }
    }

    /// Whether the tenant has no campaign.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// A campaign's name (`None` for one beyond the newest [`PICKER_LIMIT`]).
    pub fn name(&self, id: Uuid) -> Option<&str> {
        self.names.get(&id).map(|&i| self.items[i].1.as_str())
    }

    /// The `<option>`s of the campaigns, `selected` marked.
    pub fn options(&self, selected: Option<Uuid>) -> Markup {
        html! {
            @for (id, name) in &self.items {
                option value=(id) selected[selected == Some(*id)] { (name) }
            }
        }
    }

    /// A campaign as a link (`href`) with its name, or its id when the name is not loaded.
    pub fn link(&self, id: Uuid, href: &str) -> Markup {
        html! {
            @match self.name(id) {
                Some(name) => a href=(href) { (name) },
                None => a href=(href) { "Campaign " span.id { (id) } },
            }
        }
    }
}

/// The calls of a campaign, of all dates.
pub fn calls_href(id: Uuid) -> String {
    with_query(
        "/calls",
        &[("from", ALL_DATES_FROM), ("campaign_id", &id.to_string())],
    )
}

/// The campaigns list's query.
#[derive(Debug, Default, Deserialize)]
pub struct CampaignsQuery {
    /// Where the page starts.
    pub cursor: Option<String>,
}

/// `GET /campaigns`.
pub async fn list(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let query: CampaignsQuery = parse_query(&req)?;
    let tenant = session.tenant();
    let cursor = non_empty(query.cursor.as_deref()).map(str::to_owned);
    let campaigns = state
        .read(move |store| async move {
            store
                .list_campaigns(tenant, cursor.as_deref(), PAGE_SIZE)
                .await
        })
        .await?;
    let body = html! {
        h1 { "Campaigns" }
        section aria-labelledby="campaigns-title" {
            h2.sr-only id="campaigns-title" { "All campaigns, newest first" }
            @if campaigns.items.is_empty() {
                p.notice { "No campaigns yet: create one with " code { "POST /v1/campaigns" } "." }
            } @else {
                table.rows {
                    thead { tr {
                        th scope="col" { "Name" }
                        th scope="col" { "Batch ids" }
                        th.num scope="col" { "Recipients" }
                        th.num scope="col" { "Calls" }
                        th.num scope="col" { "Connected calls" }
                        th scope="col" { "Created (UTC)" }
                    } }
                    tbody {
                        @for c in &campaigns.items {
                            @let href = calls_href(c.campaign_id);
                            tr data-href=(href) {
                                td data-label="Name" {
                                    a href=(href) aria-label=(format!("Calls of campaign {}", c.name)) { (c.name) }
                                }
                                td data-label="Batch ids" {
                                    @if c.provider_batch_ids.is_empty() { (dash()) }
                                    @else { (c.provider_batch_ids.join(", ")) }
                                }
                                td.num data-label="Recipients" { (c.recipients) }
                                td.num data-label="Calls" { (c.calls) }
                                td.num data-label="Connected calls" { (c.connected_calls) }
                                td data-label="Created" { (format::time(c.created_at)) }
                            }
                        }
                    }
                }
            }
            nav.pager aria-label="Pages" {
                @if non_empty(query.cursor.as_deref()).is_some() {
                    a href="/campaigns" { "First page" }
                }
                @if let Some(next) = &campaigns.next_cursor {
                    a href=(with_query("/campaigns", &[("cursor", next)])) rel="next" { "Next page" }
                }
            }
        }
    };
    Ok(page(&session, Nav::Campaigns, "Campaigns", body))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_and_options_are_escaped_and_keep_the_order() {
        let (id_a, id_b) = (Uuid::new_v4(), Uuid::new_v4());
        let campaigns = Campaigns::from_names(vec![
            (id_a, "Spring <b>sale</b>".to_owned()),
            (id_b, "Renewals".to_owned()),
        ]);
        assert_eq!(campaigns.name(id_b), Some("Renewals"));
        assert_eq!(campaigns.name(Uuid::nil()), None);
        let options = campaigns.options(Some(id_b)).into_string();
        assert!(
            options.contains("Spring &lt;b&gt;sale&lt;/b&gt;"),
            "{options}"
        );
        assert!(
            options.find(&id_a.to_string()) < options.find(&id_b.to_string()),
            "{options}"
        );
        assert!(
            options.contains(&format!(r#"<option value="{id_b}" selected>"#)),
            "{options}"
        );
        let unknown = campaigns.link(Uuid::nil(), "/x").into_string();
        assert!(unknown.contains(&Uuid::nil().to_string()), "{unknown}");
    }
}
