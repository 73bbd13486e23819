//! `GET /credits`: the balance and the credits ledger (grants, usage, adjustments), newest first.

use actix_web::{web, HttpResponse};
use calltrail_projections::queries::MAX_CREDIT_TRANSACTIONS;
use maud::html;

use super::format::{self, call_href, dash, provider_call_href, signed};
use super::page::{page, Nav, PageError};
use super::session::Session;
use crate::AppState;

/// `GET /credits`.
pub async fn ledger(
    state: web::Data<AppState>,
    session: Session,
) -> Result<HttpResponse, PageError> {
    let tenant = session.tenant();
    let credits = state
        .read(move |store| async move { store.credits(tenant).await })
        .await?;
    let shown = i64::try_from(credits.transactions.len()).unwrap_or(i64::MAX);
    let body = html! {
        h1 { "Credits" }
        section aria-labelledby="balance" {
            h2 id="balance" { "Balance" }
            p.kpi-big data-kpi="balance" { strong { (credits.balance) } " credits" }
            @if credits.balance < 0 {
                p.alert { "The balance is below zero: calls already made were charged anyway." }
            }
        }
        section aria-labelledby="ledger" {
            h2 id="ledger" { "Ledger" }
            @if credits.transactions.is_empty() {
                p.notice { "No transactions yet." }
            } @else {
                @if shown >= MAX_CREDIT_TRANSACTIONS {
                    p.notice { "Showing the newest " (MAX_CREDIT_TRANSACTIONS) " transactions." }
                }
                table.rows {
                    thead { tr {
                        th scope="col" { "Date (UTC)" } th scope="col" { "Type" }
                        th.num scope="col" { "Amount" } th.num scope="col" { "Balance after" }
                        th scope="col" { "Call" }
                    } }
                    tbody {
                        @for t in &credits.transactions {
                            tr {
                                td data-label="Date" { (format::time(t.created_at)) }
                                td data-label="Type" { (t.kind) }
                                td.num data-label="Amount" { (signed(t.amount)) }
                                td.num data-label="Balance after" { (t.balance_after) }
                                td data-label="Call" {
                                    @match (&t.call_id, &t.provider) {
                                        (Some(id), Some(provider)) => a href=(provider_call_href(provider, id)) { (id) },
                                        (Some(id), None) => a href=(call_href(id)) { (id) },
                                        (None, _) => (dash()),
                                    }
                                }
                            }
                        }
                    }
                }
            }
        }
    };
    Ok(page(&session, Nav::Credits, "Credits", body))
}
