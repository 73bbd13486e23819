//! [`Worker`] and its loop: claim a job, run it with its lease kept alive, back off while
//! storage fails, and on shutdown let the job in hand finish within the grace or put it back.

use std::future::Future;
use std::time::Duration;

use calltrail_core::Backoff;
use tracing::{info, warn, Instrument};

use super::{Job, JobQueue, ResultStore, WorkerConfig};
use crate::LeadAnalyzer;

/// Waits between failed claims: from the poll interval, doubling up to this.
const MAX_CLAIM_BACKOFF: Duration = Duration::from_secs(30);

/// One analysis worker.
#[derive(Debug)]
pub struct Worker<Q, S> {
    pub(super) name: String,
    pub(super) queue: Q,
    pub(super) store: S,
    pub(super) analyzer: LeadAnalyzer,
    pub(super) config: WorkerConfig,
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
        let mut claim_failures =
            Backoff::new(self.config.poll_interval, MAX_CLAIM_BACKOFF).retries();
        info!(worker = %self.name, "analysis worker started");
        while !stopping {
            let claimed = tokio::select! {
                claimed = self.queue.claim(self.config.lease) => claimed,
                () = &mut shutdown => break,
            };
            match claimed {
                Ok(Some(job)) => {
                    claim_failures.reset();
                    stopping = self.run_job(job, shutdown.as_mut()).await;
                }
                Ok(None) => {
                    tokio::select! {
                        () = tokio::time::sleep(self.config.poll_interval) => {}
                        () = &mut shutdown => stopping = true,
                    }
                }
                Err(error) => {
                    let delay = claim_failures.next_delay();
                    warn!(worker = %self.name, error = %error, retry_in_secs = delay.as_secs_f64(), "cannot claim an analysis job");
                    tokio::select! {
                        () = tokio::time::sleep(delay) => {}
                        () = &mut shutdown => stopping = true,
                    }
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
                Some(Ok(done)) => done.log(),
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
}
