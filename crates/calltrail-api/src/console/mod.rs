//! The web console (CONTRACT §7): server-rendered HTML at `/` from the same process, a client
//! of the same query layer as the JSON API (every page reads through [`AppState`]'s store and
//! the API's error table). Works without JavaScript; usable from 375 px wide.
//!
//! Modules:
//! - [`session`]: sign-in with an API key, session cookie, CSRF tokens, sign-out.
//! - [`page`]: the page shell, security headers (CSP), [`page::PageError`] (errors as pages).
//! - [`dashboard`]: `GET /`: KPIs for a UTC date range, calls per day, connected vs missed.
//! - [`calls`]: `GET /calls`: filters (campaign or unattributed too), sort, pagination, a
//!   Campaign column; `GET /calls.csv`: the same filters through the API's streamed export.
//! - [`call`]: `GET /calls/{execution_id}`: summary, campaign and its attribution form,
//!   timeline, transcript, analysis, raw payloads.
//! - [`attribution`]: `GET /unattributed` (bulk attribution form), `POST /unattributed`,
//!   `POST /calls/{execution_id}/attribution`: through the JSON API's attribution path.
//! - [`campaigns`]: `GET /campaigns`: batch ids, recipients, calls, connected calls; the
//!   campaign names and picker the other pages share.
//! - [`contacts`]: `GET /contacts`, `GET /contacts/{phone}`: lead tags, score history.
//! - [`credits`]: `GET /credits`: balance and ledger.
//! - [`charts`]: server-rendered SVG charts.
//! - [`dates`]: UTC date ranges, end inclusive, the last 7 days by default.
//! - [`format`]: times, durations, percentages, badges, links.
//! - [`assets`]: the stylesheet, script and icon, embedded in the binary.

pub mod assets;
pub mod attribution;
pub mod call;
pub mod calls;
pub mod campaigns;
pub mod charts;
pub mod contacts;
pub mod credits;
pub mod dashboard;
pub mod dates;
pub mod format;
pub mod page;
pub mod session;

use actix_web::{web, HttpRequest, Route};
use serde::de::DeserializeOwned;

use crate::error::ApiError;
use crate::metrics::RouteLabel;

pub use page::PageError;

/// The console's routes (registered before the JSON API's; none overlaps `/v1/…`).
pub fn routes(cfg: &mut web::ServiceConfig) {
    let resource = |path: &'static str, routes: Vec<Route>| {
        routes.into_iter().fold(
            web::resource(path).app_data(RouteLabel(path)),
            actix_web::Resource::route,
        )
    };
    cfg.service(resource("/", vec![web::get().to(dashboard::dashboard)]))
        .service(resource(
            "/signin",
            vec![
                web::get().to(session::sign_in_page),
                web::post().to(session::sign_in),
            ],
        ))
        .service(resource(
            "/signout",
            vec![web::post().to(session::sign_out)],
        ))
        .service(resource("/calls", vec![web::get().to(calls::list)]))
        .service(resource("/calls.csv", vec![web::get().to(calls::csv)]))
        .service(resource(
            "/calls/{execution_id}",
            vec![web::get().to(call::detail)],
        ))
        .service(resource(
            "/calls/{execution_id}/attribution",
            vec![web::post().to(attribution::attribute_call)],
        ))
        .service(resource(
            "/unattributed",
            vec![
                web::get().to(attribution::unattributed),
                web::post().to(attribution::attribute_bulk),
            ],
        ))
        .service(resource("/campaigns", vec![web::get().to(campaigns::list)]))
        .service(resource("/contacts", vec![web::get().to(contacts::list)]))
        .service(resource(
            "/contacts/{phone}",
            vec![web::get().to(contacts::detail)],
        ))
        .service(resource("/credits", vec![web::get().to(credits::ledger)]))
        .service(resource(
            "/assets/{name}",
            vec![web::get().to(assets::serve)],
        ));
}

/// Reads a page's query string; one that does not fit is `invalid_query`, shown as a page.
pub(crate) fn parse_query<T: DeserializeOwned>(req: &HttpRequest) -> Result<T, PageError> {
    serde_urlencoded::from_str(req.query_string())
        .map_err(|e| PageError::Api(ApiError::InvalidQuery(e.to_string())))
}

/// Whether a request for an unknown path should get the HTML 404 page rather than the JSON
/// one: a browser asking for a page outside `/v1/`.
pub(crate) fn wants_html(req: &HttpRequest) -> bool {
    !req.path().starts_with("/v1/")
        && req
            .headers()
            .get(actix_web::http::header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|accept| accept.contains("text/html"))
}
