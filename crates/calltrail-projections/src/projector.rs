//! The live projector: follows the log gap-safely and folds it into the read tables, one
//! transaction per batch that also moves its checkpoint (docs/EVENTLOG.md §3).
//!
//! One active projector per projection (docs/EVENTLOG.md §4): each batch locks the projector's
//! checkpoint row `FOR UPDATE SKIP LOCKED`, and the row carries a lease (`owner`,
//! `lease_until`, the database's clock) that the active process renews with its batches and
//! its idle polls. Another process stands by while the row is locked or the lease is live and
//! takes over when the lease runs out. Nothing can be orphaned by a crash: a transaction lock
//! dies with its session and a lease expires.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use calltrail_core::{Backoff, Bounds};
use calltrail_eventlog::{Checkpoint, EventLog, StoredEvent};

use crate::fold::Rules;
use tokio_postgres::Transaction;
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::fold::{self, Changes, DecodedBatch, Snapshot};
use crate::tables::{self, calls, contacts, credits};
use crate::{Error, ReadStore};

/// Name of the projection that builds calls, contacts, transcripts, credits and timelines.
pub const READ_MODELS: &str = "read_models";

/// Every projection calltrail knows (the names `calltrail replay --projection` accepts).
pub const PROJECTIONS: &[&str] = &[READ_MODELS];

/// The fail point between a batch's writes (read tables, jobs, checkpoint) and its `COMMIT`:
/// armed, it aborts the process there (drill 3). Exists only with the `failpoints` feature.
pub const FAILPOINT_BEFORE_COMMIT: &str = "projector-before-commit";

/// Whether this build has fail points (the `failpoints` feature: test builds only).
pub const FAILPOINTS_BUILT: bool = cfg!(feature = "failpoints");

/// Longest pause between retries after a failed batch.
const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// How a projector runs.
#[derive(Debug, Clone)]
pub struct ProjectorConfig {
    /// Projection name: the checkpoint row's key.
    pub name: String,
    /// Most events folded per batch transaction.
    pub batch_size: usize,
    /// Poll fallback when no notification arrives, and the standby retry interval.
    pub poll_interval: Duration,
    /// Billing rate (`CALLTRAIL_CREDITS_PER_MINUTE`).
    pub credits_per_minute: i64,
    /// What a webhook's numbers must fall within (`CALLTRAIL_MAX_CALL_SECONDS`).
    pub bounds: Bounds,
    /// How long the active process keeps the projection without renewing it; a standby one
    /// takes over this long after the active one stopped.
    pub lease: Duration,
}

impl Default for ProjectorConfig {
    fn default() -> Self {
        Self {
            name: READ_MODELS.to_owned(),
            batch_size: 500,
            poll_interval: Duration::from_millis(500),
            credits_per_minute: 1,
            bounds: Bounds::default(),
            lease: Duration::from_secs(5),
        }
    }
}

/// What one batch did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    /// Events folded (dead letters included).
    pub events: usize,
    /// Events of this batch that went to the dead-letter table.
    pub dead_letters: usize,
    /// True when the batch was not full: the projector has read everything readable now.
    pub caught_up: bool,
    /// True when another process holds the projection (its lease, or the checkpoint row in a
    /// batch or a replay's swap): nothing was done.
    pub standby: bool,
}

/// Counters for metrics (read with [`Ordering::Relaxed`]).
#[derive(Debug, Default)]
pub struct ProjectorMetrics {
    /// Events folded since start.
    pub events: AtomicU64,
    /// Batches committed since start.
    pub batches: AtomicU64,
    /// Dead letters recorded since start.
    pub dead_letters: AtomicU64,
    /// Events whose out-of-range values were replaced, since start.
    pub anomalies: AtomicU64,
    /// Size of the last committed batch.
    pub last_batch_size: AtomicU64,
    /// Whether the last attempt found another process holding the checkpoint.
    pub standby: AtomicBool,
}

/// The live projector of one projection.
#[derive(Debug)]
pub struct Projector {
    log: EventLog,
    store: ReadStore,
    config: ProjectorConfig,
    metrics: Arc<ProjectorMetrics>,
    checkpoint_row_ready: AtomicBool,
    /// This process's name in the lease.
    owner: String,
}

impl Projector {
    /// A projector reading `log` and writing through `store`.
    pub fn new(log: EventLog, store: ReadStore, config: ProjectorConfig) -> Self {
        Self {
            log,
            store,
            config,
            metrics: Arc::default(),
            checkpoint_row_ready: AtomicBool::new(false),
            owner: format!("{}-{}", std::process::id(), Uuid::new_v4().simple()),
        }
    }

    /// Its counters, shared (for `/metrics`).
    pub fn metrics(&self) -> Arc<ProjectorMetrics> {
        Arc::clone(&self.metrics)
    }

    /// The projection's name.
    pub fn name(&self) -> &str {
        &self.config.name
    }

    /// Events in the log this projector has not folded yet.
    pub async fn lag(&self) -> Result<i64, Error> {
        self.store.projector_lag(&self.log, &self.config.name).await
    }

    /// Follows the log until `shutdown` is cancelled; the batch in progress is finished first.
    /// Failed batches are retried with backoff (nothing is committed by a failed batch).
    #[tracing::instrument(skip_all, fields(projector = %self.config.name))]
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), Error> {
        let poll = self.config.poll_interval;
        let mut wakeups = self.log.wakeups(poll);
        let mut failures = Backoff::new(poll, MAX_BACKOFF).retries();
        tracing::info!("projector started");
        while !shutdown.is_cancelled() {
            match self.run_once().await {
                Ok(outcome) => {
                    failures.reset();
                    if outcome.standby {
                        sleep_or_cancel(poll, &shutdown).await;
                    } else if outcome.caught_up {
                        tokio::select! {
                            _ = wakeups.wait() => {}
                            () = shutdown.cancelled() => {}
                        }
                    }
                    // A full batch: more is waiting, loop at once.
                }
                Err(error) if error.is_unavailable() => {
                    let delay = failures.next_delay();
                    tracing::warn!(%error, retry_in_secs = delay.as_secs_f64(), "projector batch failed; retrying");
                    sleep_or_cancel(delay, &shutdown).await;
                }
                Err(error) => {
                    let delay = failures.next_delay();
                    tracing::error!(%error, retry_in_secs = delay.as_secs_f64(), "projector batch failed; retrying");
                    sleep_or_cancel(delay, &shutdown).await;
                }
            }
        }
        if let Err(error) = self.release().await {
            tracing::warn!(%error, "could not release the projection; it frees itself when the lease ends");
        }
        tracing::info!("projector stopped");
        Ok(())
    }

    /// Gives the projection up at once (a standby process takes over without waiting for the
    /// lease to run out). Call it when a process that ran batches stops.
    pub async fn release(&self) -> Result<(), Error> {
        let client = self.store.client().await?;
        client
            .execute(
                "UPDATE projector_checkpoints SET owner = NULL, lease_until = NULL
                  WHERE name = $1 AND owner = $2",
                &[&self.config.name, &self.owner],
            )
            .await?;
        Ok(())
    }

    /// Folds one batch: lock the checkpoint, read after it, fold, write, move it, commit.
    pub async fn run_once(&self) -> Result<BatchOutcome, Error> {
        let name = self.config.name.as_str();
        if !self.checkpoint_row_ready.load(Ordering::Relaxed) {
            self.store.ensure_checkpoint_row(name).await?;
            self.checkpoint_row_ready.store(true, Ordering::Relaxed);
        }
        let mut client = self.store.client().await?;
        let tx = client.transaction().await?;
        let lease_ms = i64::try_from(self.config.lease.as_millis()).unwrap_or(i64::MAX);
        let locked = tx
            .query_opt(
                "SELECT txid, position,
                        COALESCE(owner IS DISTINCT FROM $2 AND lease_until > now(), false)
                            AS held_elsewhere,
                        COALESCE(owner IS DISTINCT FROM $2 OR lease_until IS NULL
                            OR lease_until < now() + $3::int8 * interval '500 microseconds', true)
                            AS renew
                   FROM projector_checkpoints
                  WHERE name = $1 FOR UPDATE SKIP LOCKED",
                &[&name, &self.owner, &lease_ms],
            )
            .await?;
        let row = match locked {
            Some(row) if !row.try_get::<_, bool>("held_elsewhere")? => row,
            _ => {
                tx.rollback().await?;
                if !self.metrics.standby.swap(true, Ordering::Relaxed) {
                    tracing::info!(
                        projector = name,
                        "another process holds the projection; standing by"
                    );
                }
                return Ok(BatchOutcome {
                    standby: true,
                    ..BatchOutcome::default()
                });
            }
        };
        if self.metrics.standby.swap(false, Ordering::Relaxed) {
            tracing::info!(projector = name, "projection acquired; projecting");
        }
        // Take or renew the lease (renewed once half of it is gone, so an idle poll rarely writes).
        if row.try_get::<_, bool>("renew")? {
            tx.execute(
                "UPDATE projector_checkpoints
                    SET owner = $2, lease_until = now() + $3::int8 * interval '1 millisecond'
                  WHERE name = $1",
                &[&name, &self.owner, &lease_ms],
            )
            .await?;
        }
        let checkpoint = Checkpoint {
            txid: row.try_get("txid")?,
            position: row.try_get("position")?,
        };
        let limit = i64::try_from(self.config.batch_size.max(1)).unwrap_or(i64::MAX);
        let mut events = self.log.read_after(checkpoint, limit).await?;
        if events.is_empty() {
            tx.commit().await?;
            return Ok(BatchOutcome {
                caught_up: true,
                ..BatchOutcome::default()
            });
        }
        let started = std::time::Instant::now();
        let rules = Rules {
            credits_per_minute: self.config.credits_per_minute,
            bounds: self.config.bounds,
        };
        let decoded = fold::decode_events(&self.log, &mut events).await?;
        let changes = apply_batch(&tx, "public", name, &events, decoded, rules).await?;
        for anomaly in &changes.anomalies {
            tracing::warn!(
                tenant_id = %anomaly.tenant_id,
                provider = %anomaly.provider,
                execution_id = %anomaly.execution_id,
                event_type = %anomaly.event_type,
                position = anomaly.position,
                anomalies = %anomaly.names(),
                "a webhook carried values out of range: they were replaced"
            );
        }
        // Analysis jobs are live-only state: replay folds the same events but never enqueues.
        crate::jobs::enqueue(&tx, &changes.jobs).await?;
        let last = changes.last.unwrap_or(checkpoint);
        tx.execute(
            "UPDATE projector_checkpoints SET txid = $2, position = $3, updated_at = now()
              WHERE name = $1",
            &[&name, &last.txid, &last.position],
        )
        .await?;
        #[cfg(feature = "failpoints")]
        fail::fail_point!(FAILPOINT_BEFORE_COMMIT, |_| {
            tracing::error!(
                projector = name,
                events = events.len(),
                "fail point {FAILPOINT_BEFORE_COMMIT}: aborting the process before COMMIT"
            );
            std::process::abort()
        });
        tx.commit().await?;

        let outcome = BatchOutcome {
            events: changes.events,
            dead_letters: changes.dead_letters.len(),
            caught_up: events.len() < self.config.batch_size.max(1),
            standby: false,
        };
        let count = |n: usize| u64::try_from(n).unwrap_or(u64::MAX);
        self.metrics
            .events
            .fetch_add(count(outcome.events), Ordering::Relaxed);
        self.metrics.batches.fetch_add(1, Ordering::Relaxed);
        self.metrics
            .dead_letters
            .fetch_add(count(outcome.dead_letters), Ordering::Relaxed);
        self.metrics
            .anomalies
            .fetch_add(count(changes.anomalies.len()), Ordering::Relaxed);
        self.metrics
            .last_batch_size
            .store(count(outcome.events), Ordering::Relaxed);
        tracing::debug!(
            projector = name,
            events = outcome.events,
            dead_letters = outcome.dead_letters,
            txid = last.txid,
            position = last.position,
            elapsed_ms = started.elapsed().as_millis(),
            "batch committed"
        );
        Ok(outcome)
    }
}

/// One batch's work inside its transaction: loads the rows `events` (decoded as `decoded`)
/// touch, folds them, and writes the changes into `schema`'s tables (dead letters under
/// `projector`'s name).
async fn apply_batch(
    tx: &Transaction<'_>,
    schema: &str,
    projector: &str,
    events: &[StoredEvent],
    decoded: Vec<Result<fold::Decoded, String>>,
    rules: Rules,
) -> Result<Changes, Error> {
    let batch = fold::pair(events, decoded);
    let mut snapshot = load_snapshot(tx, schema, &batch).await?;
    let changes = fold::fold_batch(&mut snapshot, &batch, rules);
    tokio::try_join!(
        tables::write_rows(tx, schema, &snapshot, &changes),
        tables::write_appends(tx, schema, projector, &changes),
    )?;
    // Once every fact of the batch is written: the calls it may have (re-)attributed.
    tables::attribution::refresh(tx, schema, &changes).await?;
    Ok(changes)
}

/// The stored rows of every call, contact and balance `batch` touches (absent from the
/// tables = no row yet; a balance without a row is 0). Contacts come second: a call's stored
/// phone number names one too.
async fn load_snapshot(
    tx: &Transaction<'_>,
    schema: &str,
    batch: &DecodedBatch<'_>,
) -> Result<Snapshot, Error> {
    let needs = fold::needs(batch);
    let (call_rows, balance_rows) = tokio::try_join!(
        calls::load(tx, schema, &needs.calls),
        credits::load_balances(tx, schema, &needs.users),
    )?;
    let mut snapshot = Snapshot::default();
    snapshot.calls.extend(call_rows);
    for user in &needs.users {
        snapshot.balances.insert(*user, 0);
    }
    snapshot.balances.extend(balance_rows);
    let contact_keys = fold::contact_needs(batch, &snapshot.calls);
    snapshot
        .contacts
        .extend(contacts::load(tx, schema, &contact_keys).await?);
    Ok(snapshot)
}

/// Arms fail points from a `FAILPOINTS`-style list, `name=actions;…` in fail-rs syntax (e.g.
/// `projector-before-commit=2*off->return`: the third batch aborts before its commit), and
/// returns the names armed. Only [`FAILPOINT_BEFORE_COMMIT`] is known; any other name is refused.
/// Builds without the `failpoints` feature refuse every list: nothing can be armed there.
pub fn arm_failpoints(list: &str) -> Result<Vec<String>, Error> {
    let mut armed = Vec::new();
    for entry in list.split(';').map(str::trim).filter(|e| !e.is_empty()) {
        let Some((name, actions)) = entry.split_once('=') else {
            return Err(Error::FailPoint(format!(
                "fail point {entry:?}: expected name=actions"
            )));
        };
        let name = name.trim();
        if name != FAILPOINT_BEFORE_COMMIT {
            return Err(Error::FailPoint(format!(
                "unknown fail point {name:?} (known: {FAILPOINT_BEFORE_COMMIT})"
            )));
        }
        arm(name, actions.trim())?;
        armed.push(name.to_owned());
    }
    Ok(armed)
}

#[cfg(feature = "failpoints")]
fn arm(name: &str, actions: &str) -> Result<(), Error> {
    fail::cfg(name, actions).map_err(|e| Error::FailPoint(format!("fail point {name}: {e}")))
}

#[cfg(not(feature = "failpoints"))]
fn arm(name: &str, _actions: &str) -> Result<(), Error> {
    Err(Error::FailPoint(format!(
        "fail point {name}: this build has no fail points (feature `failpoints` is off)"
    )))
}

async fn sleep_or_cancel(duration: Duration, shutdown: &CancellationToken) {
    tokio::select! {
        () = tokio::time::sleep(duration) => {}
        () = shutdown.cancelled() => {}
    }
}

impl ReadStore {
    /// Where a projector is in the log (`None` before its first batch).
    pub async fn projector_checkpoint(&self, name: &str) -> Result<Option<Checkpoint>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT txid, position FROM projector_checkpoints WHERE name = $1",
                &[&name],
            )
            .await?;
        row.map(|r| {
            Ok(Checkpoint {
                txid: r.try_get("txid")?,
                position: r.try_get("position")?,
            })
        })
        .transpose()
    }

    /// How many events of the log a projector has not folded yet.
    pub async fn projector_lag(&self, log: &EventLog, name: &str) -> Result<i64, Error> {
        let checkpoint = self
            .projector_checkpoint(name)
            .await?
            .unwrap_or(Checkpoint::START);
        Ok(log.count_after(checkpoint).await?)
    }

    /// Events recorded in the dead-letter table (all projectors).
    pub async fn dead_letter_count(&self) -> Result<i64, Error> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT count(*) AS dead_letters FROM dead_letters", &[])
            .await?;
        Ok(row.try_get("dead_letters")?)
    }

    /// Creates a projector's checkpoint row at the start of the log if it is missing.
    pub(crate) async fn ensure_checkpoint_row(&self, name: &str) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO projector_checkpoints (name, txid, position) VALUES ($1, 0, 0)
                 ON CONFLICT (name) DO NOTHING",
                &[&name],
            )
            .await?;
        Ok(())
    }
}
