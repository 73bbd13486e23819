//! One job, start to end: skip it when its result is already recorded, load its context,
//! analyse (the first call of a contact needs no second request), and record the outcome —
//! the result, a retry later for a transient failure while attempts remain, else the failure.

use std::time::Duration;

use calltrail_core::{
    AnalysisEvent, AnalysisFailed, AnalysisKind, AnalysisMeta, AnalysisRecorded, Backoff,
    LeadAnalysis,
};
use chrono::Utc;
use tracing::{info, warn};

use super::{
    fit_prompt, Job, JobContext, JobQueue, ResultStore, StoreError, Worker, MAX_PREVIOUS_CALLS,
};
use crate::AnalysisError;

/// Waits between attempts to record a result when storage fails: 0.2 s doubling, five retries
/// (a paid result is worth keeping).
const RECORD_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(200), Duration::from_millis(3200));
/// Retries of a failed record before the job is left to its lease.
const RECORD_RETRIES: u32 = 5;

/// How a job ended, for the log.
pub(super) enum Done {
    Recorded(&'static str),
    AlreadyRecorded,
    Retry(Duration),
    Failed(&'static str),
    Gone,
}

impl Done {
    /// One log line for the outcome.
    pub(super) fn log(&self) {
        match self {
            Done::Recorded(event_type) => info!(event_type, "analysis recorded"),
            Done::AlreadyRecorded => {
                info!("analysis result already recorded; completed without a new request");
            }
            Done::Retry(delay) => info!(
                retry_in_secs = delay.as_secs_f64(),
                "analysis job will run again"
            ),
            Done::Failed(code) => info!(code, "analysis job failed"),
            Done::Gone => {
                warn!("the call or its transcript no longer exists; analysis job dropped");
            }
        }
    }
}

impl<Q, S> Worker<Q, S>
where
    Q: JobQueue,
    S: ResultStore<Q::Job>,
{
    /// Runs `job` to one of its ends; a storage failure leaves it to its lease.
    pub(super) async fn process(&self, job: &Q::Job) -> Result<Done, StoreError> {
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
                warn!(error = %error, code = error.code(), retry_in_secs = delay.as_secs_f64(), "analysis failed; retrying later");
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

    /// Appends a result, retrying on [`RECORD_BACKOFF`] when storage fails.
    async fn record(&self, job: &Q::Job, event: AnalysisEvent) -> Result<(), StoreError> {
        let mut retries = RECORD_BACKOFF.retries();
        loop {
            match self.store.record(job, event.clone()).await {
                Ok(()) => return Ok(()),
                Err(error) if retries.count() < RECORD_RETRIES => {
                    let delay = retries.next_delay();
                    warn!(error = %error, retry_in_secs = delay.as_secs_f64(), "cannot record the analysis result; retrying");
                    tokio::time::sleep(delay).await;
                }
                Err(error) => return Err(error),
            }
        }
    }
}
