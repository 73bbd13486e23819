//! `GET /v1/credits`: the tenant's balance and credit transactions.

use actix_web::{web, HttpResponse};
use calltrail_projections::views::CreditsView;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::AppState;

/// The tenant's balance and transactions, newest first.
#[utoipa::path(
    get,
    path = "/v1/credits",
    tag = "credits",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Balance and transactions (`amount` signed: grants positive, charges negative)", body = CreditsView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn credits(state: web::Data<AppState>, tenant: Tenant) -> Result<HttpResponse, ApiError> {
    let credits = state
        .read(|store| async move { store.credits(tenant.0).await })
        .await?;
    Ok(HttpResponse::Ok().json(credits))
}
