//! The analysis job queue (`analysis_jobs`): filled by the live projector in its batch
//! transaction, drained by analysis workers. Not a read table: replay never touches it.
//!
//! # Life of a job
//! `pending` → claimed (`processing`, `attempts + 1`, a lease) → `completed`, `failed`, or
//! back to `pending` with a later `next_attempt_at` (retry) or at once (released on shutdown).
//! A `processing` job whose lease ran out (its worker died) is claimable again; workers extend
//! the lease of the job they hold. The attempt count is the claim's fencing token: a worker
//! that lost its job (lease expired, claimed again) can no longer change it.
//!
//! # Claim order
//! `FOR UPDATE SKIP LOCKED`, oldest `next_attempt_at` first. A `complete` job is not claimable
//! while another complete job of the same user + phone holds a live lease, or while one for an
//! earlier call (by `call_created_at`, then id) is still pending or processing: a contact's
//! complete analyses run one at a time, in call order, so the later one sees every earlier call.
//!
//! The transcript's `analysis_status` follows the individual job: `processing` when claimed,
//! `pending` when put back (with the reason of a retry as its `analysis_error`), `failed` when given up (a read-side status; the `analysis.*` events
//! decide it for replay).

use std::collections::BTreeMap;
use std::time::Duration;

use calltrail_core::AnalysisKind;
use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::fold::JobRequest;
use crate::{Error, ReadStore};

/// A job a worker holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedJob {
    /// Job id.
    pub id: i64,
    /// The tenant.
    pub user_id: Uuid,
    /// Individual or complete.
    pub kind: AnalysisKind,
    /// The call's provider.
    pub provider: String,
    /// The call.
    pub execution_id: String,
    /// The contact's phone.
    pub phone_number: Option<String>,
    /// Attempts including this one (the claim's fencing token).
    pub attempts: i32,
    /// The run: 1, then one more each time `calltrail analysis retry` re-queues the job.
    pub version: i32,
}

/// One recent job error (`calltrail analysis status`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct JobError {
    /// The call.
    pub execution_id: String,
    /// `individual` or `complete`.
    pub kind: String,
    /// The job's state now.
    pub state: String,
    /// Attempts made.
    pub attempts: i32,
    /// The last error.
    pub error: String,
    /// When the job last changed.
    pub updated_at: DateTime<Utc>,
}

/// The queue at a glance (`calltrail analysis status`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QueueStatus {
    /// Jobs by state (every state present, 0 when none).
    pub counts: BTreeMap<String, i64>,
    /// Age in seconds of the oldest pending job.
    pub oldest_pending_seconds: Option<f64>,
    /// The most recent errors, newest first.
    pub last_errors: Vec<JobError>,
}

/// Every job state.
pub const JOB_STATES: [&str; 4] = ["pending", "processing", "completed", "failed"];

/// Inserts the jobs a projector batch asks for; existing ones are left alone, except a finished
/// complete job that a newer individual run asks for: it is re-queued as its next version.
pub(crate) async fn enqueue(tx: &Transaction<'_>, jobs: &[JobRequest]) -> Result<(), Error> {
    if jobs.is_empty() {
        return Ok(());
    }
    let user_id: Vec<Uuid> = jobs.iter().map(|j| j.user_id).collect();
    let kind: Vec<&str> = jobs.iter().map(|j| j.kind.as_str()).collect();
    let provider: Vec<&str> = jobs.iter().map(|j| j.provider.as_str()).collect();
    let execution_id: Vec<&str> = jobs.iter().map(|j| j.execution_id.as_str()).collect();
    let phone: Vec<Option<&str>> = jobs.iter().map(|j| j.phone_number.as_deref()).collect();
    let created: Vec<DateTime<Utc>> = jobs.iter().map(|j| j.call_created_at).collect();
    let after: Vec<i32> = jobs.iter().map(|j| j.after_version).collect();
    tx.execute(
        "INSERT INTO public.analysis_jobs
                (user_id, kind, provider, execution_id, phone_number, call_created_at,
                 after_version)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::text[],
                              $6::timestamptz[], $7::int4[])
         ON CONFLICT (user_id, kind, provider, execution_id) DO UPDATE
            SET state = 'pending', attempts = 0, next_attempt_at = now(), lease_until = NULL,
                last_error = NULL, version = analysis_jobs.version + 1,
                after_version = EXCLUDED.after_version, updated_at = now()
          WHERE analysis_jobs.kind = 'complete'
            AND analysis_jobs.state IN ('completed', 'failed')
            AND analysis_jobs.after_version < EXCLUDED.after_version",
        &[
            &user_id,
            &kind,
            &provider,
            &execution_id,
            &phone,
            &created,
            &after,
        ],
    )
    .await?;
    Ok(())
}

/// The analysis job queue (`analysis_jobs`) over the read side's pool (cheap to clone): what
/// the analysis workers claim and settle, and what `calltrail analysis` reports and re-queues.
#[derive(Debug, Clone)]
pub struct AnalysisJobs {
    store: ReadStore,
}

impl AnalysisJobs {
    /// The job queue over `store`'s pool.
    pub fn new(store: &ReadStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    async fn client(&self) -> Result<Object, Error> {
        self.store.client().await
    }

    /// Claims the next due job (see the module documentation), with a lease of `lease`.
    pub async fn claim(&self, lease: Duration) -> Result<Option<ClaimedJob>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "WITH candidate AS (
                    SELECT j.id FROM analysis_jobs j
                     WHERE j.state IN ('pending', 'processing')
                       AND (j.state = 'pending' OR j.lease_until < now())
                       AND j.next_attempt_at <= now()
                       AND (j.kind = 'individual' OR (NOT EXISTS (
                            SELECT 1 FROM analysis_jobs o
                             WHERE o.kind = 'complete' AND o.state IN ('pending', 'processing')
                               AND o.user_id = j.user_id AND o.phone_number = j.phone_number
                               AND o.id <> j.id
                               AND ((o.state = 'processing' AND o.lease_until >= now())
                                    OR (o.call_created_at, o.id) < (j.call_created_at, j.id)))
                            -- and after its own call's individual run (both re-queued by
                            -- `analysis retry --all`: the complete one uses the new result).
                            AND NOT EXISTS (
                            SELECT 1 FROM analysis_jobs i
                             WHERE i.kind = 'individual' AND i.state IN ('pending', 'processing')
                               AND i.user_id = j.user_id AND i.execution_id = j.execution_id
                               AND i.provider = j.provider)))
                     ORDER BY j.next_attempt_at, j.id
                     LIMIT 1
                     FOR UPDATE OF j SKIP LOCKED
                 ), claimed AS (
                    UPDATE analysis_jobs j
                       SET state = 'processing', attempts = j.attempts + 1,
                           lease_until = now() + make_interval(secs => $1), updated_at = now()
                      FROM candidate WHERE j.id = candidate.id
                    RETURNING j.id, j.user_id, j.kind, j.provider, j.execution_id,
                              j.phone_number, j.attempts, j.version
                 ), marked AS (
                    UPDATE transcripts t
                       SET analysis_status = 'processing', analysis_error = NULL,
                           updated_at = now()
                      FROM claimed c
                     WHERE c.kind = 'individual' AND t.user_id = c.user_id
                       AND t.execution_id = c.execution_id AND t.provider = c.provider
                       AND t.analysis_status IN ('pending', 'failed')
                 )
                 SELECT * FROM claimed",
                &[&lease.as_secs_f64()],
            )
            .await?;
        let Some(row) = row else {
            return Ok(None);
        };
        let kind: String = row.try_get("kind")?;
        Ok(Some(ClaimedJob {
            id: row.try_get("id")?,
            user_id: row.try_get("user_id")?,
            kind: parse_kind(&kind)?,
            provider: row.try_get("provider")?,
            execution_id: row.try_get("execution_id")?,
            phone_number: row.try_get("phone_number")?,
            attempts: row.try_get("attempts")?,
            version: row.try_get("version")?,
        }))
    }

    /// Extends the lease of a held job; `false` when the job is no longer this claim's.
    pub async fn extend(&self, job: &ClaimedJob, lease: Duration) -> Result<bool, Error> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE analysis_jobs SET lease_until = now() + make_interval(secs => $3)
                  WHERE id = $1 AND attempts = $2 AND state = 'processing'",
                &[&job.id, &job.attempts, &lease.as_secs_f64()],
            )
            .await?;
        Ok(n > 0)
    }

    /// Marks a held job done.
    pub async fn complete(&self, job: &ClaimedJob) -> Result<bool, Error> {
        let client = self.client().await?;
        let n = client
            .execute(
                "UPDATE analysis_jobs
                    SET state = 'completed', lease_until = NULL, updated_at = now()
                  WHERE id = $1 AND attempts = $2 AND state = 'processing'",
                &[&job.id, &job.attempts],
            )
            .await?;
        Ok(n > 0)
    }

    /// Puts a held job back to run again after `delay` (a transient failure, `reason`).
    pub async fn retry_later(
        &self,
        job: &ClaimedJob,
        delay: Duration,
        reason: &str,
    ) -> Result<bool, Error> {
        self.put_back(job, Some(delay), Some(reason)).await
    }

    /// Puts a held job back at once without counting the attempt (graceful shutdown).
    pub async fn release(&self, job: &ClaimedJob) -> Result<bool, Error> {
        self.put_back(job, None, None).await
    }

    async fn put_back(
        &self,
        job: &ClaimedJob,
        delay: Option<Duration>,
        reason: Option<&str>,
    ) -> Result<bool, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let released = delay.is_none();
        let seconds = delay.unwrap_or_default().as_secs_f64();
        let n = tx
            .execute(
                "UPDATE analysis_jobs
                    SET state = 'pending', lease_until = NULL, updated_at = now(),
                        next_attempt_at = now() + make_interval(secs => $3),
                        attempts = CASE WHEN $4 THEN greatest(attempts - 1, 0) ELSE attempts END,
                        last_error = coalesce($5, last_error)
                  WHERE id = $1 AND attempts = $2 AND state = 'processing'",
                &[&job.id, &job.attempts, &seconds, &released, &reason],
            )
            .await?;
        if n > 0 && job.kind == AnalysisKind::Individual {
            // A retry shows why it waits (the transcript's `next_attempt_at` says until when).
            tx.execute(
                "UPDATE transcripts
                    SET analysis_status = 'pending', updated_at = now(),
                        analysis_error = coalesce($3, analysis_error)
                  WHERE user_id = $1 AND execution_id = $2 AND provider = $4
                    AND analysis_status = 'processing'",
                &[&job.user_id, &job.execution_id, &reason, &job.provider],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Gives a held job up for good with `reason` (also shown on an individual job's transcript
    /// unless the call's analysis already succeeded).
    pub async fn fail(&self, job: &ClaimedJob, reason: &str) -> Result<bool, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let n = tx
            .execute(
                "UPDATE analysis_jobs
                    SET state = 'failed', lease_until = NULL, last_error = $3, updated_at = now()
                  WHERE id = $1 AND attempts = $2 AND state = 'processing'",
                &[&job.id, &job.attempts, &reason],
            )
            .await?;
        if n > 0 && job.kind == AnalysisKind::Individual {
            tx.execute(
                "UPDATE transcripts
                    SET analysis_status = 'failed', analysis_error = $3, updated_at = now()
                  WHERE user_id = $1 AND execution_id = $2 AND provider = $4
                    AND analysis_status <> 'completed'",
                &[&job.user_id, &job.execution_id, &reason, &job.provider],
            )
            .await?;
        }
        tx.commit().await?;
        Ok(n > 0)
    }

    /// Re-queues failed jobs — and with `completed`, finished individual ones too, whose new
    /// results then re-queue their complete ones — (all, or one call's) as their next version
    /// (a new run whose result is a new event); returns how many.
    #[tracing::instrument(skip_all, fields(execution_id = execution_id.unwrap_or("*"), completed), err)]
    pub async fn requeue(&self, execution_id: Option<&str>, completed: bool) -> Result<i64, Error> {
        let client = self.client().await?;
        // A completed call's transcript keeps `completed` while it re-runs: its analysis
        // stands until a newer one is recorded (a failed re-run leaves it standing).
        let row = client
            .query_one(
                "WITH requeued AS (
                    UPDATE analysis_jobs
                       SET state = 'pending', attempts = 0, next_attempt_at = now(),
                           lease_until = NULL, last_error = NULL, version = version + 1,
                           updated_at = now()
                     WHERE (state = 'failed'
                            OR ($2 AND state = 'completed' AND kind = 'individual'))
                       AND ($1::text IS NULL OR execution_id = $1)
                    RETURNING user_id, kind, provider, execution_id
                 ), marked AS (
                    UPDATE transcripts t
                       SET analysis_status = 'pending', analysis_error = NULL, updated_at = now()
                      FROM requeued r
                     WHERE r.kind = 'individual' AND t.user_id = r.user_id
                       AND t.execution_id = r.execution_id AND t.provider = r.provider
                       AND t.analysis_status = 'failed'
                 )
                 SELECT count(*) AS requeued FROM requeued",
                &[&execution_id, &completed],
            )
            .await?;
        let count: i64 = row.try_get("requeued")?;
        tracing::info!(count, completed, "analysis jobs re-queued");
        Ok(count)
    }

    /// Unfinished jobs by state (`pending`, `processing`, `failed`), for metrics.
    pub async fn unfinished(&self) -> Result<BTreeMap<String, i64>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT state, count(*) AS jobs FROM analysis_jobs WHERE state <> 'completed' GROUP BY state",
                &[],
            )
            .await?;
        let mut counts: BTreeMap<String, i64> = JOB_STATES
            .iter()
            .filter(|s| **s != "completed")
            .map(|s| ((*s).to_owned(), 0))
            .collect();
        for row in rows {
            counts.insert(row.try_get("state")?, row.try_get("jobs")?);
        }
        Ok(counts)
    }

    /// Counts by state, the oldest pending job's age and the last `errors` errors.
    pub async fn status(&self, errors: i64) -> Result<QueueStatus, Error> {
        let client = self.client().await?;
        let limit: [&(dyn tokio_postgres::types::ToSql + Sync); 1] = [&errors];
        let (count_rows, oldest, error_rows) = tokio::try_join!(
            client.query(
                "SELECT state, count(*) AS jobs FROM analysis_jobs GROUP BY state",
                &[]
            ),
            client.query_one(
                "SELECT EXTRACT(EPOCH FROM now() - min(created_at))::float8 AS oldest_pending_seconds
                   FROM analysis_jobs WHERE state = 'pending'",
                &[],
            ),
            client.query(
                "SELECT execution_id, kind, state, attempts, last_error, updated_at
                   FROM analysis_jobs WHERE last_error IS NOT NULL
                  ORDER BY updated_at DESC, id DESC LIMIT $1",
                &limit,
            ),
        )?;
        let mut counts: BTreeMap<String, i64> =
            JOB_STATES.iter().map(|s| ((*s).to_owned(), 0)).collect();
        for row in count_rows {
            counts.insert(row.try_get("state")?, row.try_get("jobs")?);
        }
        let last_errors = error_rows
            .iter()
            .map(|r| {
                Ok(JobError {
                    execution_id: r.try_get("execution_id")?,
                    kind: r.try_get("kind")?,
                    state: r.try_get("state")?,
                    attempts: r.try_get("attempts")?,
                    error: r.try_get("last_error")?,
                    updated_at: r.try_get("updated_at")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(QueueStatus {
            counts,
            oldest_pending_seconds: oldest.try_get("oldest_pending_seconds")?,
            last_errors,
        })
    }
}

/// Reads a stored kind.
pub(crate) fn parse_kind(kind: &str) -> Result<AnalysisKind, Error> {
    match kind {
        "individual" => Ok(AnalysisKind::Individual),
        "complete" => Ok(AnalysisKind::Complete),
        other => Err(Error::CorruptRow {
            table: "analysis_jobs",
            reason: format!("unknown analysis kind `{other}`"),
        }),
    }
}
