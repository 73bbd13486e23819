//! Group-commit appends (docs/EVENTLOG.md §2, DESIGN "Ack = durable").
//!
//! Callers hand a [`NewEvent`] to the [`Appender`] and await its outcome. A background task
//! gathers concurrent events (up to `max_batch`, waiting at most `linger` for more), writes them
//! with one multi-row `INSERT … ON CONFLICT DO NOTHING RETURNING` and one commit, and only then
//! answers each caller. A failed batch fails every caller in it: no caller is ever told an
//! uncommitted event was appended.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use sqlx::{PgPool, Row};
use tokio::sync::{mpsc, oneshot, Notify, Semaphore};
use uuid::Uuid;

use crate::error::{is_connection_error, DbError};
use crate::{Error, EventLog, NOTIFY_CHANNEL};

/// An event to append.
#[derive(Debug, Clone, PartialEq)]
pub struct NewEvent {
    /// Tenant (user) the event belongs to.
    pub tenant_id: Uuid,
    /// `bolna`, … or `calltrail` for events calltrail creates itself.
    pub provider: String,
    /// Execution id or other stream id.
    pub stream_id: String,
    /// Provider status exactly as sent, or a calltrail event type.
    pub event_type: String,
    /// Version of the `data` shape.
    pub schema_version: i32,
    /// Event time.
    pub occurred_at: DateTime<Utc>,
    /// The normalized event, as JSON text.
    pub data: String,
    /// The provider payload as received, as JSON text (`None` for internal events).
    pub payload: Option<String>,
    /// Request metadata as a JSON object text (receive time, content type, …).
    pub metadata: String,
}

impl NewEvent {
    fn key(&self) -> (Uuid, &str, &str, &str) {
        (
            self.tenant_id,
            &self.provider,
            &self.stream_id,
            &self.event_type,
        )
    }

    fn hash(&self) -> Vec<u8> {
        let body = self.payload.as_deref().unwrap_or(&self.data);
        Sha256::digest(body.as_bytes()).to_vec()
    }
}

/// What happened to an appended event. Returned only after the outcome is committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AppendOutcome {
    /// A new event, committed at this position.
    Appended {
        /// Its position in the log.
        position: i64,
    },
    /// The key was already recorded; nothing was appended.
    Duplicate {
        /// Position of the event already recorded under this key.
        position: i64,
        /// The body differed from the recorded one (kept in `event_conflicts` for review).
        conflict: bool,
    },
}

/// What one committed (or failed) batch did, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BatchReport {
    /// Events in the batch.
    pub size: usize,
    /// New events committed.
    pub appended: usize,
    /// Duplicates answered (conflicts included).
    pub duplicates: usize,
    /// Duplicates whose body differed.
    pub conflicts: usize,
    /// True when the batch failed and nothing in it was recorded.
    pub failed: bool,
}

/// Called after every batch (keep it cheap: it runs on the appender's path).
pub type BatchObserver = Arc<dyn Fn(&BatchReport) + Send + Sync>;

/// Tuning for the group-commit appender.
#[derive(Clone)]
pub struct AppenderConfig {
    /// Most events written by one statement and commit.
    pub max_batch: usize,
    /// How long a batch waits for more events once it has its first. Zero (the default) adds
    /// no delay: events still batch up while the previous batches are being written.
    pub linger: Duration,
    /// Batches being written at the same time.
    pub max_in_flight: usize,
    /// Events waiting to be batched before callers are made to wait.
    pub queue_capacity: usize,
    /// Longest a batch may take before its callers get an error (the outcome is then unknown
    /// to them, and a provider's retry is answered as a duplicate if it did commit).
    pub batch_timeout: Duration,
    /// Sees every batch's outcome (metrics).
    pub observer: Option<BatchObserver>,
}

impl std::fmt::Debug for AppenderConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AppenderConfig")
            .field("max_batch", &self.max_batch)
            .field("linger", &self.linger)
            .field("max_in_flight", &self.max_in_flight)
            .field("queue_capacity", &self.queue_capacity)
            .field("batch_timeout", &self.batch_timeout)
            .field("observer", &self.observer.is_some())
            .finish()
    }
}

impl Default for AppenderConfig {
    fn default() -> Self {
        Self {
            max_batch: 256,
            linger: Duration::ZERO,
            max_in_flight: 4,
            queue_capacity: 16_384,
            batch_timeout: Duration::from_secs(5),
            observer: None,
        }
    }
}

type Reply = oneshot::Sender<Result<AppendOutcome, Error>>;

struct Request {
    event: NewEvent,
    reply: Reply,
}

/// Handle to the group-commit task (cheap to clone).
#[derive(Debug, Clone)]
pub struct Appender {
    queue: mpsc::Sender<Request>,
    shutdown: Arc<Notify>,
    done: Arc<tokio::sync::watch::Receiver<bool>>,
}

impl EventLog {
    /// Starts the group-commit task on the current tokio runtime.
    pub fn appender(&self, config: AppenderConfig) -> Appender {
        let (queue, requests) = mpsc::channel(config.queue_capacity.max(1));
        let shutdown = Arc::new(Notify::new());
        let (done_tx, done_rx) = tokio::sync::watch::channel(false);
        let pool = self.pool().clone();
        let stop = shutdown.clone();
        tokio::spawn(async move {
            run(pool, config, requests, stop).await;
            let _ = done_tx.send(true);
        });
        Appender {
            queue,
            shutdown,
            done: Arc::new(done_rx),
        }
    }
}

impl Appender {
    /// Appends one event and waits until its outcome is committed.
    pub async fn append(&self, event: NewEvent) -> Result<AppendOutcome, Error> {
        let (reply, outcome) = oneshot::channel();
        self.queue
            .send(Request { event, reply })
            .await
            .map_err(|_| Error::AppenderClosed)?;
        outcome.await.map_err(|_| Error::AppenderClosed)?
    }

    /// Stops taking events, writes every event already queued, and waits for the last commit.
    pub async fn shutdown(&self) {
        self.shutdown.notify_one();
        let mut done = (*self.done).clone();
        let _ = done.wait_for(|finished| *finished).await;
    }
}

async fn run(
    pool: PgPool,
    config: AppenderConfig,
    mut requests: mpsc::Receiver<Request>,
    shutdown: Arc<Notify>,
) {
    let max_batch = config.max_batch.max(1);
    let in_flight = Arc::new(Semaphore::new(config.max_in_flight.max(1)));
    loop {
        let first = tokio::select! {
            biased;
            received = requests.recv() => match received {
                Some(request) => request,
                None => break,
            },
            () = shutdown.notified() => {
                // Refuse new events; what is already queued is still written below.
                requests.close();
                continue;
            }
        };
        let mut batch = Vec::with_capacity(max_batch.min(64));
        batch.push(first);
        while batch.len() < max_batch {
            match requests.try_recv() {
                Ok(request) => batch.push(request),
                Err(_) => break,
            }
        }
        if batch.len() < max_batch && !config.linger.is_zero() {
            let deadline = tokio::time::Instant::now() + config.linger;
            while batch.len() < max_batch {
                match tokio::time::timeout_at(deadline, requests.recv()).await {
                    Ok(Some(request)) => batch.push(request),
                    Ok(None) | Err(_) => break,
                }
            }
        }
        // Group commit without artificial delay: while every writer is busy, keep gathering.
        let permit = loop {
            if batch.len() >= max_batch {
                break in_flight.clone().acquire_owned().await;
            }
            tokio::select! {
                biased;
                permit = in_flight.clone().acquire_owned() => break permit,
                received = requests.recv() => match received {
                    Some(request) => batch.push(request),
                    None => break in_flight.clone().acquire_owned().await,
                },
            }
        };
        let Ok(permit) = permit else { break };
        let pool = pool.clone();
        let timeout = config.batch_timeout;
        let observer = config.observer.clone();
        tokio::spawn(async move {
            flush(&pool, batch, timeout, observer.as_ref()).await;
            drop(permit);
        });
    }
    // Wait for every batch still being written.
    let all = u32::try_from(config.max_in_flight.max(1)).unwrap_or(u32::MAX);
    let _ = in_flight.acquire_many(all).await;
}

/// Writes a batch and answers its callers; on a data error, retries event by event so one
/// bad event cannot fail the others.
async fn flush(
    pool: &PgPool,
    batch: Vec<Request>,
    timeout: Duration,
    observer: Option<&BatchObserver>,
) {
    let size = batch.len();
    let events: Vec<&NewEvent> = batch.iter().map(|r| &r.event).collect();
    let result = match tokio::time::timeout(timeout, write_batch(pool, &events)).await {
        Ok(result) => result,
        Err(_) => Err(Error::AppendFailed(Arc::new(Error::from(
            sqlx::Error::PoolTimedOut,
        )))),
    };
    match result {
        Ok(outcomes) => {
            tracing::debug!(size, "append batch committed");
            if let Some(observe) = observer {
                let mut report = BatchReport {
                    size,
                    ..BatchReport::default()
                };
                for outcome in &outcomes {
                    match outcome {
                        AppendOutcome::Appended { .. } => report.appended += 1,
                        AppendOutcome::Duplicate { conflict, .. } => {
                            report.duplicates += 1;
                            report.conflicts += usize::from(*conflict);
                        }
                    }
                }
                observe(&report);
            }
            for (request, outcome) in batch.into_iter().zip(outcomes) {
                let _ = request.reply.send(Ok(outcome));
            }
        }
        Err(Error::Database(error)) if size > 1 && !is_retryable(&error) => {
            tracing::warn!(size, %error, "append batch failed on its data; retrying its events one by one");
            for request in batch {
                Box::pin(flush(pool, vec![request], timeout, observer)).await;
            }
        }
        Err(error) => {
            tracing::warn!(size, %error, "append batch failed; nothing in it was recorded");
            if let Some(observe) = observer {
                observe(&BatchReport {
                    size,
                    failed: true,
                    ..BatchReport::default()
                });
            }
            let shared = Arc::new(error);
            for request in batch {
                let error = match shared.as_ref() {
                    Error::Database(db) if size == 1 && is_data_error(db) => {
                        Error::InvalidEvent(db.to_string())
                    }
                    _ => Error::AppendFailed(shared.clone()),
                };
                let _ = request.reply.send(Err(error));
            }
        }
    }
}

fn sqlstate(error: &DbError) -> Option<String> {
    match error.sqlx()? {
        sqlx::Error::Database(db) => db.code().map(|c| c.into_owned()),
        _ => None,
    }
}

/// Deadlocks and serialization failures: the whole batch can simply be tried again.
fn is_retryable(error: &DbError) -> bool {
    matches!(sqlstate(error).as_deref(), Some("40P01" | "40001"))
        || error.sqlx().is_some_and(is_connection_error)
}

/// The database refused the event's content: class 22 (e.g. `\u0000` in JSON), or 54000 (a
/// value too large for its index, such as a megabyte-long execution id). Retrying cannot help.
fn is_data_error(error: &DbError) -> bool {
    sqlstate(error).is_some_and(|code| code.starts_with("22") || code == "54000")
}

const INSERT_BATCH: &str = "\
INSERT INTO events (tenant_id, provider, stream_id, event_type, schema_version, occurred_at,
                    data, payload, payload_hash, metadata, compact)
SELECT t, p, s, e, v, o, d::jsonb, pl::jsonb, h, m::jsonb, c
  FROM unnest($1::uuid[], $2::text[], $3::text[], $4::text[], $5::int4[], $6::timestamptz[],
              $7::text[], $8::text[], $9::bytea[], $10::text[], $11::bytea[])
       AS u(t, p, s, e, v, o, d, pl, h, m, c)
ON CONFLICT ON CONSTRAINT events_natural_key DO NOTHING
RETURNING position, tenant_id, provider, stream_id, event_type";

/// `metadata.source` of an event reconciliation recorded from a provider's API: a webhook
/// arriving later under its key differs by nature and is a plain duplicate (kept, marked
/// `after_reconciliation`, not a conflict).
pub const RECONCILIATION_SOURCE: &str = "reconciliation";

const EXISTING: &str = "\
SELECT ev.position, ev.payload_hash, ev.tenant_id, ev.provider, ev.stream_id, ev.event_type,
       ev.metadata ->> 'source' = $5 AS reconciled
  FROM events ev
  JOIN unnest($1::uuid[], $2::text[], $3::text[], $4::text[]) AS k(t, p, s, e)
    ON ev.tenant_id = k.t AND ev.provider = k.p AND ev.stream_id = k.s AND ev.event_type = k.e";

const INSERT_CONFLICTS: &str = "\
INSERT INTO event_conflicts
       (event_position, tenant_id, provider, stream_id, fields, payload, data, payload_hash, metadata)
SELECT u.pos, e.tenant_id, e.provider, e.stream_id,
       calltrail_differing_fields(e.payload, u.pl::jsonb), u.pl::jsonb, u.d::jsonb, u.h,
       CASE WHEN u.r THEN u.m::jsonb || jsonb_build_object('after_reconciliation', true) ELSE u.m::jsonb END
  FROM unnest($1::int8[], $2::text[], $3::text[], $4::bytea[], $5::text[], $6::bool[])
    AS u(pos, pl, d, h, m, r)
  JOIN events e ON e.position = u.pos";

type Key = (Uuid, String, String, String);

/// One bind array: `value(i)` for each event index.
fn column<T>(indices: &[usize], value: impl Fn(usize) -> T) -> Vec<T> {
    indices.iter().map(|&i| value(i)).collect()
}

/// The natural key a RETURNING or lookup row carries.
fn row_key(row: &sqlx::postgres::PgRow) -> Result<Key, sqlx::Error> {
    Ok((
        row.try_get("tenant_id")?,
        row.try_get("provider")?,
        row.try_get("stream_id")?,
        row.try_get("event_type")?,
    ))
}

fn owned_key(event: &NewEvent) -> Key {
    let (t, p, s, e) = event.key();
    (t, p.to_owned(), s.to_owned(), e.to_owned())
}

/// Writes one batch in one transaction and returns each event's outcome, in input order.
async fn write_batch(pool: &PgPool, events: &[&NewEvent]) -> Result<Vec<AppendOutcome>, Error> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        match try_write_batch(pool, events).await {
            Err(Error::Database(error)) if attempt < 3 && is_retryable(&error) => {
                tracing::debug!(%error, attempt, "append batch retried");
            }
            other => return other,
        }
    }
}

async fn try_write_batch(pool: &PgPool, events: &[&NewEvent]) -> Result<Vec<AppendOutcome>, Error> {
    let hashes: Vec<Vec<u8>> = events.iter().map(|e| e.hash()).collect();
    // The compact copy replay and the projector read instead of `data` (crate::compact).
    let compacts: Vec<Option<Vec<u8>>> = events
        .iter()
        .map(|e| crate::compact::encode(e.schema_version, &e.data))
        .collect();

    // One row per distinct key (the first occurrence); later ones in the batch are duplicates of it.
    let mut first_of: HashMap<(Uuid, &str, &str, &str), usize> =
        HashMap::with_capacity(events.len());
    let mut unique: Vec<usize> = Vec::with_capacity(events.len());
    for (i, event) in events.iter().enumerate() {
        first_of.entry(event.key()).or_insert_with(|| {
            unique.push(i);
            i
        });
    }
    // A fixed key order makes concurrent batches lock unique-index entries in the same order.
    unique.sort_by(|&a, &b| events[a].key().cmp(&events[b].key()));

    let mut tx = pool.begin().await?;
    let rows = sqlx::query(INSERT_BATCH)
        .bind(column(&unique, |i| events[i].tenant_id))
        .bind(column(&unique, |i| events[i].provider.as_str()))
        .bind(column(&unique, |i| events[i].stream_id.as_str()))
        .bind(column(&unique, |i| events[i].event_type.as_str()))
        .bind(column(&unique, |i| events[i].schema_version))
        .bind(column(&unique, |i| events[i].occurred_at))
        .bind(column(&unique, |i| events[i].data.as_str()))
        .bind(column(&unique, |i| events[i].payload.as_deref()))
        .bind(column(&unique, |i| hashes[i].as_slice()))
        .bind(column(&unique, |i| events[i].metadata.as_str()))
        .bind(column(&unique, |i| compacts[i].as_deref()))
        .fetch_all(&mut *tx)
        .await?;

    let mut appended: HashMap<Key, i64> = HashMap::with_capacity(rows.len());
    for row in &rows {
        let key = row_key(row)?;
        appended.insert(key, row.try_get("position")?);
    }

    // Keys that were already recorded before this batch: fetch their position and hash.
    let missing: Vec<usize> = unique
        .iter()
        .copied()
        .filter(|&i| !appended.contains_key(&owned_key(events[i])))
        .collect();
    let mut existing: HashMap<Key, (i64, Vec<u8>, bool)> = HashMap::with_capacity(missing.len());
    if !missing.is_empty() {
        let rows = sqlx::query(EXISTING)
            .bind(column(&missing, |i| events[i].tenant_id))
            .bind(column(&missing, |i| events[i].provider.as_str()))
            .bind(column(&missing, |i| events[i].stream_id.as_str()))
            .bind(column(&missing, |i| events[i].event_type.as_str()))
            .bind(RECONCILIATION_SOURCE)
            .fetch_all(&mut *tx)
            .await?;
        for row in &rows {
            let key = row_key(row)?;
            let reconciled: Option<bool> = row.try_get("reconciled")?;
            existing.insert(
                key,
                (
                    row.try_get("position")?,
                    row.try_get("payload_hash")?,
                    reconciled.unwrap_or(false),
                ),
            );
        }
    }

    let mut outcomes = Vec::with_capacity(events.len());
    // Differing bodies kept in event_conflicts: (position, event, recorded by reconciliation).
    // A webhook arriving after reconciliation recorded its status from the provider's API
    // differs from the API's answer by nature: it is kept the same way, marked, and answered
    // as a plain duplicate (not a conflict).
    let mut conflicts: Vec<(i64, usize, bool)> = Vec::new();
    for (i, event) in events.iter().enumerate() {
        let key = owned_key(event);
        let first = first_of[&event.key()];
        let outcome = if let Some(&position) = appended.get(&key) {
            if first == i {
                AppendOutcome::Appended { position }
            } else {
                let conflict = hashes[i] != hashes[first];
                AppendOutcome::Duplicate { position, conflict }
            }
        } else if let Some((position, hash, reconciled)) = existing.get(&key) {
            let differs = hashes[i] != *hash;
            if differs && *reconciled {
                conflicts.push((*position, i, true));
            }
            AppendOutcome::Duplicate {
                position: *position,
                conflict: differs && !*reconciled,
            }
        } else {
            return Err(Error::AppendFailed(Arc::new(Error::Corrupt {
                position: 0,
                reason: format!(
                    "key ({}, {}) neither inserted nor found",
                    event.stream_id, event.event_type
                ),
            })));
        };
        if let AppendOutcome::Duplicate {
            position,
            conflict: true,
        } = outcome
        {
            conflicts.push((position, i, false));
        }
        outcomes.push(outcome);
    }

    if !conflicts.is_empty() {
        sqlx::query(INSERT_CONFLICTS)
            .bind(conflicts.iter().map(|&(pos, _, _)| pos).collect::<Vec<_>>())
            .bind(
                conflicts
                    .iter()
                    .map(|&(_, i, _)| events[i].payload.as_deref())
                    .collect::<Vec<_>>(),
            )
            .bind(
                conflicts
                    .iter()
                    .map(|&(_, i, _)| events[i].data.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                conflicts
                    .iter()
                    .map(|&(_, i, _)| hashes[i].as_slice())
                    .collect::<Vec<_>>(),
            )
            .bind(
                conflicts
                    .iter()
                    .map(|&(_, i, _)| events[i].metadata.as_str())
                    .collect::<Vec<_>>(),
            )
            .bind(
                conflicts
                    .iter()
                    .map(|&(_, _, reconciled)| reconciled)
                    .collect::<Vec<_>>(),
            )
            .execute(&mut *tx)
            .await?;
    }
    if !appended.is_empty() {
        sqlx::query("SELECT pg_notify($1, '')")
            .bind(NOTIFY_CHANNEL)
            .execute(&mut *tx)
            .await?;
    }
    tx.commit().await?;
    Ok(outcomes)
}
