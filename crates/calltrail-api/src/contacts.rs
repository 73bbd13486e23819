//! `GET /v1/contacts`: the tenant's contacts, keyset-paginated.

use actix_web::{web, HttpResponse};
use calltrail_projections::views::{ContactView, Page};
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::params::{non_empty, parse_limit};
use crate::AppState;

/// Query of `GET /v1/contacts`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct ContactsQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged: an opaque value this API issued (any
    /// other answers 400 `invalid_cursor`).
    pub cursor: Option<String>,
}

/// Lists the tenant's contacts, newest first.
#[utoipa::path(
    get,
    path = "/v1/contacts",
    tag = "contacts",
    params(ContactsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of contacts", body = Page<ContactView>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor` (also a cursor of another list), `unknown_parameter` or `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn list_contacts(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<ContactsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = non_empty(query.cursor.as_deref()).map(str::to_owned);
    let page = state
        .read(|store| async move {
            store
                .list_contacts(tenant.0, cursor.as_deref(), limit)
                .await
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}
