//! `GET /v1/calls/{execution_id}/analysis` and `GET /v1/contacts/{phone}/analysis`: a call's
//! individual lead analysis and a contact's complete one.

use actix_web::{web, HttpResponse};
use calltrail_projections::views::LeadAnalyticsView;

use crate::auth::Tenant;
use crate::calls::CallQuery;
use crate::error::{ApiError, ErrorBody};
use crate::params::{parse_execution_id, parse_phone};
use crate::AppState;

/// A call's individual lead analysis.
#[utoipa::path(
    get,
    path = "/v1/calls/{execution_id}/analysis",
    tag = "analysis",
    params(("execution_id" = String, Path, description = "The provider's execution id (call id)", example = "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7"), CallQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The `individual` LeadAnalytics (`execution_id` and `provider` set)", body = LeadAnalyticsView),
        (status = 400, description = "`invalid_provider`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`call_not_found`: no such call for this tenant (or of this `provider`); `analysis_not_available`: the call is not analysed yet (the message says its status)", body = ErrorBody),
        (status = 409, description = "`ambiguous_call_id`: calls of several providers have this id (the message names them); add `?provider=`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn call_analysis(
    state: web::Data<AppState>,
    tenant: Tenant,
    execution_id: web::Path<String>,
    query: web::Query<CallQuery>,
) -> Result<HttpResponse, ApiError> {
    let execution_id = parse_execution_id(execution_id.into_inner())?;
    let provider =
        crate::calls::resolve_provider(&state, tenant, query.provider()?, &execution_id).await?;
    let (id, p) = (execution_id.clone(), provider.clone());
    let analysis = state
        .read(|store| async move { store.call_analysis(tenant.0, &p, &id).await })
        .await?;
    match analysis {
        Some(analysis) => Ok(HttpResponse::Ok().json(analysis)),
        None => Err(
            crate::calls::missing(&state, tenant, provider, execution_id, |status| {
                ApiError::AnalysisNotAvailable { status }
            })
            .await,
        ),
    }
}

/// A contact's complete lead analysis, over its analysed calls.
#[utoipa::path(
    get,
    path = "/v1/contacts/{phone}/analysis",
    tag = "analysis",
    params(("phone" = String, Path, description = "The contact's number, international (`+` or `00` and 8–15 digits; spaces, `-`, `.`, `(`, `)` are ignored), e.g. `+14155550132` or `%2B14155550132`")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The `complete` LeadAnalytics (`latest_execution_id` set)", body = LeadAnalyticsView),
        (status = 400, description = "`invalid_phone`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no analysed call of this contact for this tenant", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn contact_analysis(
    state: web::Data<AppState>,
    tenant: Tenant,
    phone: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let phone = parse_phone(&phone)?;
    let analysis = state
        .read(|store| async move { store.contact_analysis(tenant.0, phone.as_str()).await })
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(analysis))
}
