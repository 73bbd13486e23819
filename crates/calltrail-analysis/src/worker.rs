//! The analysis worker loop: claim a job, analyse, record the result as an event, finish the job.
//!
//! Storage is behind two small traits the binary implements ([`JobQueue`] over the job table,
//! [`ResultStore`] over the read side and the event log), so this crate stays free of database
//! drivers.
//!
//! # One job
//! 1. If the job's result event already exists (a crash after the append, before the job was
//!    marked done), the job is completed without asking the model again.
//! 2. The context is loaded: transcript, call facts, the user's prompt ids and, for a complete
//!    analysis, the call's individual analysis and the contact's other analysed calls.
//! 3. Prompt ids resolve user's own → [`WorkerConfig::system_prompts`] → a configuration
//!    failure (OpenAI only; the local analyzer needs none).
//! 4. Individual: one request with the transcript. Complete: when the contact has no other
//!    analysed call, the individual result becomes the complete one with no second request
//!    (`previous_calls_analyzed = 1`); otherwise one request with the current and at most 9
//!    previous transcripts, the oldest dropped first until the prompt fits
//!    [`WorkerConfig::max_prompt_chars`].
//! 5. Success → `analysis.individual`/`analysis.complete`, job completed. A transient failure
//!    (rate limit, 5xx, timeout, network) → the job runs again after a backoff, up to
//!    [`WorkerConfig::max_attempts`] attempts; then, or at once for any other failure,
//!    `analysis.failed` with the reason, job failed. A failing job never holds up others.
//!
//! The lease of the job in hand is extended every third of [`WorkerConfig::lease`]; on shutdown
//! the job in hand may finish within [`WorkerConfig::shutdown_grace`], else it is put back.

use std::future::Future;
use std::time::Duration;

use calltrail_core::{
    AnalysisEvent, AnalysisFailed, AnalysisInput, AnalysisKind, AnalysisMeta, AnalysisRecorded,
    LeadAnalysis,
};
use chrono::Utc;
use tracing::{info, warn, Instrument};

use crate::{AnalysisError, LeadAnalyzer};

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

/// How workers run.
#[derive(Debug, Clone)]
pub struct WorkerConfig {
    /// Pause when no job is due.
    pub poll_interval: Duration,
    /// Lease of a claimed job (extended while it runs).
    pub lease: Duration,
    /// Attempts before a transient failure becomes final.
    pub max_attempts: u32,
    /// Delay before the second attempt; doubled for each further one.
    pub retry_initial: Duration,
    /// Longest delay between attempts.
    pub retry_max: Duration,
    /// How long a job in hand may still run after shutdown is requested.
    pub shutdown_grace: Duration,
    /// Most transcript characters sent in one request.
    pub max_prompt_chars: usize,
    /// `OPENAI_INDIVIDUAL_PROMPT_ID` / `OPENAI_COMPLETE_PROMPT_ID`.
    pub system_prompts: PromptIds,
}

impl Default for WorkerConfig {
    /// 1 s polls, 2 min leases, 5 attempts 10 s → 5 min apart, 10 s grace, 120,000 characters.
    fn default() -> Self {
        Self {
            poll_interval: Duration::from_secs(1),
            lease: Duration::from_secs(120),
            max_attempts: 5,
            retry_initial: Duration::from_secs(10),
            retry_max: Duration::from_secs(300),
            shutdown_grace: Duration::from_secs(10),
            max_prompt_chars: 120_000,
            system_prompts: PromptIds::default(),
        }
    }
}

impl WorkerConfig {
    /// The wait before attempt `attempts + 1`: `retry_initial × 2^(attempts−1)`, capped.
    pub fn retry_delay(&self, attempts: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempts.saturating_sub(1).min(20));
        self.retry_initial
            .saturating_mul(factor)
            .min(self.retry_max)
    }
}

/// Earlier calls sent with a complete analysis, besides the current one.
pub const MAX_PREVIOUS_CALLS: usize =
    calltrail_core::analysis::MAX_TRANSCRIPTS_PER_COMPLETE_ANALYSIS - 1;

/// One analysis worker.
#[derive(Debug)]
pub struct Worker<Q, S> {
    name: String,
    queue: Q,
    store: S,
    analyzer: LeadAnalyzer,
    config: WorkerConfig,
}

/// How a job ended, for the log.
enum Done {
    Recorded(&'static str),
    AlreadyRecorded,
    Retry(Duration),
    Failed(&'static str),
    Gone,
}

impl<Q, S> Worker<Q, S>
where
    Q: JobQueue,
    S: ResultStore<Q::Job>,
{
    /// A worker named `name` (for logs).
    pub fn new(
        name: impl Into<String>,
        queue: Q,
        store: S,
        analyzer: LeadAnalyzer,
        config: WorkerConfig,
    ) -> Self {
        Self {
            name: name.into(),
            queue,
            store,
            analyzer,
            config,
        }
    }

    /// Claims and runs jobs until `shutdown` completes; then finishes or puts back the job in hand.
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) {
        let mut shutdown = std::pin::pin!(shutdown);
        let mut stopping = false;
        let mut backoff = self.config.poll_interval;
        info!(worker = %self.name, "analysis worker started");
        while !stopping {
            let claimed = tokio::select! {
                claimed = self.queue.claim(self.config.lease) => claimed,
                () = &mut shutdown => break,
            };
            match claimed {
                Ok(Some(job)) => {
                    backoff = self.config.poll_interval;
                    stopping = self.run_job(job, shutdown.as_mut()).await;
                }
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                        () = &mut shutdown => stopping = true,
                    }
                }
                Err(error) => {
                    warn!(worker = %self.name, error = %error, retry_in = ?backoff, "cannot claim an analysis job");
                    tokio::select! {
                        () = tokio::time::sleep(backoff) => {}
                        () = &mut shutdown => stopping = true,
                    }
                    backoff = backoff.saturating_mul(2).min(Duration::from_secs(30));
                }
            }
        }
        info!(worker = %self.name, "analysis worker stopped");
    }

    /// Runs one job with its lease kept alive; returns whether shutdown was requested meanwhile.
    async fn run_job(
        &self,
        job: Q::Job,
        mut shutdown: std::pin::Pin<&mut impl Future<Output = ()>>,
    ) -> bool {
        let span = tracing::info_span!(
            "analysis_job",
            worker = %self.name,
            execution_id = %job.execution_id(),
            kind = job.kind().as_str(),
            attempt = job.attempts(),
        );
        async {
            let mut work = Box::pin(self.process(&job));
            let mut stopping = false;
            let finished = tokio::select! {
                result = &mut work => Some(result),
                () = self.keep_lease(&job) => None,
                () = &mut shutdown => { stopping = true; None }
            };
            let finished = match finished {
                Some(result) => Some(result),
                None => tokio::select! {
                    result = &mut work => Some(result),
                    () = self.keep_lease(&job) => None,
                    () = tokio::time::sleep(self.config.shutdown_grace) => None,
                },
            };
            match finished {
                Some(Ok(done)) => log_done(&done),
                Some(Err(error)) => {
                    warn!(error = %error, "analysis job interrupted by a storage failure; its lease will expire and it runs again");
                }
                None => {
                    // Abandon the analysis (its request is cancelled) before putting the job back.
                    drop(work);
                    match self.queue.release(&job).await {
                        Ok(()) => info!("shutting down: analysis job put back"),
                        Err(error) => warn!(error = %error, "shutting down: could not put the analysis job back; it runs again when its lease expires"),
                    }
                }
            }
            stopping
        }
        .instrument(span)
        .await
    }

    /// Extends the lease every third of it; never returns.
    async fn keep_lease(&self, job: &Q::Job) {
        let every = (self.config.lease / 3).max(Duration::from_millis(10));
        loop {
            tokio::time::sleep(every).await;
            match self.queue.extend(job, self.config.lease).await {
                Ok(true) => {}
                Ok(false) => warn!("the analysis job's lease was lost (another worker may run it)"),
                Err(error) => warn!(error = %error, "cannot extend the analysis job's lease"),
            }
        }
    }

    async fn process(&self, job: &Q::Job) -> Result<Done, StoreError> {
        if self.store.already_recorded(job).await? {
            self.queue.complete(job).await?;
            return Ok(Done::AlreadyRecorded);
        }
        let Some(context) = self.store.load_context(job, MAX_PREVIOUS_CALLS).await? else {
            self.queue
                .fail(job, "the call or its transcript no longer exists")
                .await?;
            return Ok(Done::Gone);
        };
        let phone_number = Some(context.input.phone_number.clone()).filter(|p| !p.is_empty());
        match self.analyse(job, context).await {
            Ok((analysis, meta, previous_calls_analyzed)) => {
                let event = AnalysisEvent::Recorded(Box::new(AnalysisRecorded {
                    kind: job.kind(),
                    execution_id: job.execution_id().to_owned(),
                    phone_number,
                    previous_calls_analyzed,
                    analysis_timestamp: Utc::now(),
                    analysis,
                    meta,
                }));
                let event_type = event.event_type();
                self.record(job, event).await?;
                self.queue.complete(job).await?;
                Ok(Done::Recorded(event_type))
            }
            Err(error)
                if error.is_retryable_later() && job.attempts() < self.config.max_attempts =>
            {
                let mut delay = self.config.retry_delay(job.attempts());
                if let AnalysisError::RetryAfterTooLong { wait, .. } = &error {
                    delay = delay.max(*wait);
                }
                warn!(error = %error, code = error.code(), retry_in = ?delay, "analysis failed; retrying later");
                self.queue
                    .retry_later(job, delay, &error.to_string())
                    .await?;
                Ok(Done::Retry(delay))
            }
            Err(error) => {
                let mut message = error.to_string();
                if error.is_retryable_later() {
                    message = format!("{message} (gave up after {} attempts)", job.attempts());
                }
                warn!(error = %message, code = error.code(), "analysis failed for good");
                let event = AnalysisEvent::Failed(AnalysisFailed {
                    kind: job.kind(),
                    execution_id: job.execution_id().to_owned(),
                    code: error.code().to_owned(),
                    message: message.clone(),
                    attempts: job.attempts(),
                    failed_at: Utc::now(),
                });
                self.record(job, event).await?;
                self.queue.fail(job, &message).await?;
                Ok(Done::Failed(error.code()))
            }
        }
    }

    /// The analysis, its metadata and `previous_calls_analyzed`.
    async fn analyse(
        &self,
        job: &Q::Job,
        context: JobContext,
    ) -> Result<(LeadAnalysis, AnalysisMeta, i32), AnalysisError> {
        let kind = job.kind();
        let JobContext {
            mut input,
            prompts,
            current,
            other_analysed_calls,
        } = context;
        input.kind = kind;
        let prompt = prompts
            .get(kind)
            .or_else(|| self.config.system_prompts.get(kind));
        match kind {
            AnalysisKind::Individual => {
                input.previous.clear();
                fit_prompt(&mut input, self.config.max_prompt_chars);
                let (analysis, meta) = self.analyzer.analyze(prompt, &input).await?;
                Ok((analysis, meta, 0))
            }
            AnalysisKind::Complete => {
                let analysed = i32::try_from(other_analysed_calls)
                    .unwrap_or(i32::MAX)
                    .saturating_add(1);
                if other_analysed_calls == 0 {
                    if let Some((analysis, meta)) = current {
                        // The first call of a contact: its individual analysis is the complete one.
                        let meta = AnalysisMeta {
                            tokens_used: None,
                            ..meta
                        };
                        return Ok((analysis, meta, 1));
                    }
                }
                fit_prompt(&mut input, self.config.max_prompt_chars);
                let (analysis, meta) = self.analyzer.analyze(prompt, &input).await?;
                Ok((analysis, meta, analysed))
            }
        }
    }

    /// Appends a result, retrying briefly when storage fails (a paid result is worth keeping).
    async fn record(&self, job: &Q::Job, event: AnalysisEvent) -> Result<(), StoreError> {
        let mut delay = Duration::from_millis(200);
        let mut tries = 0;
        loop {
            match self.store.record(job, event.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if tries < 5 => {
                    warn!(error = %error, retry_in = ?delay, "cannot record the analysis result; retrying");
                    tokio::time::sleep(delay).await;
                    delay = delay.saturating_mul(2);
                    tries += 1;
                }
                Err(error) => return Err(error),
            }
        }
    }
}

fn log_done(done: &Done) {
    match done {
        Done::Recorded(event_type) => info!(event_type, "analysis recorded"),
        Done::AlreadyRecorded => {
            info!("analysis result already recorded; completed without a new request");
        }
        Done::Retry(delay) => info!(retry_in = ?delay, "analysis job will run again"),
        Done::Failed(code) => info!(code, "analysis job failed"),
        Done::Gone => warn!("the call or its transcript no longer exists; analysis job dropped"),
    }
}

/// Keeps the transcripts within `max_chars`: the oldest previous calls go first; a current
/// transcript longer than the limit keeps its beginning and its end.
pub fn fit_prompt(input: &mut AnalysisInput, max_chars: usize) {
    let keep = calltrail_core::analysis::MAX_TRANSCRIPTS_PER_COMPLETE_ANALYSIS.saturating_sub(1);
    let skip = input.previous.len().saturating_sub(keep);
    input.previous.drain(..skip);
    let chars = |s: &str| s.chars().count();
    let mut total = chars(&input.transcript)
        + input
            .previous
            .iter()
            .map(|p| chars(&p.transcript))
            .sum::<usize>();
    while total > max_chars && !input.previous.is_empty() {
        let dropped = input.previous.remove(0);
        total -= chars(&dropped.transcript);
    }
    if total > max_chars {
        input.transcript = shorten_middle(&input.transcript, max_chars);
    }
}

/// The first and last halves of `max_chars` characters of `s`, joined by a marker.
fn shorten_middle(s: &str, max_chars: usize) -> String {
    const MARKER: &str = "\n[… transcript shortened …]\n";
    let half = max_chars.saturating_sub(MARKER.chars().count()) / 2;
    let head: String = s.chars().take(half).collect();
    let total = s.chars().count();
    let tail: String = s.chars().skip(total.saturating_sub(half)).collect();
    format!("{head}{MARKER}{tail}")
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use calltrail_core::PreviousCall;

    fn previous(id: usize, len: usize) -> PreviousCall {
        PreviousCall {
            execution_id: id.to_string(),
            transcript: "x".repeat(len),
            call_date: None,
            call_duration_seconds: None,
            analysis: None,
        }
    }

    #[test]
    fn the_oldest_calls_go_first_when_the_prompt_is_too_long() {
        let mut input = AnalysisInput::individual("e", "+14155550132", &"y".repeat(100));
        input.kind = AnalysisKind::Complete;
        input.previous = (0..12).map(|i| previous(i, 100)).collect();
        fit_prompt(&mut input, 10_000);
        assert_eq!(input.previous.len(), 9, "at most 10 transcripts");
        assert_eq!(input.previous[0].execution_id, "3");
        fit_prompt(&mut input, 450);
        let ids: Vec<&str> = input
            .previous
            .iter()
            .map(|p| p.execution_id.as_str())
            .collect();
        assert_eq!(ids, ["9", "10", "11"]);
        assert_eq!(input.transcript.len(), 100);
    }

    #[test]
    fn an_overlong_transcript_keeps_its_ends() {
        let mut input = AnalysisInput::individual("e", "+1", &format!("A{}Z", "m".repeat(1000)));
        fit_prompt(&mut input, 200);
        assert!(input.transcript.chars().count() <= 200);
        assert!(input.transcript.starts_with('A') && input.transcript.ends_with('Z'));
    }

    #[test]
    fn retry_delays_double_up_to_the_cap() {
        let config = WorkerConfig::default();
        assert_eq!(config.retry_delay(1), Duration::from_secs(10));
        assert_eq!(config.retry_delay(3), Duration::from_secs(40));
        assert_eq!(config.retry_delay(30), Duration::from_secs(300));
    }
}
