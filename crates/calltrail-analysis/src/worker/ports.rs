//! The worker's storage ports: the job queue and the result store the binary implements over
//! the database, and what passes through them.

use std::future::Future;
use std::time::Duration;

use calltrail_core::{AnalysisEvent, AnalysisInput, AnalysisKind, AnalysisMeta, LeadAnalysis};

/// A storage failure (kept whole for the log).
pub type StoreError = Box<dyn std::error::Error + Send + Sync + 'static>;

/// A job as the worker sees it.
pub trait Job: Send + Sync {
    /// Individual or complete.
    fn kind(&self) -> AnalysisKind;
    /// The call.
    fn execution_id(&self) -> &str;
    /// Attempts including the current one.
    fn attempts(&self) -> u32;
}

/// The job queue.
pub trait JobQueue: Send + Sync {
    /// A claimed job.
    type Job: Job;
    /// Claims the next due job with a lease.
    fn claim(
        &self,
        lease: Duration,
    ) -> impl Future<Output = Result<Option<Self::Job>, StoreError>> + Send;
    /// Extends the lease; `false` when the job is no longer this claim's.
    fn extend(
        &self,
        job: &Self::Job,
        lease: Duration,
    ) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// Marks the job done.
    fn complete(&self, job: &Self::Job) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Runs the job again after `delay`.
    fn retry_later(
        &self,
        job: &Self::Job,
        delay: Duration,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Gives the job up.
    fn fail(
        &self,
        job: &Self::Job,
        reason: &str,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
    /// Puts the job back untouched (shutdown).
    fn release(&self, job: &Self::Job) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Where contexts come from and results go.
pub trait ResultStore<J>: Send + Sync {
    /// Whether the job's result event already exists.
    fn already_recorded(&self, job: &J) -> impl Future<Output = Result<bool, StoreError>> + Send;
    /// What the analysis needs (`None` when the call or its transcript is gone).
    fn load_context(
        &self,
        job: &J,
        max_previous: usize,
    ) -> impl Future<Output = Result<Option<JobContext>, StoreError>> + Send;
    /// Appends the result event (a duplicate is fine).
    fn record(
        &self,
        job: &J,
        event: AnalysisEvent,
    ) -> impl Future<Output = Result<(), StoreError>> + Send;
}

/// Prompt ids for the two kinds of analysis.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PromptIds {
    /// For individual analyses.
    pub individual: Option<String>,
    /// For complete analyses.
    pub complete: Option<String>,
}

impl PromptIds {
    /// The id for `kind`.
    pub fn get(&self, kind: AnalysisKind) -> Option<&str> {
        match kind {
            AnalysisKind::Individual => self.individual.as_deref(),
            AnalysisKind::Complete => self.complete.as_deref(),
        }
    }
}

/// What one job needs.
#[derive(Debug, Clone, PartialEq)]
pub struct JobContext {
    /// The analyzer's input (`previous`: the contact's other analysed calls, oldest first).
    pub input: AnalysisInput,
    /// The user's own prompt ids.
    pub prompts: PromptIds,
    /// The call's individual analysis (complete jobs).
    pub current: Option<(LeadAnalysis, AnalysisMeta)>,
    /// How many other calls of the contact are analysed (complete jobs; may exceed `previous`).
    pub other_analysed_calls: u32,
}
