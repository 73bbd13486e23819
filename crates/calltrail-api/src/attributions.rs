//! Manual attribution (CONTRACT §6): `POST /v1/calls/{execution_id}/attribution` and the bulk
//! `POST /v1/attributions` (at most 500 calls). Both record one `attribution.set` event and
//! honour `Idempotency-Key`: the same key with the same request answers what it answered the
//! first time; with another request it is refused.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_core::campaign::{AttributionSet, CallRef, ATTRIBUTION_SET};
use calltrail_core::Provider;
use calltrail_projections::idempotency::{request_hash, KeyState, StoredAnswer};
use chrono::Utc;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::body;
use crate::campaigns::{append, calltrail_event, campaign_exists};
use crate::error::{ApiError, ErrorBody};
use crate::params::parse_execution_id;
use crate::AppState;

/// Most calls one bulk attribution names.
pub const MAX_BULK: usize = 500;
/// Longest call id accepted.
const MAX_ID: usize = 255;

body::text_field!(CallIdText, MAX_ID);

/// `POST /v1/calls/{execution_id}/attribution` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallAttribution {
    /// The campaign, or `null` to clear the manual attribution (the automatic rules apply again).
    #[schema(required = true)]
    pub campaign_id: Option<Uuid>,
}

/// `POST /v1/attributions` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkAttribution {
    /// 1–500 call ids (the providers' execution ids).
    #[schema(value_type = Vec<CallIdText>, min_items = 1, max_items = 500)]
    pub execution_ids: Vec<String>,
    /// The campaign, or `null` to clear.
    #[schema(required = true)]
    pub campaign_id: Option<Uuid>,
}

/// What an attribution did.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AttributionAnswer {
    /// Calls attributed (or cleared).
    pub attributed: usize,
    /// Ids that name no call of this account.
    pub not_found: Vec<String>,
}

/// Query of the single attribution.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AttributionQuery {
    /// Only the call of this provider (when several providers used the same id).
    pub provider: Option<String>,
}

/// Attributes one call to a campaign by hand.
#[utoipa::path(
    post,
    path = "/v1/calls/{execution_id}/attribution",
    tag = "attribution",
    params(
        ("execution_id" = String, Path, description = "The provider's execution id"),
        ("Idempotency-Key" = Option<String>, Header, pattern = r"^[ \t]*[!-~]([ -~]{0,253}[!-~])?[ \t]*$", description = "1–255 printable ASCII characters; repeating the request with the same key answers the stored answer"),
        AttributionQuery,
    ),
    request_body = CallAttribution,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Recorded: `attributed` is 1", body = AttributionAnswer),
        (status = 400, description = "`invalid_json`, `unknown_field`, `invalid_field`, `invalid_idempotency_key` or `invalid_provider` (a `provider` not in the provider table, naming the ones it takes)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such call or campaign for this account", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`idempotency_key_reused`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn attribute_call(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    query: web::Query<AttributionQuery>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = parse_execution_id(path.into_inner())?;
    let provider = crate::params::parse_provider(query.provider.as_deref())?;
    let (bytes, object) = body::json_object(req.headers(), payload, &["campaign_id"]).await?;
    let key = body::idempotency_key(req.headers())?;
    let campaign = object.uuid_or_null("campaign_id")?;
    let route = format!("/v1/calls/{id}/attribution");
    idempotent(&state, tenant.0, key, &route, &bytes, || {
        attribute_one(&state, tenant.0, &id, provider, campaign)
    })
    .await
}

/// Attributes the call `id` of `tenant` (of `provider`, or of every provider that used the
/// id) to `campaign`, or clears its manual attribution (`None`); a call or campaign that is
/// not the tenant's is `NotFound`. The console's single attribution runs this too.
pub(crate) async fn attribute_one(
    state: &AppState,
    tenant: Uuid,
    id: &str,
    provider: Option<Provider>,
    campaign: Option<Uuid>,
) -> Result<AttributionAnswer, ApiError> {
    check_campaign(state, tenant, campaign).await?;
    let calls = find_calls(state, tenant, &[id.to_owned()]).await?;
    let calls: Vec<CallRef> = calls
        .into_iter()
        .filter(|c| provider.is_none_or(|p| p.as_str() == c.provider))
        .collect();
    if calls.is_empty() {
        return Err(ApiError::NotFound);
    }
    record(state, tenant, campaign, calls).await?;
    Ok(AttributionAnswer {
        attributed: 1,
        not_found: Vec::new(),
    })
}

/// Attributes up to 500 calls to a campaign by hand.
#[utoipa::path(
    post,
    path = "/v1/attributions",
    tag = "attribution",
    params(("Idempotency-Key" = Option<String>, Header, pattern = r"^[ \t]*[!-~]([ -~]{0,253}[!-~])?[ \t]*$", description = "1–255 printable ASCII characters; repeating the request with the same key answers the stored answer")),
    request_body = BulkAttribution,
    security(("api_key" = [])),
    responses(
        (status = 200, description = "How many calls were attributed and which ids name none", body = AttributionAnswer),
        (status = 400, description = "`invalid_json`, `unknown_field`, `invalid_field` or `invalid_idempotency_key`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found`: no such campaign for this account", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 422, description = "`too_many`: more than 500 `execution_ids`; `idempotency_key_reused`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn attribute_bulk(
    state: web::Data<AppState>,
    tenant: Tenant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (bytes, object) =
        body::json_object(req.headers(), payload, &["execution_ids", "campaign_id"]).await?;
    let key = body::idempotency_key(req.headers())?;
    let ids = object.strings("execution_ids", MAX_ID, MAX_BULK)?;
    if ids.is_empty() {
        return Err(ApiError::InvalidField {
            field: "execution_ids",
            problem: format!("must hold 1 to {MAX_BULK} call ids"),
        });
    }
    let campaign = object.uuid_or_null("campaign_id")?;
    idempotent(&state, tenant.0, key, "/v1/attributions", &bytes, || {
        attribute_many(&state, tenant.0, &ids, campaign)
    })
    .await
}

/// Attributes the calls of `tenant` named by `ids` (1 to [`MAX_BULK`], checked by the caller)
/// to `campaign`, or clears their manual attribution (`None`), in one event; ids that name
/// no call come back in `not_found`. The console's bulk attribution runs this too.
pub(crate) async fn attribute_many(
    state: &AppState,
    tenant: Uuid,
    ids: &[String],
    campaign: Option<Uuid>,
) -> Result<AttributionAnswer, ApiError> {
    check_campaign(state, tenant, campaign).await?;
    let calls = find_calls(state, tenant, ids).await?;
    let not_found: Vec<String> = ids
        .iter()
        .filter(|id| !calls.iter().any(|c| &c.execution_id == *id))
        .cloned()
        .collect();
    let attributed = ids.len() - not_found.len();
    if !calls.is_empty() {
        record(state, tenant, campaign, calls).await?;
    }
    Ok(AttributionAnswer {
        attributed,
        not_found,
    })
}

/// The calls of `tenant` with these ids, of any provider (the log answers at once).
async fn find_calls(
    state: &AppState,
    tenant: Uuid,
    ids: &[String],
) -> Result<Vec<CallRef>, ApiError> {
    let log = state.log().clone();
    let ids = ids.to_vec();
    let found = state
        .on_db_runtime(async move {
            let providers: Vec<&str> = Provider::ALL.iter().map(|p| p.as_str()).collect();
            log.streams(tenant, &providers, &ids).await
        })
        .await?
        .map_err(ApiError::from_log)?;
    Ok(found
        .into_iter()
        .map(|(provider, execution_id)| CallRef {
            provider,
            execution_id,
        })
        .collect())
}

/// A campaign id that is not `tenant`'s is a 404, like a missing one.
async fn check_campaign(
    state: &AppState,
    tenant: Uuid,
    campaign: Option<Uuid>,
) -> Result<(), ApiError> {
    match campaign {
        Some(id) if !campaign_exists(state, tenant, id).await? => Err(ApiError::NotFound),
        _ => Ok(()),
    }
}

/// Appends the `attribution.set` event (a fresh stream id: every
/// request is an event of its own; two concurrent retries with one `Idempotency-Key` may both
/// be recorded, and say the same).
async fn record(
    state: &AppState,
    tenant: Uuid,
    campaign: Option<Uuid>,
    calls: Vec<CallRef>,
) -> Result<(), ApiError> {
    let stream = Uuid::new_v4().to_string();
    let set = AttributionSet {
        campaign_id: campaign,
        calls,
    };
    let event = calltrail_event(tenant, stream, ATTRIBUTION_SET, &set, Utc::now())?;
    append(state, event).await?;
    tracing::info!(
        campaign_id = campaign.as_ref().map(tracing::field::display),
        calls = set.calls.len(),
        "manual attribution recorded"
    );
    Ok(())
}

/// Runs `work` once per `key` (when there is one) and answers its stored answer ever after;
/// a key already used for another request is refused. Errors are not stored: a failed
/// request can be retried with the same key.
async fn idempotent<F, Fut>(
    state: &AppState,
    tenant: Uuid,
    key: Option<String>,
    route: &str,
    body: &[u8],
    work: F,
) -> Result<HttpResponse, ApiError>
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = Result<AttributionAnswer, ApiError>>,
{
    let Some(key) = key else {
        return Ok(HttpResponse::Ok().json(work().await?));
    };
    let hash = request_hash(route, body);
    let (probe_key, probe_hash) = (key.clone(), hash.clone());
    let known = state
        .read_from(crate::ReadFrom::Primary, |store| async move {
            store.idempotency_key(tenant, &probe_key, &probe_hash).await
        })
        .await?;
    match known {
        KeyState::Answered(stored) => return Ok(stored_response(&stored)),
        KeyState::Reused => return Err(ApiError::IdempotencyKeyReused),
        KeyState::New => {}
    }
    let answer = work().await?;
    let body = serde_json::to_string(&answer).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let answer = StoredAnswer { status: 200, body };
    let route = route.to_owned();
    let stored = state
        .read_from(crate::ReadFrom::Primary, |store| async move {
            store
                .store_answer(tenant, &key, &route, &hash, &answer)
                .await
        })
        .await?;
    Ok(stored_response(&stored))
}

fn stored_response(answer: &StoredAnswer) -> HttpResponse {
    let status = StatusCode::from_u16(answer.status).unwrap_or(StatusCode::OK);
    HttpResponse::build(status)
        .content_type("application/json")
        .body(answer.body.clone())
}
