//! `GET /v1/reconciliation`: the tenant's last reconciliation run per provider (CONTRACT §6).

use actix_web::{web, HttpResponse};
use calltrail_projections::reconciliation::ReconcileRun;
use chrono::{DateTime, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The last reconciliation run of each provider the tenant has calls reconciled for.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReconciliationView {
    /// One entry per provider, by provider name; empty before the first run.
    pub providers: Vec<ProviderRunView>,
}

/// One provider's last run. The counts are calls: `checked = appended + unchanged + errors`.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProviderRunView {
    /// The provider (`bolna`, `vapi`, `elevenlabs`, `twilio`, `retell`).
    pub provider: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Calls checked against the provider's API.
    pub checked: i64,
    /// Calls that got at least one status the webhooks had not brought.
    pub appended: i64,
    /// Calls whose log already had what the API shows.
    pub unchanged: i64,
    /// Calls that could not be fetched or read (refused key, unknown call, failures, garbage).
    pub errors: i64,
    /// The run's last error, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

impl From<ReconcileRun> for ProviderRunView {
    fn from(run: ReconcileRun) -> Self {
        Self {
            provider: run.provider,
            started_at: run.started_at,
            finished_at: run.finished_at,
            checked: run.checked,
            appended: run.appended,
            unchanged: run.unchanged,
            errors: run.errors,
            last_error: run.last_error,
        }
    }
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
    Ok(HttpResponse::Ok().json(ReconciliationView {
        providers: runs.into_iter().map(ProviderRunView::from).collect(),
    }))
}
