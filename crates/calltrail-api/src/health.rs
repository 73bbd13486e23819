//! `GET /healthz` (the process runs) and `GET /readyz` (both databases answer in time).

use actix_web::{web, HttpResponse};
use serde::Serialize;

use crate::error::{ApiError, ErrorBody};
use crate::replica::ReplicaHealth;
use crate::AppState;

/// Body of a healthy answer.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct HealthBody {
    /// `ok` or `ready`.
    #[schema(example = "ok")]
    pub status: String,
    /// `/readyz` with `CALLTRAIL_READ_DATABASE_URL` set: the read replica's state and where
    /// reads go. A replica that is down or lagging does not make the node unready (the
    /// primary serves every route), so this is a detail, never a 503.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replica: Option<ReplicaHealth>,
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
        replica: None,
    })
}

/// Readiness: 200 when the event log and the read store (both on the primary) answer within
/// the readiness timeout; with a read replica, the body also says how the replica is.
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses(
        (status = 200, description = "The database answers (with a read replica: its state and where reads go, in `replica`)", body = HealthBody),
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
            replica: state.replica().map(crate::ReadReplica::health),
        })),
        Ok(Ok(Err(err)) | Err(err)) => Err(err),
        Err(_) => Err(ApiError::Unavailable(
            format!("no answer within {} ms", timeout.as_millis()).into(),
        )),
    }
}
