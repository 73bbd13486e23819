//! calltrail-analysis — lead analysis of call transcripts.
//!
//! Modules:
//! - [`openai`]: the OpenAI Responses API client, with retries and backoff.
//! - [`local`]: the keyword heuristic used when `OPENAI_API_KEY` is unset.
//! - [`error`]: [`AnalysisError`], each failure as one actionable sentence.
//! - [`responses`]: the Responses API wire format (request body, output text).
//! - [`retry`]: `Retry-After` hints and the jitter source for the OpenAI client's [`Backoff`].
//! - [`worker`]: the analysis worker — storage ports (traits the binary implements), config,
//!   the run loop, the job policy and prompt trimming, one file each.
//!
//! [`LeadAnalyzer`] picks OpenAI or the local analyzer; the result types
//! ([`LeadAnalysis`], [`AnalysisMeta`], [`AnalysisInput`]) live in `calltrail-core`.

pub mod error;
pub mod local;
pub mod openai;
pub mod responses;
pub mod retry;
pub mod worker;

pub use calltrail_core::Backoff;
pub use calltrail_core::{AnalysisInput, AnalysisKind, AnalysisMeta, LeadAnalysis};
pub use error::AnalysisError;
pub use local::analyze_locally;
pub use openai::{ApiKey, OpenAiClient, OpenAiConfig};
pub use responses::ResponseFormat;
pub use worker::{JobContext, JobQueue, PromptIds, ResultStore, Worker, WorkerConfig};

/// The analyzer a worker uses: OpenAI when a key is configured, else the local heuristic.
#[derive(Debug, Clone)]
pub enum LeadAnalyzer {
    /// The OpenAI Responses API.
    OpenAi(OpenAiClient),
    /// The local keyword heuristic (no network).
    Local,
}

impl LeadAnalyzer {
    /// OpenAI with this configuration, or the local analyzer when there is none.
    pub fn from_config(config: Option<OpenAiConfig>) -> Result<Self, AnalysisError> {
        match config {
            Some(config) => OpenAiClient::new(config).map(LeadAnalyzer::OpenAi),
            None => Ok(LeadAnalyzer::Local),
        }
    }

    /// Analyses `input`; `prompt_id` (already resolved user → system default) is needed for OpenAI only.
    pub async fn analyze(
        &self,
        prompt_id: Option<&str>,
        input: &AnalysisInput,
    ) -> Result<(LeadAnalysis, AnalysisMeta), AnalysisError> {
        match self {
            LeadAnalyzer::OpenAi(client) => {
                let prompt_id = prompt_id.ok_or(AnalysisError::MissingPromptId(input.kind))?;
                client.analyze(prompt_id, input).await
            }
            LeadAnalyzer::Local => Ok(analyze_locally(input)),
        }
    }
}
