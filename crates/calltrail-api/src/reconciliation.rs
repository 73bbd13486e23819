//! `GET /v1/reconciliation`: the tenant's last reconciliation run per provider (CONTRACT §6).

use actix_web::{web, HttpResponse};
use calltrail_projections::reconciliation::ReconcileRun;
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The last reconciliation run of each provider the tenant has calls reconciled for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    /// One entry per provider, by provider name; empty before the first run.
    pub providers: Vec<ReconcileRun>,
}

/// The tenant's last reconciliation run per provider.
#[utoipa::path(
    get,
    path = "/v1/reconciliation",
    tag = "reconciliation",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The last run per provider", body = ReconciliationView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn reconciliation(
    state: web::Data<AppState>,
    tenant: Tenant,
) -> Result<HttpResponse, ApiError> {
    let runs = state
        .read(|store| async move { store.reconcile_runs(tenant.0).await })
        .await?;
    Ok(HttpResponse::Ok().json(ReconciliationView { providers: runs }))
}
