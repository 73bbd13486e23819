//! `POST /v1/campaigns`, `GET /v1/campaigns`, `GET`/`PATCH /v1/campaigns/{id}` and
//! `POST /v1/campaigns/{id}/recipients` (CONTRACT §6). Every change is an event in the log
//! (`calltrail_core::campaign`); the projector folds it into the campaign tables and the
//! calls' attribution.
//!
//! - [`upload`]: reading a recipients CSV.

pub mod upload;

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use calltrail_core::campaign::{
    CampaignCreated, CampaignRenamed, RecipientsAdded, CAMPAIGN_CREATED,
    CAMPAIGN_EVENT_SCHEMA_VERSION, CAMPAIGN_RENAMED, RECIPIENTS_ADDED,
};
use calltrail_eventlog::NewEvent;
use calltrail_projections::fold::CALLTRAIL_PROVIDER;
use calltrail_projections::views::{CampaignView, Page};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::body;
use crate::error::{ApiError, ErrorBody};
use crate::params::{non_empty, parse_limit};
use crate::AppState;
use upload::RejectedLine;

/// Longest campaign name.
pub const MAX_NAME: usize = 200;
/// Most `provider_batch_ids` a campaign is created with.
pub const MAX_BATCH_IDS: usize = 100;
/// Largest recipients upload (100,000 recipients with name, e-mail and company fit easily).
pub const MAX_UPLOAD_BYTES: usize = 32 * 1024 * 1024;
/// Recipients per `campaign.recipients_added` event (an upload becomes several).
const RECIPIENTS_PER_EVENT: usize = 5_000;
/// Rejected lines listed in an answer (`rejected_total` counts them all).
const MAX_REJECTED_LISTED: usize = 1_000;

body::text_field!(CampaignText, MAX_NAME);

/// `POST /v1/campaigns` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewCampaign {
    /// 1–200 characters, not all blank.
    #[schema(value_type = CampaignText)]
    pub name: String,
    /// Provider batch ids whose calls belong to this campaign (Bolna `batch_id`; for the
    /// others the `campaign_id` key of the call's metadata), at most 100, each claimed by one
    /// campaign only.
    #[serde(default)]
    #[schema(value_type = Option<Vec<CampaignText>>, max_items = 100)]
    pub provider_batch_ids: Option<Vec<String>>,
}

/// `PATCH /v1/campaigns/{id}` body.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CampaignRename {
    /// The new name, 1–200 characters, not all blank.
    #[schema(value_type = CampaignText)]
    pub name: String,
}

/// Answer of `POST /v1/campaigns/{id}/recipients`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct RecipientsAnswer {
    /// Recipients new to the campaign.
    pub added: usize,
    /// Lines of the file already seen in it or already recipients.
    pub duplicates: usize,
    /// Lines not used, with their line number and why (the first 1,000).
    pub rejected: Vec<RejectedLine>,
    /// All lines not used.
    pub rejected_total: usize,
}

/// Query of `GET /v1/campaigns`.
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CampaignsQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged.
    pub cursor: Option<String>,
}

/// A calltrail event of `tenant` (provider `calltrail`), recorded now.
pub(crate) fn calltrail_event(
    tenant: Uuid,
    stream_id: String,
    event_type: &str,
    data: &impl Serialize,
    now: DateTime<Utc>,
) -> Result<NewEvent, ApiError> {
    let data = serde_json::to_string(data).map_err(|e| ApiError::Internal(Box::new(e)))?;
    Ok(NewEvent {
        tenant_id: tenant,
        provider: CALLTRAIL_PROVIDER.to_owned(),
        stream_id,
        event_type: event_type.to_owned(),
        schema_version: CAMPAIGN_EVENT_SCHEMA_VERSION,
        occurred_at: now,
        data,
        payload: None,
        metadata: serde_json::json!({ "source": "api", "received_at": now }).to_string(),
    })
}

/// Appends `event`, waiting for its commit.
pub(crate) async fn append(state: &AppState, event: NewEvent) -> Result<(), ApiError> {
    state
        .appender()
        .append(event)
        .await
        .map(|_| ())
        .map_err(ApiError::from_log)
}

/// A campaign id from the path: anything but a UUID names no campaign (404).
fn campaign_id(raw: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(raw.trim()).map_err(|_| ApiError::NotFound)
}

/// Whether `tenant` created this campaign (the log answers at once, before the projector).
pub(crate) async fn campaign_exists(
    state: &AppState,
    tenant: Uuid,
    campaign: Uuid,
) -> Result<bool, ApiError> {
    let log = state.log().clone();
    state
        .on_db_runtime(async move {
            log.has_event(
                tenant,
                CALLTRAIL_PROVIDER,
                &campaign.to_string(),
                CAMPAIGN_CREATED,
            )
            .await
        })
        .await?
        .map_err(ApiError::from_log)
}

/// Creates a campaign.
#[utoipa::path(
    post,
    path = "/v1/campaigns",
    tag = "campaigns",
    request_body = NewCampaign,
    security(("api_key" = [])),
    responses(
        (status = 201, description = "The campaign (its counts start at 0)", body = CampaignView),
        (status = 400, description = "`invalid_json`, `unknown_field` or `invalid_field` (naming the field)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 409, description = "`batch_id_taken`: another campaign claims a batch id", body = ErrorBody),
        (status = 413, description = "`payload_too_large`", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not JSON", body = ErrorBody),
        (status = 422, description = "`too_many`: more than 100 batch ids", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn create_campaign(
    state: web::Data<AppState>,
    tenant: Tenant,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let (_, object) =
        body::json_object(req.headers(), payload, &["name", "provider_batch_ids"]).await?;
    let name = object.string("name", MAX_NAME)?;
    let batch_ids = object.strings("provider_batch_ids", MAX_NAME, MAX_BATCH_IDS)?;
    let wanted = batch_ids.clone();
    let claimed = state
        .read_from(crate::ReadFrom::Primary, |store| async move {
            store.claimed_batches(tenant.0, &wanted).await
        })
        .await?;
    if let Some((batch, _)) = claimed.into_iter().next() {
        return Err(ApiError::BatchIdTaken(batch));
    }
    let now = Utc::now();
    let created = CampaignCreated {
        campaign_id: Uuid::new_v4(),
        name,
        provider_batch_ids: batch_ids,
    };
    let event = calltrail_event(
        tenant.0,
        created.campaign_id.to_string(),
        CAMPAIGN_CREATED,
        &created,
        now,
    )?;
    append(&state, event).await?;
    tracing::info!(campaign_id = %created.campaign_id, "campaign created");
    let view = CampaignView {
        campaign_id: created.campaign_id,
        name: created.name,
        provider_batch_ids: created.provider_batch_ids,
        created_at: now,
        calls: 0,
        connected_calls: 0,
        recipients: 0,
    };
    Ok(HttpResponse::build(StatusCode::CREATED).json(view))
}

/// Lists the tenant's campaigns, newest first, with their counts.
#[utoipa::path(
    get,
    path = "/v1/campaigns",
    tag = "campaigns",
    params(CampaignsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of campaigns", body = Page<CampaignView>),
        (status = 400, description = "`invalid_limit`, `invalid_cursor` (also a cursor of another list), `unknown_parameter` or `invalid_query`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn list_campaigns(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<CampaignsQuery>,
) -> Result<HttpResponse, ApiError> {
    let limit = parse_limit(query.limit.as_deref())?;
    let cursor = non_empty(query.cursor.as_deref()).map(str::to_owned);
    let page = state
        .read(|store| async move {
            store
                .list_campaigns(tenant.0, cursor.as_deref(), limit)
                .await
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One campaign with its counts.
#[utoipa::path(
    get,
    path = "/v1/campaigns/{campaign_id}",
    tag = "campaigns",
    params(("campaign_id" = String, Path, description = "The campaign's id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The campaign", body = CampaignView),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also another tenant's campaign)", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn get_campaign(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let id = campaign_id(&path)?;
    let campaign = state
        .read(|store| async move { store.get_campaign(tenant.0, id).await })
        .await?
        .ok_or(ApiError::NotFound)?;
    Ok(HttpResponse::Ok().json(campaign))
}

/// Renames a campaign.
#[utoipa::path(
    patch,
    path = "/v1/campaigns/{campaign_id}",
    tag = "campaigns",
    params(("campaign_id" = String, Path, description = "The campaign's id")),
    request_body = CampaignRename,
    security(("api_key" = [])),
    responses(
        (status = 202, description = "The rename is recorded: `{\"campaign_id\",\"name\"}`"),
        (status = 400, description = "`invalid_json`, `unknown_field` or `invalid_field`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also another tenant's campaign)", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn rename_campaign(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = campaign_id(&path)?;
    let (_, object) = body::json_object(req.headers(), payload, &["name"]).await?;
    let name = object.string("name", MAX_NAME)?;
    if !campaign_exists(&state, tenant.0, id).await? {
        return Err(ApiError::NotFound);
    }
    let renamed = CampaignRenamed {
        campaign_id: id,
        name,
    };
    let event = calltrail_event(
        tenant.0,
        Uuid::new_v4().to_string(),
        CAMPAIGN_RENAMED,
        &renamed,
        Utc::now(),
    )?;
    append(&state, event).await?;
    Ok(HttpResponse::Accepted().json(serde_json::json!({
        "campaign_id": renamed.campaign_id,
        "name": renamed.name,
    })))
}

/// A recipients upload as the OpenAPI description shows it: CSV text whose header row has a
/// `phone` (or `phone_number`) column.
pub struct RecipientsCsv;

impl utoipa::PartialSchema for RecipientsCsv {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        utoipa::openapi::ObjectBuilder::new()
            .schema_type(utoipa::openapi::schema::Type::String)
            .pattern(Some(
                r#"^([^\r\n",]*,)*([ \t]*[Pp][Hh][Oo][Nn][Ee](_[Nn][Uu][Mm][Bb][Ee][Rr])?[ \t]*|"[Pp][Hh][Oo][Nn][Ee](_[Nn][Uu][Mm][Bb][Ee][Rr])?")(,|\r|\n|$)"#,
            ))
            .into()
    }
}

impl utoipa::ToSchema for RecipientsCsv {}

/// Adds recipients from a CSV upload.
#[utoipa::path(
    post,
    path = "/v1/campaigns/{campaign_id}/recipients",
    tag = "campaigns",
    params(("campaign_id" = String, Path, description = "The campaign's id")),
    request_body(content = RecipientsCsv, content_type = "text/csv", description = "UTF-8 CSV with a header row: a `phone` column, optional `name`, `email`, `company`; at most 32 MiB"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "What was added and which lines were not used", body = RecipientsAnswer),
        (status = 400, description = "`invalid_csv`: not UTF-8, or no `phone` column", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`not_found` (also another tenant's campaign)", body = ErrorBody),
        (status = 413, description = "`payload_too_large`: over 32 MiB", body = ErrorBody),
        (status = 415, description = "`unsupported_media_type`: not `text/csv`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn add_recipients(
    state: web::Data<AppState>,
    tenant: Tenant,
    path: web::Path<String>,
    req: HttpRequest,
    payload: web::Payload,
) -> Result<HttpResponse, ApiError> {
    let id = campaign_id(&path)?;
    body::expect_content_type(req.headers(), "text/csv")?;
    if !campaign_exists(&state, tenant.0, id).await? {
        return Err(ApiError::NotFound);
    }
    let bytes = body::read(payload, MAX_UPLOAD_BYTES).await?;
    let upload = upload::parse(&bytes)?;
    drop(bytes);
    let phones: Vec<String> = upload
        .recipients
        .iter()
        .map(|r| r.phone_number.clone())
        .collect();
    let existing = state
        .read_from(crate::ReadFrom::Primary, |store| async move {
            let phones: Vec<&str> = phones.iter().map(String::as_str).collect();
            store.existing_recipients(tenant.0, id, &phones).await
        })
        .await?;
    let (new, known): (Vec<_>, Vec<_>) = upload
        .recipients
        .into_iter()
        .partition(|r| !existing.contains(&r.phone_number));
    let now = Utc::now();
    let appends = new
        .chunks(RECIPIENTS_PER_EVENT)
        .map(|chunk| {
            let added = RecipientsAdded {
                campaign_id: id,
                recipients: chunk.to_vec(),
            };
            calltrail_event(
                tenant.0,
                Uuid::new_v4().to_string(),
                RECIPIENTS_ADDED,
                &added,
                now,
            )
        })
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .map(|event| append(&state, event));
    // Appended together, so group commit writes them in as few transactions as it can.
    for appended in futures_util::future::join_all(appends).await {
        appended?;
    }
    tracing::info!(campaign_id = %id, added = new.len(), rejected = upload.rejected.len(), "recipients added");
    let rejected_total = upload.rejected.len();
    let mut rejected = upload.rejected;
    rejected.truncate(MAX_REJECTED_LISTED);
    Ok(HttpResponse::Ok().json(RecipientsAnswer {
        added: new.len(),
        duplicates: upload.duplicates + known.len(),
        rejected,
        rejected_total,
    }))
}
