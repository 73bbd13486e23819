//! [`AnalysisError`]: every way an analysis can fail, worded so a person knows what to do.

use std::time::Duration;

use calltrail_core::{AnalysisKind, AnalysisParseError};

/// Why an analysis failed. `Display` is one sentence meant for the transcript's
/// `analysis_error` and for operators; [`AnalysisError::is_retryable_later`] says whether the
/// job may succeed if re-run later.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The client could not be built from its configuration.
    #[error("invalid OpenAI configuration: {0}")]
    Config(String),
    /// No prompt id is configured for this kind of analysis.
    #[error("no OpenAI prompt id for {kind} analyses: set {variable} or the user's own prompt id", kind = .0.as_str(), variable = prompt_variable(*.0))]
    MissingPromptId(AnalysisKind),
    /// The prompt id is not of the `pmpt_…` form; nothing was sent.
    #[error("`{0}` is not an OpenAI prompt id (expected `pmpt_` followed by letters, digits, `_` or `-`)")]
    InvalidPromptId(String),
    /// OpenAI does not know the prompt id.
    #[error("prompt id {prompt_id} not found ({status} from OpenAI): {message}")]
    PromptNotFound {
        /// The prompt id sent.
        prompt_id: String,
        /// The HTTP status (404, or 400 naming the prompt).
        status: u16,
        /// OpenAI's message.
        message: String,
    },
    /// The API key was refused (401/403).
    #[error("OpenAI refused the API key ({status}): {message}; check OPENAI_API_KEY")]
    Unauthorized {
        /// The HTTP status.
        status: u16,
        /// OpenAI's message.
        message: String,
    },
    /// The account is out of quota (429 `insufficient_quota`); retrying cannot help.
    #[error("OpenAI quota exhausted (429 {code}): {message}; add credits to the OpenAI account, then run `calltrail analysis retry`")]
    QuotaExhausted {
        /// OpenAI's error code.
        code: String,
        /// OpenAI's message.
        message: String,
    },
    /// Another 4xx: the request itself is wrong.
    #[error("OpenAI rejected the request ({status}): {message}")]
    Rejected {
        /// The HTTP status.
        status: u16,
        /// OpenAI's message.
        message: String,
    },
    /// Every attempt was rate-limited (429).
    #[error("OpenAI rate limit persisted after {attempts} attempts: {message}")]
    RateLimited {
        /// Requests sent.
        attempts: u32,
        /// OpenAI's last message.
        message: String,
    },
    /// Every attempt met a server error (5xx, 408, 409).
    #[error("OpenAI server error ({status}) persisted after {attempts} attempts: {message}")]
    ServerError {
        /// The last HTTP status.
        status: u16,
        /// Requests sent.
        attempts: u32,
        /// OpenAI's last message.
        message: String,
    },
    /// Every attempt timed out.
    #[error("OpenAI request timed out after {timeout_ms} ms ({attempts} attempts)")]
    Timeout {
        /// The per-request timeout.
        timeout_ms: u128,
        /// Requests sent.
        attempts: u32,
    },
    /// OpenAI could not be reached (DNS, TCP, TLS, connection reset).
    #[error("could not reach OpenAI at {base_url} after {attempts} attempts: {source}")]
    Unreachable {
        /// The configured base URL.
        base_url: String,
        /// Requests sent.
        attempts: u32,
        /// The transport error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
    /// OpenAI asked to wait longer than this client is willing to in one job.
    #[error("OpenAI asked to wait {} s before retrying, more than the {} s allowed in one job ({attempts} attempts so far)", .wait.as_secs(), .limit.as_secs())]
    RetryAfterTooLong {
        /// What OpenAI asked for.
        wait: Duration,
        /// The configured limit.
        limit: Duration,
        /// Requests sent.
        attempts: u32,
    },
    /// A 200 whose `status` is `failed`.
    #[error("OpenAI could not complete the response ({code}): {message}")]
    ResponseFailed {
        /// The response's `error.code`.
        code: String,
        /// The response's `error.message`.
        message: String,
    },
    /// A 200 whose `status` is `incomplete`, `cancelled`, … instead of `completed`.
    #[error("OpenAI response ended as `{status}`{}", .reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default())]
    NotCompleted {
        /// The response's `status`.
        status: String,
        /// `incomplete_details.reason`, e.g. `max_output_tokens`.
        reason: Option<String>,
    },
    /// The model refused to answer.
    #[error("the model refused to analyse the transcript: {0}")]
    Refused(String),
    /// The response holds no `output_text` part.
    #[error("OpenAI response has no output text")]
    NoOutputText,
    /// The 200 body is not a Responses API object.
    #[error("OpenAI answered with something that is not a Responses API object: {0}")]
    InvalidResponse(String),
    /// The model's text is not a usable lead analysis.
    #[error(transparent)]
    Output(#[from] AnalysisParseError),
}

impl AnalysisError {
    /// `true` when the failure is transient (rate limits, server errors, timeouts, network):
    /// the job may be queued again later. `false` when re-running cannot help until
    /// something is fixed (configuration, prompt id, quota, request, model output).
    pub fn is_retryable_later(&self) -> bool {
        match self {
            AnalysisError::RateLimited { .. }
            | AnalysisError::ServerError { .. }
            | AnalysisError::Timeout { .. }
            | AnalysisError::Unreachable { .. }
            | AnalysisError::RetryAfterTooLong { .. } => true,
            AnalysisError::ResponseFailed { code, .. } => is_transient_response_code(code),
            _ => false,
        }
    }

    /// A stable snake_case code for metrics and storage.
    pub fn code(&self) -> &'static str {
        match self {
            AnalysisError::Config(_) => "config",
            AnalysisError::MissingPromptId(_) => "missing_prompt_id",
            AnalysisError::InvalidPromptId(_) => "invalid_prompt_id",
            AnalysisError::PromptNotFound { .. } => "prompt_not_found",
            AnalysisError::Unauthorized { .. } => "unauthorized",
            AnalysisError::QuotaExhausted { .. } => "quota_exhausted",
            AnalysisError::Rejected { .. } => "rejected",
            AnalysisError::RateLimited { .. } => "rate_limited",
            AnalysisError::ServerError { .. } => "server_error",
            AnalysisError::Timeout { .. } => "timeout",
            AnalysisError::Unreachable { .. } => "unreachable",
            AnalysisError::RetryAfterTooLong { .. } => "retry_after_too_long",
            AnalysisError::ResponseFailed { .. } => "response_failed",
            AnalysisError::NotCompleted { .. } => "not_completed",
            AnalysisError::Refused(_) => "refused",
            AnalysisError::NoOutputText => "no_output_text",
            AnalysisError::InvalidResponse(_) => "invalid_response",
            AnalysisError::Output(_) => "invalid_model_output",
        }
    }
}

/// `error.code` values of a failed response that a later attempt may not meet.
pub(crate) fn is_transient_response_code(code: &str) -> bool {
    matches!(code, "server_error" | "rate_limit_exceeded")
}

fn prompt_variable(kind: AnalysisKind) -> &'static str {
    match kind {
        AnalysisKind::Individual => "OPENAI_INDIVIDUAL_PROMPT_ID",
        AnalysisKind::Complete => "OPENAI_COMPLETE_PROMPT_ID",
    }
}
