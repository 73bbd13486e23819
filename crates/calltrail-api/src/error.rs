//! The API's one error table: every failure is an [`ApiError`], answered as
//! `{"error":{"code":"snake_case","message":"human sentence"}}` with the status of its row.

use std::borrow::Cow;

use actix_web::body::BoxBody;
use actix_web::dev::ServiceResponse;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::middleware::ErrorHandlerResponse;
use actix_web::{HttpRequest, HttpResponse, ResponseError};
use serde::Serialize;

/// A boxed cause kept for the log (never shown to clients).
pub type Cause = Box<dyn std::error::Error + Send + Sync + 'static>;

/// Everything the API can answer with besides success.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// No valid `Authorization: Bearer <api_key>`.
    #[error("missing or unknown API key")]
    Unauthorized,
    /// The webhook token in the path belongs to no tenant.
    #[error("unknown webhook token")]
    UnknownWebhookToken,
    /// A webhook for a provider calltrail has no endpoint for.
    #[error("unknown provider `{0}`")]
    UnknownProvider(String),
    /// The provider's signature check refused the request (CONTRACT §5).
    #[error(transparent)]
    Signature(#[from] calltrail_core::providers::SignatureError),
    /// The payload's agent is registered to a different tenant than the token's.
    #[error("agent `{0}` belongs to another tenant")]
    AgentOfAnotherTenant(String),
    /// The webhook body is not a usable provider payload.
    #[error(transparent)]
    InvalidPayload(#[from] calltrail_core::PayloadError),
    /// A string of the payload holds U+0000, which the event log cannot store.
    #[error("the payload holds the character U+0000")]
    NulInPayload,
    /// The event log refused the payload's content (a value too large for its index, …); the
    /// database's own text is kept for the log, never shown.
    #[error("the event log refused the payload: {0}")]
    PayloadRefused(String),
    /// The body exceeds the configured limit.
    #[error("body larger than {limit} bytes")]
    PayloadTooLarge {
        /// The limit in bytes.
        limit: usize,
    },
    /// The body did not arrive in time.
    #[error("body not received within {seconds} s")]
    BodyTimeout {
        /// The time allowed.
        seconds: u64,
    },
    /// Reading the body failed (client disconnected, bad chunked encoding, …).
    #[error("reading the body failed: {0}")]
    BodyRead(String),
    /// `limit` outside 1–`max` or not an integer.
    #[error("invalid limit")]
    InvalidLimit {
        /// The largest limit the route accepts.
        max: i64,
    },
    /// `from`/`to` neither RFC 3339 nor `YYYY-MM-DD`.
    #[error("invalid `{param}`")]
    InvalidTime {
        /// The parameter's name.
        param: &'static str,
    },
    /// `phone` is not an international number.
    #[error(transparent)]
    InvalidPhone(#[from] calltrail_core::PhoneNumberError),
    /// The pagination cursor is not one we issued.
    #[error("invalid cursor")]
    InvalidCursor,
    /// The query string could not be read.
    #[error("invalid query string: {0}")]
    InvalidQuery(String),
    /// A query parameter the route does not take (a typo such as `stauts`).
    #[error("unknown parameter `{name}`")]
    UnknownParameter {
        /// The parameter as sent (shortened).
        name: String,
        /// The parameters the route takes, as a sentence fragment.
        accepted: String,
    },
    /// A query parameter with a value outside its closed list.
    #[error("invalid `{param}`")]
    InvalidParameter {
        /// The parameter's name.
        param: &'static str,
        /// The value as sent (shortened).
        value: String,
        /// The values it takes.
        allowed: &'static [&'static str],
    },
    /// `from` later than `to`: the window is empty by construction.
    #[error("`from` is later than `to`")]
    InvalidRange,
    /// A path segment could not be read.
    #[error("invalid path: {0}")]
    InvalidPath(String),
    /// A JSON request body is not valid JSON (or not an object).
    #[error("invalid JSON body: {0}")]
    InvalidJson(String),
    /// A JSON request body has a field the route does not know.
    #[error("unknown field `{0}`")]
    UnknownField(String),
    /// A field of a request body is missing or has the wrong type or value.
    #[error("invalid field `{field}`: {problem}")]
    InvalidField {
        /// The field's name.
        field: &'static str,
        /// What is wrong, as a sentence fragment (`must be a string`).
        problem: String,
    },
    /// A list in a request body is longer than the route takes.
    #[error("too many `{field}`")]
    TooMany {
        /// The field's name.
        field: &'static str,
        /// How many were sent.
        got: usize,
        /// The most the route takes.
        limit: usize,
    },
    /// A request body of another media type than the route takes.
    #[error("unsupported media type")]
    UnsupportedMediaType {
        /// The type the route takes.
        expected: &'static str,
    },
    /// A CSV upload that cannot be read at all (no `phone` column, not UTF-8, …).
    #[error("invalid CSV: {0}")]
    InvalidCsv(String),
    /// A batch id another campaign of the tenant already claims.
    #[error("batch id `{0}` belongs to another campaign")]
    BatchIdTaken(String),
    /// An `Idempotency-Key` header that is empty or too long.
    #[error("invalid Idempotency-Key")]
    InvalidIdempotencyKey,
    /// An `Idempotency-Key` already used for another request.
    #[error("Idempotency-Key reused")]
    IdempotencyKeyReused,
    /// `provider` names no provider of the table (CONTRACT §5).
    #[error("invalid provider `{0}`")]
    InvalidProvider(String),
    /// A call id that calls of several providers use, asked for without `provider`.
    #[error("call id `{execution_id}` is used by several providers")]
    AmbiguousCallId {
        /// The id asked for.
        execution_id: String,
        /// The providers whose calls have it, sorted.
        providers: Vec<String>,
    },
    /// The resource does not exist for this tenant (another tenant's answers the same).
    #[error("not found")]
    NotFound,
    /// No call has this id for this tenant (another tenant's answers the same).
    #[error("no such call")]
    CallNotFound,
    /// The call exists but has no transcript yet.
    #[error("no transcript yet")]
    TranscriptNotAvailable {
        /// The call's lifecycle status.
        status: String,
    },
    /// The call exists but has no individual analysis yet.
    #[error("no analysis yet")]
    AnalysisNotAvailable {
        /// The call's lifecycle status.
        status: String,
    },
    /// No route has this path.
    #[error("no such route")]
    RouteNotFound,
    /// The route exists but not for this method.
    #[error("method not allowed")]
    MethodNotAllowed,
    /// The database is down or too slow; retrying later may succeed.
    #[error("database unavailable: {0}")]
    Unavailable(#[source] Cause),
    /// A bug or an unexpected database answer.
    #[error("internal error: {0}")]
    Internal(#[source] Cause),
}

impl ApiError {
    /// The table: `(code, HTTP status, message)` of every error. A new error is one row here.
    pub fn row(&self) -> (&'static str, StatusCode, Cow<'static, str>) {
        use ApiError as E;
        match self {
            E::Unauthorized => (
                "unauthorized",
                StatusCode::UNAUTHORIZED,
                "A valid API key is required: send `Authorization: Bearer <api_key>`.".into(),
            ),
            E::UnknownWebhookToken => (
                "unknown_webhook_token",
                StatusCode::UNAUTHORIZED,
                "The webhook token in the URL belongs to no account.".into(),
            ),
            E::UnknownProvider(name) => (
                "unknown_provider",
                StatusCode::NOT_FOUND,
                format!("No webhook endpoint exists for provider `{name}`.").into(),
            ),
            E::Signature(err) => (
                err.code(),
                StatusCode::UNAUTHORIZED,
                sentence(err.to_string()).into(),
            ),
            E::AgentOfAnotherTenant(agent) => (
                "agent_of_another_tenant",
                StatusCode::FORBIDDEN,
                format!("Agent `{agent}` is registered to another account.").into(),
            ),
            E::InvalidPayload(err) => (
                "invalid_payload",
                StatusCode::BAD_REQUEST,
                sentence(err.to_string()).into(),
            ),
            E::NulInPayload => (
                "invalid_payload",
                StatusCode::BAD_REQUEST,
                "A string in the payload holds the character U+0000 (`\\u0000`), which calltrail cannot store: remove it and send the webhook again."
                    .into(),
            ),
            E::PayloadRefused(_) => (
                "invalid_payload",
                StatusCode::BAD_REQUEST,
                "The payload cannot be stored: a value in it is too large or not storable (e.g. a call id of many kilobytes)."
                    .into(),
            ),
            E::PayloadTooLarge { limit } => (
                "payload_too_large",
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("The body is larger than the limit of {limit} bytes.").into(),
            ),
            E::BodyTimeout { seconds } => (
                "request_timeout",
                StatusCode::REQUEST_TIMEOUT,
                format!("The body was not received within {seconds} seconds.").into(),
            ),
            E::BodyRead(reason) => (
                "invalid_body",
                StatusCode::BAD_REQUEST,
                format!("The body could not be read: {reason}.").into(),
            ),
            E::InvalidLimit { max } => (
                "invalid_limit",
                StatusCode::BAD_REQUEST,
                format!("`limit` must be an integer from 1 to {max}.").into(),
            ),
            E::InvalidTime { param } => (
                "invalid_time",
                StatusCode::BAD_REQUEST,
                format!("`{param}` must be an RFC 3339 timestamp or a date `YYYY-MM-DD`.").into(),
            ),
            E::InvalidPhone(err) => (
                "invalid_phone",
                StatusCode::BAD_REQUEST,
                sentence(format!("`phone` is invalid: {err}")).into(),
            ),
            E::InvalidCursor => (
                "invalid_cursor",
                StatusCode::BAD_REQUEST,
                "`cursor` is not one this API issued: pass the previous page's `next_cursor` unchanged (URL-encoded)."
                    .into(),
            ),
            E::InvalidQuery(reason) => (
                "invalid_query",
                StatusCode::BAD_REQUEST,
                sentence(format!("The query string is invalid: {reason}")).into(),
            ),
            E::UnknownParameter { name, accepted } => (
                "unknown_parameter",
                StatusCode::BAD_REQUEST,
                format!("`{name}` is not a parameter of this route; it takes {accepted}.").into(),
            ),
            E::InvalidParameter {
                param,
                value,
                allowed,
            } => (
                "invalid_parameter",
                StatusCode::BAD_REQUEST,
                format!(
                    "`{param}` must be one of {}, not `{value}`.",
                    allowed.join(", ")
                )
                .into(),
            ),
            E::InvalidRange => (
                "invalid_range",
                StatusCode::BAD_REQUEST,
                "`from` is later than `to`: the window [from, to) would be empty.".into(),
            ),
            E::InvalidPath(reason) => (
                "invalid_path",
                StatusCode::BAD_REQUEST,
                sentence(format!("The path is invalid: {reason}")).into(),
            ),
            E::InvalidJson(reason) => (
                "invalid_json",
                StatusCode::BAD_REQUEST,
                sentence(format!("The body is not a JSON object: {reason}")).into(),
            ),
            E::UnknownField(name) => (
                "unknown_field",
                StatusCode::BAD_REQUEST,
                format!("The body has an unknown field `{name}`.").into(),
            ),
            E::InvalidField { field, problem } => (
                "invalid_field",
                StatusCode::BAD_REQUEST,
                format!("`{field}` {problem}.").into(),
            ),
            E::TooMany { field, got, limit } => (
                "too_many",
                StatusCode::UNPROCESSABLE_ENTITY,
                format!("`{field}` holds {got} items; the limit is {limit} per request.").into(),
            ),
            E::UnsupportedMediaType { expected } => (
                "unsupported_media_type",
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                format!("The body must be sent as `Content-Type: {expected}`.").into(),
            ),
            E::InvalidCsv(reason) => (
                "invalid_csv",
                StatusCode::BAD_REQUEST,
                sentence(format!("The CSV cannot be read: {reason}")).into(),
            ),
            E::BatchIdTaken(batch) => (
                "batch_id_taken",
                StatusCode::CONFLICT,
                format!("Batch id `{batch}` already belongs to another campaign.").into(),
            ),
            E::InvalidIdempotencyKey => (
                "invalid_idempotency_key",
                StatusCode::BAD_REQUEST,
                "`Idempotency-Key` must be 1 to 255 visible ASCII characters.".into(),
            ),
            E::IdempotencyKeyReused => (
                "idempotency_key_reused",
                StatusCode::UNPROCESSABLE_ENTITY,
                "This `Idempotency-Key` was already used for a different request.".into(),
            ),
            E::InvalidProvider(name) => (
                "invalid_provider",
                StatusCode::BAD_REQUEST,
                format!(
                    "`provider` must be one of {}, not `{name}`.",
                    calltrail_core::Provider::names()
                )
                .into(),
            ),
            E::AmbiguousCallId {
                execution_id,
                providers,
            } => (
                "ambiguous_call_id",
                StatusCode::CONFLICT,
                format!(
                    "Calls of several providers have the id `{execution_id}` ({}): add `?provider=` to pick one.",
                    providers.join(", ")
                )
                .into(),
            ),
            E::NotFound => (
                "not_found",
                StatusCode::NOT_FOUND,
                "No such resource.".into(),
            ),
            E::CallNotFound => (
                "call_not_found",
                StatusCode::NOT_FOUND,
                "No call has this id in this account.".into(),
            ),
            E::TranscriptNotAvailable { status } => (
                "transcript_not_available",
                StatusCode::NOT_FOUND,
                format!("The call has no transcript yet (its status is `{status}`); the provider sends it when the call ends.").into(),
            ),
            E::AnalysisNotAvailable { status } => (
                "analysis_not_available",
                StatusCode::NOT_FOUND,
                format!("The call has no analysis yet (its status is `{status}`); it is analysed once its transcript arrives.").into(),
            ),
            E::RouteNotFound => (
                "route_not_found",
                StatusCode::NOT_FOUND,
                "No route matches this path.".into(),
            ),
            E::MethodNotAllowed => (
                "method_not_allowed",
                StatusCode::METHOD_NOT_ALLOWED,
                "This route does not accept this HTTP method.".into(),
            ),
            E::Unavailable(_) => (
                "unavailable",
                StatusCode::SERVICE_UNAVAILABLE,
                "The database is unavailable; retry shortly.".into(),
            ),
            E::Internal(_) => (
                "internal",
                StatusCode::INTERNAL_SERVER_ERROR,
                "An internal error occurred.".into(),
            ),
        }
    }

    /// The snake_case code of this error.
    pub fn code(&self) -> &'static str {
        self.row().0
    }

    /// The client-facing sentence of this error.
    pub fn message(&self) -> String {
        self.row().2.into_owned()
    }

    /// The JSON body of this error.
    pub fn body(&self) -> ErrorBody {
        let (code, _, message) = self.row();
        ErrorBody {
            error: ErrorDetail {
                code: code.to_owned(),
                message: message.into_owned(),
            },
        }
    }

    /// Logs the cause of a 503 or 500 (once, where the answer is made); other errors are the
    /// client's and are not logged.
    pub(crate) fn log_cause(&self) {
        let code = self.code();
        match self {
            ApiError::Unavailable(cause) => {
                tracing::warn!(code, error = %cause, "answering 503: database unavailable");
            }
            ApiError::Internal(cause) => {
                tracing::error!(code, error = %cause, "answering 500: internal error");
            }
            _ => {}
        }
    }

    /// The row of a read-side error: every variant is named, so a new one is a decision
    /// here. Only a bad cursor and a missing resource are the client's; an unreachable
    /// database is a 503; corrupt rows, replay and configuration failures are 500s.
    pub fn from_store(err: calltrail_projections::Error) -> Self {
        use calltrail_projections::Error as P;
        match err {
            P::InvalidCursor => ApiError::InvalidCursor,
            P::NotFound(_) => ApiError::NotFound,
            P::Unavailable(_) => ApiError::Unavailable(Box::new(err)),
            P::EventLog(log) => ApiError::from_log(log),
            P::Database(_)
            | P::InvalidUrl(_)
            | P::Pool(_)
            | P::InvalidInput(_)
            | P::Conflict(_)
            | P::CorruptState { .. }
            | P::CorruptRow { .. }
            | P::Encode { .. }
            | P::UnknownProjection { .. }
            | P::ReplayRunning
            | P::ReplayWriterStopped
            | P::ReplayWriterFailed(_)
            | P::FailPoint(_)
            | P::Random(_) => ApiError::Internal(Box::new(err)),
        }
    }

    /// The row of an event-log error: unavailable → 503, refused content → 400, anything else
    /// → 500 (every variant named, as in [`ApiError::from_store`]).
    pub fn from_log(err: calltrail_eventlog::Error) -> Self {
        use calltrail_eventlog::Error as L;
        if err.is_unavailable() {
            return ApiError::Unavailable(Box::new(err));
        }
        match err {
            L::InvalidEvent(reason) => ApiError::PayloadRefused(reason),
            L::Unavailable(_)
            | L::AppenderClosed
            | L::AppendFailed(_)
            | L::Database(_)
            | L::Config(_)
            | L::Migrate(_)
            | L::Corrupt { .. } => ApiError::Internal(Box::new(err)),
        }
    }
}

/// `{"error":{"code","message"}}`, the body of every error answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorBody {
    /// What went wrong.
    pub error: ErrorDetail,
}

/// The inside of [`ErrorBody`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ErrorDetail {
    /// Stable snake_case code, e.g. `invalid_limit`.
    #[schema(example = "invalid_limit")]
    pub code: String,
    /// A human sentence.
    pub message: String,
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.row().1
    }

    fn error_response(&self) -> HttpResponse {
        let (_, status, _) = self.row();
        self.log_cause();
        let mut response = HttpResponse::build(status);
        if matches!(self, ApiError::Unavailable(_)) {
            response.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
        }
        response.json(self.body())
    }
}

/// Capitalises the first letter and ends with a full stop, so every message reads as a sentence.
fn sentence(text: String) -> String {
    let text = text.trim_end();
    let mut chars = text.chars();
    let mut out = match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect::<String>(),
        None => return String::new(),
    };
    if !out.ends_with(['.', '!', '?']) {
        out.push('.');
    }
    out
}

/// `QueryConfig` error handler: a query string that does not deserialize answers `invalid_query`.
pub(crate) fn query_error(
    err: actix_web::error::QueryPayloadError,
    _req: &HttpRequest,
) -> actix_web::Error {
    use actix_web::error::QueryPayloadError as Q;
    let text = match &err {
        Q::Deserialize(de) => de.to_string(),
        other => other.to_string(),
    };
    match unknown_parameter(&text) {
        Some(unknown) => unknown.into(),
        None => ApiError::InvalidQuery(text).into(),
    }
}

/// Longest parameter name or value echoed back in a message.
pub(crate) const MAX_ECHOED: usize = 64;

/// Reads serde's `unknown field `x`, expected one of `a`, `b`` (the query structs deny unknown
/// fields) as [`ApiError::UnknownParameter`].
fn unknown_parameter(text: &str) -> Option<ApiError> {
    let rest = text.strip_prefix("unknown field `")?;
    let (name, rest) = rest.split_once('`')?;
    let accepted = match rest.split_once("expected ") {
        Some((_, expected)) => expected.strip_prefix("one of ").unwrap_or(expected),
        None => "no parameters",
    };
    Some(ApiError::UnknownParameter {
        name: name.chars().take(MAX_ECHOED).collect(),
        accepted: accepted.trim().to_owned(),
    })
}

/// `PathConfig` error handler: a path that does not deserialize answers `invalid_path`.
pub(crate) fn path_error(err: actix_web::error::PathError, _req: &HttpRequest) -> actix_web::Error {
    ApiError::InvalidPath(err.to_string()).into()
}

/// Default service: unknown routes answer 404 `route_not_found` (an HTML page to a browser
/// asking for a page outside `/v1/`).
pub(crate) async fn route_not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    if crate::console::wants_html(&req) {
        return Ok(crate::console::page::not_found());
    }
    Err(ApiError::RouteNotFound)
}

/// `ErrorHandlers` hook: actix's own empty 405 becomes our JSON body (the `Allow` header is kept).
pub(crate) fn method_not_allowed<B>(
    res: ServiceResponse<B>,
) -> actix_web::Result<ErrorHandlerResponse<B>> {
    let (req, res) = res.into_parts();
    let allow = res.headers().get(header::ALLOW).cloned();
    let mut json = HttpResponse::MethodNotAllowed();
    if let Some(allow) = allow {
        json.insert_header((header::ALLOW, allow));
    }
    let body: HttpResponse<BoxBody> = json.json(ApiError::MethodNotAllowed.body());
    let res = ServiceResponse::new(req, body).map_into_right_body::<B>();
    Ok(ErrorHandlerResponse::Response(res))
}

#[cfg(test)]
mod tests {
    use super::*;
    use calltrail_core::providers::SignatureError;
    use calltrail_core::{PayloadError, Provider};

    fn all() -> Vec<ApiError> {
        vec![
            ApiError::Unauthorized,
            ApiError::UnknownWebhookToken,
            ApiError::UnknownProvider("acme".into()),
            ApiError::AgentOfAnotherTenant("a1".into()),
            ApiError::Signature(SignatureError::Mismatch),
            ApiError::Signature(SignatureError::NotConfigured(Provider::Bolna)),
            ApiError::InvalidPayload(PayloadError::MissingField("id")),
            ApiError::PayloadRefused("bad escape".into()),
            ApiError::PayloadTooLarge { limit: 10 },
            ApiError::BodyTimeout { seconds: 30 },
            ApiError::BodyRead("closed".into()),
            ApiError::InvalidLimit { max: 100 },
            ApiError::InvalidTime { param: "from" },
            ApiError::InvalidCursor,
            ApiError::InvalidQuery("duplicate field".into()),
            ApiError::InvalidPath("bad".into()),
            ApiError::NotFound,
            ApiError::NulInPayload,
            ApiError::UnknownParameter {
                name: "stauts".into(),
                accepted: "`limit`".into(),
            },
            ApiError::InvalidParameter {
                param: "status",
                value: "bogus".into(),
                allowed: &["completed"],
            },
            ApiError::InvalidRange,
            ApiError::CallNotFound,
            ApiError::TranscriptNotAvailable {
                status: "ringing".into(),
            },
            ApiError::AnalysisNotAvailable {
                status: "completed".into(),
            },
            ApiError::RouteNotFound,
            ApiError::MethodNotAllowed,
            ApiError::Unavailable("pool timed out".into()),
            ApiError::Internal("boom".into()),
        ]
    }

    #[test]
    fn every_row_has_a_snake_case_code_and_a_sentence() {
        for err in all() {
            let (code, status, message) = err.row();
            assert!(
                code.chars().all(|c| c.is_ascii_lowercase() || c == '_'),
                "{code}"
            );
            assert!(
                status.is_client_error() || status.is_server_error(),
                "{code}"
            );
            assert!(
                message.ends_with('.')
                    && message.starts_with(|c: char| c.is_uppercase() || c == '`'),
                "{code}: {message}"
            );
        }
    }

    #[test]
    fn the_table_matches_the_contract() {
        let expect = [
            (ApiError::Unauthorized, "unauthorized", 401),
            (ApiError::UnknownWebhookToken, "unknown_webhook_token", 401),
            (
                ApiError::UnknownProvider("x".into()),
                "unknown_provider",
                404,
            ),
            (
                ApiError::AgentOfAnotherTenant("x".into()),
                "agent_of_another_tenant",
                403,
            ),
            (
                ApiError::InvalidPayload(PayloadError::NotAnObject),
                "invalid_payload",
                400,
            ),
            (ApiError::PayloadRefused("x".into()), "invalid_payload", 400),
            (
                ApiError::Signature(SignatureError::Missing("x-signature")),
                "invalid_signature",
                401,
            ),
            (
                ApiError::Signature(SignatureError::PublicUrlNotConfigured(Provider::Bolna)),
                "signature_not_configured",
                401,
            ),
            (
                ApiError::PayloadTooLarge { limit: 1 },
                "payload_too_large",
                413,
            ),
            (ApiError::InvalidLimit { max: 100 }, "invalid_limit", 400),
            (ApiError::InvalidCursor, "invalid_cursor", 400),
            (ApiError::InvalidTime { param: "to" }, "invalid_time", 400),
            (ApiError::NotFound, "not_found", 404),
            (ApiError::CallNotFound, "call_not_found", 404),
            (
                ApiError::TranscriptNotAvailable { status: "x".into() },
                "transcript_not_available",
                404,
            ),
            (
                ApiError::AnalysisNotAvailable { status: "x".into() },
                "analysis_not_available",
                404,
            ),
            (
                ApiError::UnknownParameter {
                    name: "x".into(),
                    accepted: "y".into(),
                },
                "unknown_parameter",
                400,
            ),
            (
                ApiError::InvalidParameter {
                    param: "status",
                    value: "x".into(),
                    allowed: &["y"],
                },
                "invalid_parameter",
                400,
            ),
            (ApiError::InvalidRange, "invalid_range", 400),
            (ApiError::NulInPayload, "invalid_payload", 400),
            (ApiError::Unavailable("x".into()), "unavailable", 503),
            (
                ApiError::TooMany {
                    field: "execution_ids",
                    got: 501,
                    limit: 500,
                },
                "too_many",
                422,
            ),
            (ApiError::UnknownField("x".into()), "unknown_field", 400),
            (
                ApiError::IdempotencyKeyReused,
                "idempotency_key_reused",
                422,
            ),
        ];
        for (err, code, status) in expect {
            assert_eq!(err.code(), code);
            assert_eq!(err.status_code().as_u16(), status, "{code}");
        }
    }

    #[test]
    fn the_body_is_the_error_envelope() {
        let body =
            serde_json::to_value(ApiError::InvalidLimit { max: 100 }.body()).unwrap_or_default();
        assert_eq!(
            body,
            serde_json::json!({"error": {"code": "invalid_limit", "message": "`limit` must be an integer from 1 to 100."}})
        );
    }

    #[test]
    fn causes_are_never_shown_to_clients() {
        let err = ApiError::PayloadRefused(
            "error returned from database: unsupported Unicode escape sequence".into(),
        );
        assert!(!err.message().contains("database"), "{}", err.message());
        let err = ApiError::Internal("password=hunter2".into());
        assert!(!err.message().contains("hunter2"));
        let err = ApiError::Unavailable("host db.internal".into());
        assert!(!err.message().contains("db.internal"));
    }

    #[test]
    fn unavailable_answers_carry_retry_after() {
        let response = ApiError::Unavailable("x".into()).error_response();
        assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
        assert_eq!(
            response
                .headers()
                .get(header::RETRY_AFTER)
                .and_then(|v| v.to_str().ok()),
            Some("1")
        );
    }

    #[test]
    fn store_and_log_errors_map_to_their_rows() {
        use calltrail_projections::Error as P;
        let corrupt_json = || match serde_json::from_str::<u8>("x") {
            Err(e) => e,
            Ok(_) => panic!("`x` is not a number"),
        };
        let cases = [
            (P::InvalidCursor, "invalid_cursor", 400),
            (P::NotFound("x".into()), "not_found", 404),
            (
                P::EventLog(calltrail_eventlog::Error::AppenderClosed),
                "unavailable",
                503,
            ),
            (
                P::CorruptState {
                    execution_id: "e1".into(),
                    source: corrupt_json(),
                },
                "internal",
                500,
            ),
            (
                P::CorruptRow {
                    table: "lead_analytics",
                    reason: "x".into(),
                },
                "internal",
                500,
            ),
            (P::ReplayRunning, "internal", 500),
            (P::ReplayWriterStopped, "internal", 500),
            (
                P::UnknownProjection {
                    name: "x".into(),
                    known: "read_models".into(),
                },
                "internal",
                500,
            ),
        ];
        for (err, code, status) in cases {
            let shown = format!("{err:?}");
            let api = ApiError::from_store(err);
            assert_eq!(
                (api.code(), api.status_code().as_u16()),
                (code, status),
                "{shown}"
            );
        }
        use calltrail_eventlog::Error as L;
        assert_eq!(ApiError::from_log(L::AppenderClosed).code(), "unavailable");
        assert_eq!(
            ApiError::from_log(L::InvalidEvent("x".into())).code(),
            "invalid_payload"
        );
        let corrupt = L::Corrupt {
            position: 1,
            reason: "x".into(),
        };
        assert_eq!(ApiError::from_log(corrupt).code(), "internal");
    }

    #[actix_web::test]
    async fn an_unreachable_read_store_is_unavailable() {
        let store = calltrail_projections::ReadStore::connect(
            "postgres://postgres@127.0.0.1:1/postgres?connect_timeout=1",
            1,
        );
        let Ok(store) = store else {
            panic!("the URL parses");
        };
        let Err(err) = store.ping().await else {
            panic!("nothing listens on port 1");
        };
        assert_eq!(ApiError::from_store(err).code(), "unavailable");
    }
}
