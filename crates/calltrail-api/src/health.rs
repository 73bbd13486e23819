//! `GET /healthz` (the process runs) and `GET /readyz` (both databases answer in time).

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// Body of a healthy answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: String,
}

/// Liveness: 200 while the process runs.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process runs", body = HealthBody))
)]
pub async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(HealthBody {
        status: "ok".to_owned(),
    })
}

/// Readiness: 200 when the event log and the read store both answer within the readiness timeout.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers", body = HealthBody),
        (status = 503, description = "`unavailable`: the database does not answer in time", body = ErrorBody),
    )
)]
pub async fn readyz(state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    let timeout = state.config().readiness_timeout;
    let (log, store) = (state.log().clone(), state.store().clone());
    let pings = async move {
        let (log, store) = tokio::join!(log.ping(), store.ping());
        log.map_err(|err| ApiError::Unavailable(Box::new(err)))?;
        store.map_err(|err| ApiError::Unavailable(Box::new(err)))?;
        Ok::<(), ApiError>(())
    };
    match tokio::time::timeout(timeout, state.on_db_runtime(pings)).await {
        Ok(Ok(Ok(()))) => Ok(HttpResponse::Ok().json(HealthBody {
            status: "ready".to_owned(),
        })),
        Ok(Ok(Err(err)) | Err(err)) => Err(err),
        Err(_) => Err(ApiError::Unavailable(
            format!("no answer within {} ms", timeout.as_millis()).into(),
        )),
    }
}
