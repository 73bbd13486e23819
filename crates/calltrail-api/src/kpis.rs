//! `GET /v1/kpis`: call and lead KPIs over a time window.

use actix_web::{web, HttpResponse};
use calltrail_projections::kpis::KpisView;
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::params::parse_window;
use crate::AppState;

/// Query of `GET /v1/kpis`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct KpisQuery {
    /// Calls created at or after this time (RFC 3339, or `YYYY-MM-DD` for midnight UTC; a
    /// date-time without a zone is UTC); unbounded when absent.
    pub from: Option<String>,
    /// Calls created before this time (RFC 3339, or `YYYY-MM-DD` for midnight UTC; a
    /// date-time without a zone is UTC); unbounded when absent.
    pub to: Option<String>,
}

/// KPIs over the tenant's calls created in `[from, to)`.
#[utoipa::path(
    get,
    path = "/v1/kpis",
    tag = "calls",
    params(KpisQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "KPIs over the window", body = KpisView),
        (status = 400, description = "`invalid_time`, `invalid_range` (`from` later than `to`), `unknown_parameter` or `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn kpis(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<KpisQuery>,
) -> Result<HttpResponse, ApiError> {
    let (from, to) = parse_window(query.from.as_deref(), query.to.as_deref())?;
    let kpis = state
        .read(|store| async move { store.kpis(tenant.0, from, to).await })
        .await?;
    Ok(HttpResponse::Ok().json(kpis))
}
