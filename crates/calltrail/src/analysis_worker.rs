//! The analysis worker's storage: `calltrail-analysis`'s [`JobQueue`] and [`ResultStore`] over
//! the read side (the job table, the analysis context) and the event log (result events).

use std::time::Duration;

use calltrail_analysis::worker::{Job, JobContext, JobQueue, PromptIds, ResultStore, StoreError};
use calltrail_core::analysis::{
    recorded_event_type, versioned_event_type, ANALYSIS_EVENT_SCHEMA_VERSION,
};
use calltrail_core::{AnalysisEvent, AnalysisInput, AnalysisKind};
use calltrail_eventlog::{AppendOutcome, Appender, EventLog, NewEvent};
use calltrail_projections::jobs::ClaimedJob;
use calltrail_projections::{AnalysisJobs, ReadStore};
use serde_json::json;

/// A claimed row of `analysis_jobs`.
#[derive(Debug, Clone)]
pub struct QueuedJob(pub ClaimedJob);

impl Job for QueuedJob {
    fn kind(&self) -> AnalysisKind {
        self.0.kind
    }

    fn execution_id(&self) -> &str {
        &self.0.execution_id
    }

    fn attempts(&self) -> u32 {
        u32::try_from(self.0.attempts).unwrap_or(0)
    }
}

impl QueuedJob {
    /// The type under which this run records `base` (`analysis.*`, `.vN` for a re-run).
    fn event_type(&self, base: &str) -> String {
        versioned_event_type(base, u32::try_from(self.0.version).unwrap_or(1))
    }
}

/// The job table as a [`JobQueue`].
#[derive(Debug, Clone)]
pub struct DbQueue {
    jobs: AnalysisJobs,
}

impl DbQueue {
    /// The job queue over `store`'s pool.
    pub fn new(store: &ReadStore) -> Self {
        Self {
            jobs: store.analysis_jobs(),
        }
    }
}

/// Logs a state change that found the job no longer held by this claim.
fn lost(changed: bool, what: &str) {
    if !changed {
        tracing::warn!(
            action = what,
            "the analysis job was no longer held by this worker"
        );
    }
}

impl JobQueue for DbQueue {
    type Job = QueuedJob;

    async fn claim(&self, lease: Duration) -> Result<Option<QueuedJob>, StoreError> {
        Ok(self.jobs.claim(lease).await?.map(QueuedJob))
    }

    async fn extend(&self, job: &QueuedJob, lease: Duration) -> Result<bool, StoreError> {
        Ok(self.jobs.extend(&job.0, lease).await?)
    }

    async fn complete(&self, job: &QueuedJob) -> Result<(), StoreError> {
        lost(self.jobs.complete(&job.0).await?, "complete");
        Ok(())
    }

    async fn retry_later(
        &self,
        job: &QueuedJob,
        delay: Duration,
        reason: &str,
    ) -> Result<(), StoreError> {
        let changed = self.jobs.retry_later(&job.0, delay, reason).await?;
        lost(changed, "retry later");
        Ok(())
    }

    async fn fail(&self, job: &QueuedJob, reason: &str) -> Result<(), StoreError> {
        lost(self.jobs.fail(&job.0, reason).await?, "fail");
        Ok(())
    }

    async fn release(&self, job: &QueuedJob) -> Result<(), StoreError> {
        lost(self.jobs.release(&job.0).await?, "release");
        Ok(())
    }
}

/// Contexts from the read side, results into the event log.
#[derive(Debug, Clone)]
pub struct DbResults {
    log: EventLog,
    appender: Appender,
    store: ReadStore,
}

impl DbResults {
    /// Results appended through `appender`, contexts read from `store`.
    pub fn new(log: EventLog, appender: Appender, store: ReadStore) -> Self {
        Self {
            log,
            appender,
            store,
        }
    }
}

impl ResultStore<QueuedJob> for DbResults {
    async fn already_recorded(&self, job: &QueuedJob) -> Result<bool, StoreError> {
        let event_type = job.event_type(recorded_event_type(job.0.kind));
        let job = &job.0;
        Ok(self
            .log
            .exists(job.user_id, &job.provider, &job.execution_id, &event_type)
            .await?)
    }

    async fn load_context(
        &self,
        job: &QueuedJob,
        max_previous: usize,
    ) -> Result<Option<JobContext>, StoreError> {
        let job = &job.0;
        let max_previous = i64::try_from(max_previous).unwrap_or(i64::MAX);
        let Some(context) = self
            .store
            .analysis_context(
                job.user_id,
                &job.provider,
                &job.execution_id,
                job.kind,
                max_previous,
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(JobContext {
            input: AnalysisInput {
                kind: job.kind,
                execution_id: job.execution_id.clone(),
                phone_number: context.phone_number.unwrap_or_default(),
                transcript: context.transcript,
                call_duration_seconds: context.call_duration_seconds,
                call_date: context.call_date,
                contact: context.contact,
                previous: context.previous,
            },
            prompts: PromptIds {
                individual: context.prompts.individual_prompt_id,
                complete: context.prompts.complete_prompt_id,
            },
            current: context.current,
            other_analysed_calls: u32::try_from(context.other_analysed_calls).unwrap_or(u32::MAX),
        }))
    }

    async fn record(&self, job: &QueuedJob, event: AnalysisEvent) -> Result<(), StoreError> {
        let event_type = job.event_type(event.event_type());
        let job = &job.0;
        let new = NewEvent {
            tenant_id: job.user_id,
            provider: job.provider.clone(),
            stream_id: job.execution_id.clone(),
            event_type: event_type.clone(),
            schema_version: ANALYSIS_EVENT_SCHEMA_VERSION,
            occurred_at: event.occurred_at(),
            data: event.data_json()?,
            payload: None,
            metadata: json!({
                "source": "analysis worker",
                "job_id": job.id,
                "attempt": job.attempts,
                "version": job.version,
            })
            .to_string(),
        };
        match self.appender.append(new).await? {
            AppendOutcome::Appended { position } => {
                tracing::debug!(position, event_type, "analysis event appended");
            }
            AppendOutcome::Duplicate { position, .. } => {
                tracing::info!(
                    position,
                    event_type,
                    "analysis event already recorded; the earlier one stands"
                );
            }
        }
        Ok(())
    }
}
