//! `GET /v1/calls`, `GET /v1/calls/{execution_id}`, `GET /v1/calls/{execution_id}/transcript`.
//!
//! A call is identified by `(provider, execution_id)` (CONTRACT §5): the single-call routes
//! find a call of any provider, answer `409 ambiguous_call_id` when several providers' calls
//! have the id, and take `?provider=` to pick one; the list takes it as a filter.

use actix_web::{web, HttpResponse};
use calltrail_projections::queries::{CallFilter, Lookup};
use calltrail_projections::views::{CallDetail, CallView, Page, TranscriptView};
use serde::Deserialize;

use crate::auth::Tenant;
use crate::error::{ApiError, ErrorBody};
use crate::params::{
    lifecycle_status_filter, non_empty, outcome_filter, parse_execution_id, parse_limit,
    parse_phone, parse_provider, parse_window, status_filter, text_filter,
};
use crate::AppState;

/// Query of `GET /v1/calls` (every value is validated by hand, so errors carry our codes; a
/// parameter not listed here is `unknown_parameter`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[serde(deny_unknown_fields)]
#[into_params(parameter_in = Query)]
pub struct CallsQuery {
    /// Page size, 1–100 (default 50).
    #[param(value_type = Option<i64>, minimum = 1, maximum = 100)]
    pub limit: Option<String>,
    /// `next_cursor` of the previous page, unchanged: an opaque value this API issued (any
    /// other answers 400 `invalid_cursor`).
    pub cursor: Option<String>,
    /// `completed`, `failed`, `cancelled` or `in_progress` (any other value answers 400
    /// `invalid_parameter` listing these).
    #[param(pattern = r"^(completed|failed|cancelled|in_progress)?$")]
    pub status: Option<String>,
    /// Lifecycle status in Bolna's vocabulary, e.g. `no-answer` (any other value answers 400
    /// `invalid_parameter` listing them).
    #[param(
        pattern = r"^(scheduled|queued|rescheduled|initiated|ringing|in-progress|call-disconnected|completed|no-answer|busy|failed|canceled|stopped|error|balance-low)?$"
    )]
    pub lifecycle_status: Option<String>,
    /// The contact's number, international (`+` or `00` and 8–15 digits; spaces, `-`, `.`,
    /// `(`, `)` are ignored). URL-encode the `+`: a leading space is read as one.
    pub phone: Option<String>,
    /// The provider's agent id.
    #[param(pattern = r"^[^\u0000]*$")]
    pub agent_id: Option<String>,
    /// Calls created at or after this time (RFC 3339, or `YYYY-MM-DD` for midnight UTC; a
    /// date-time without a zone is UTC).
    pub from: Option<String>,
    /// Calls created before this time (RFC 3339, or `YYYY-MM-DD` for midnight UTC; a
    /// date-time without a zone is UTC).
    pub to: Option<String>,
    /// The order: `newest` (default), `oldest`, `longest` or `shortest` (conversation
    /// length, then date), `status` (alphabetical, newest first within one). A cursor belongs
    /// to the order it was issued for.
    #[param(pattern = r"^(newest|oldest|longest|shortest|status)?$")]
    pub sort: Option<String>,
    /// Only the calls attributed to this campaign (its id).
    #[param(
        pattern = r"^([0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})?$"
    )]
    pub campaign_id: Option<String>,
    /// `true`: only attributed calls; `false`: only unattributed ones.
    #[param(pattern = r"^(true|false)?$")]
    pub attributed: Option<String>,
    /// Only this provider's calls: `bolna`, `vapi`, `elevenlabs`, `twilio` or `retell`
    /// (another value answers 400 `invalid_provider`).
    pub provider: Option<String>,
    /// Only calls of this outcome: `booked`, `transferred`, `voicemail`, `information`,
    /// `no_answer`, `busy`, `failed` or `other` (any other value answers 400
    /// `invalid_parameter` listing them).
    #[param(
        pattern = r"^(booked|transferred|voicemail|information|no_answer|busy|failed|other)?$"
    )]
    pub outcome: Option<String>,
}

/// Query of the single-call routes (`GET /v1/calls/{execution_id}` and its `/transcript`,
/// `/analysis`).
#[derive(Debug, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CallQuery {
    /// The call's provider: needed only when calls of several providers have this id (else
    /// 409 `ambiguous_call_id`); another value than a provider's name is 400
    /// `invalid_provider`.
    pub provider: Option<String>,
}

impl CallQuery {
    /// The provider asked for, validated against the provider table.
    pub(crate) fn provider(&self) -> Result<Option<&'static str>, ApiError> {
        Ok(parse_provider(self.provider.as_deref())?.map(|p| p.as_str()))
    }
}

/// The call a lookup found: missing is 404 `call_not_found`, several providers' calls with
/// the id is 409 `ambiguous_call_id`.
pub(crate) fn found<T>(lookup: Lookup<T>, execution_id: &str) -> Result<T, ApiError> {
    match lookup {
        Lookup::Found(value) => Ok(value),
        Lookup::Missing => Err(ApiError::CallNotFound),
        Lookup::Ambiguous(providers) => Err(ApiError::AmbiguousCallId {
            execution_id: execution_id.to_owned(),
            providers,
        }),
    }
}

impl CallsQuery {
    /// The validated page size and filter.
    pub(crate) fn parse(&self) -> Result<(i64, CallFilter), ApiError> {
        let limit = parse_limit(self.limit.as_deref())?;
        let (from, to) = parse_window(self.from.as_deref(), self.to.as_deref())?;
        let filter = CallFilter {
            status: status_filter(self.status.as_deref())?,
            lifecycle_status: lifecycle_status_filter(self.lifecycle_status.as_deref())?,
            phone: self
                .phone
                .as_deref()
                .filter(|p| !p.trim().is_empty())
                .map(parse_phone)
                .transpose()?
                .map(|p| p.as_str().to_owned()),
            agent_id: text_filter("agent_id", self.agent_id.as_deref())?,
            from,
            to,
            // Empty is absent (a form's blank field); anything else is a hyphenated UUID, the
            // only spelling campaign ids are issued in (and the schema's pattern).
            campaign_id: match self.campaign_id.as_deref() {
                None | Some("") => None,
                Some(id) => Some(
                    (id.len() == 36)
                        .then(|| uuid::Uuid::parse_str(id).ok())
                        .flatten()
                        .ok_or_else(|| {
                            ApiError::InvalidQuery(
                                "`campaign_id` must be a campaign id (a UUID)".into(),
                            )
                        })?,
                ),
            },
            // Empty is absent (a form's blank field), as the schema's pattern says.
            attributed: match self.attributed.as_deref() {
                None | Some("") => None,
                Some("true") => Some(true),
                Some("false") => Some(false),
                Some(_) => {
                    return Err(ApiError::InvalidQuery(
                        "`attributed` must be true or false".into(),
                    ))
                }
            },
            provider: parse_provider(self.provider.as_deref())?.map(|p| p.as_str().to_owned()),
            outcome: outcome_filter(self.outcome.as_deref())?,
            sort: crate::params::sort_filter(self.sort.as_deref())?,
        };
        Ok((limit, filter))
    }
}

/// Lists the tenant's calls, newest first (or in `sort` order).
#[utoipa::path(
    get,
    path = "/v1/calls",
    tag = "calls",
    params(CallsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of calls", body = Page<CallView>),
        (status = 400, description = "`invalid_limit`, `invalid_time`, `invalid_range` (`from` later than `to`), `invalid_phone`, `invalid_provider` (a `provider` not in the provider table, naming the ones it takes), `invalid_parameter` (a `status`, `lifecycle_status` or `outcome` outside its list, naming the values it takes), `unknown_parameter` (naming the ones the route takes), `invalid_cursor` (a cursor of another list or another `sort`) or `invalid_query` (a repeated parameter, U+0000 in a filter, an unknown `sort`)", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn list_calls(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<CallsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (limit, filter) = query.parse()?;
    let cursor = non_empty(query.cursor.as_deref()).map(str::to_owned);
    let page = state
        .read(|store| async move {
            store
                .list_calls(tenant.0, &filter, cursor.as_deref(), limit)
                .await
        })
        .await?;
    Ok(HttpResponse::Ok().json(page))
}

/// One call with its timeline (read together, one consistent snapshot).
#[utoipa::path(
    get,
    path = "/v1/calls/{execution_id}",
    tag = "calls",
    params(("execution_id" = String, Path, description = "The provider's execution id (call id)", example = "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7"), CallQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The call and its events ordered by `occurred_at`", body = CallDetail),
        (status = 400, description = "`invalid_provider`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`call_not_found` (also for another tenant's call, or none of this `provider`)", body = ErrorBody),
        (status = 409, description = "`ambiguous_call_id`: calls of several providers have this id (the message names them); add `?provider=`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn get_call(
    state: web::Data<AppState>,
    tenant: Tenant,
    execution_id: web::Path<String>,
    query: web::Query<CallQuery>,
) -> Result<HttpResponse, ApiError> {
    let execution_id = parse_execution_id(execution_id.into_inner())?;
    let provider = query.provider()?;
    let id = execution_id.clone();
    let call = state
        .read(|store| async move { store.get_call(tenant.0, provider, &id).await })
        .await?;
    Ok(HttpResponse::Ok().json(found(call, &execution_id)?))
}

/// A call's transcript and its analysis status.
#[utoipa::path(
    get,
    path = "/v1/calls/{execution_id}/transcript",
    tag = "calls",
    params(("execution_id" = String, Path, description = "The provider's execution id (call id)", example = "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7"), CallQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The transcript", body = TranscriptView),
        (status = 400, description = "`invalid_provider`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 404, description = "`call_not_found`: no such call for this tenant (or of this `provider`); `transcript_not_available`: the call has no transcript yet (the message says its status)", body = ErrorBody),
        (status = 409, description = "`ambiguous_call_id`: calls of several providers have this id (the message names them); add `?provider=`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn get_transcript(
    state: web::Data<AppState>,
    tenant: Tenant,
    execution_id: web::Path<String>,
    query: web::Query<CallQuery>,
) -> Result<HttpResponse, ApiError> {
    let execution_id = parse_execution_id(execution_id.into_inner())?;
    let provider = resolve_provider(&state, tenant, query.provider()?, &execution_id).await?;
    let (id, p) = (execution_id.clone(), provider.clone());
    let transcript = state
        .read(|store| async move { store.get_transcript(tenant.0, Some(&p), &id).await })
        .await?;
    match transcript {
        Lookup::Found(transcript) => Ok(HttpResponse::Ok().json(transcript)),
        Lookup::Missing | Lookup::Ambiguous(_) => {
            Err(missing(&state, tenant, provider, execution_id, |status| {
                ApiError::TranscriptNotAvailable { status }
            })
            .await)
        }
    }
}

/// The provider of the call that the path's id and `?provider=` name: `call_not_found` when
/// there is none, `ambiguous_call_id` when calls of several providers have the id.
pub(crate) async fn resolve_provider(
    state: &AppState,
    tenant: Tenant,
    provider: Option<&'static str>,
    execution_id: &str,
) -> Result<String, ApiError> {
    let id = execution_id.to_owned();
    let lookup = state
        .read(|store| async move { store.call_provider(tenant.0, provider, &id).await })
        .await?;
    found(lookup, execution_id)
}

/// The 404 of a call's missing part: `call_not_found` when the call itself is missing, else
/// `part` with the call's status.
pub(crate) async fn missing(
    state: &AppState,
    tenant: Tenant,
    provider: String,
    execution_id: String,
    part: impl FnOnce(String) -> ApiError,
) -> ApiError {
    let status = state
        .read(|store| async move {
            store
                .call_lifecycle_status(tenant.0, &provider, &execution_id)
                .await
        })
        .await;
    match status {
        Ok(Some(status)) => part(status),
        Ok(None) => ApiError::CallNotFound,
        Err(err) => err,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_query_is_the_default_page() {
        let parsed = CallsQuery::default().parse();
        let (limit, filter) = parsed.unwrap_or_default();
        assert_eq!(limit, 50);
        assert!(filter.from.is_none() && filter.phone.is_none() && filter.status.is_none());
    }

    #[test]
    fn filters_are_validated_and_normalized() {
        let query = CallsQuery {
            limit: Some("10".into()),
            status: Some("completed".into()),
            phone: Some(" 1 415 555 0132".into()),
            from: Some("2024-05-01".into()),
            to: Some("".into()),
            ..CallsQuery::default()
        };
        let (limit, filter) = query.parse().unwrap_or_default();
        assert_eq!(limit, 10);
        assert_eq!(filter.status.as_deref(), Some("completed"));
        assert_eq!(filter.phone.as_deref(), Some("+14155550132"));
        assert!(filter.from.is_some());
        assert!(filter.to.is_none());
    }

    #[test]
    fn invalid_values_name_their_code() {
        let code = |query: CallsQuery| query.parse().err().map(|e| e.code());
        let limit = CallsQuery {
            limit: Some("0".into()),
            ..CallsQuery::default()
        };
        assert_eq!(code(limit), Some("invalid_limit"));
        let to = CallsQuery {
            to: Some("tomorrow".into()),
            ..CallsQuery::default()
        };
        assert_eq!(code(to), Some("invalid_time"));
        let phone = CallsQuery {
            phone: Some("12".into()),
            ..CallsQuery::default()
        };
        assert_eq!(code(phone), Some("invalid_phone"));
        let provider = CallsQuery {
            provider: Some("acme".into()),
            ..CallsQuery::default()
        };
        assert_eq!(code(provider), Some("invalid_provider"));
    }

    #[test]
    fn the_provider_filter_is_a_name_of_the_table_or_blank() {
        let parse = |p: &str| {
            CallsQuery {
                provider: Some(p.into()),
                ..CallsQuery::default()
            }
            .parse()
            .map(|(_, f)| f.provider)
            .map_err(|e| e.message())
        };
        assert_eq!(parse("twilio"), Ok(Some("twilio".to_owned())));
        assert_eq!(parse(""), Ok(None));
        assert_eq!(
            parse("Vapi"),
            Err(
                "`provider` must be one of bolna, vapi, elevenlabs, twilio, retell, not `Vapi`."
                    .to_owned()
            )
        );
    }
}
