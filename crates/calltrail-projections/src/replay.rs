//! Replay into shadow tables, then swap (EVENTLOG.md §7).
//!
//! 1. Take a session advisory lock on a connection of its own: one replay at a time.
//! 2. Capture the horizon: the last event readable now. Everything up to it is committed.
//! 3. Create empty copies of the read tables in schema `calltrail_replay`
//!    (`LIKE public.x INCLUDING ALL`).
//! 4. Page through the log up to the horizon and fold each page with the live projector's own
//!    code (`write::apply_batch`), writing into the shadow tables in one short transaction per
//!    page: a long write transaction would hold every gap-safe reader of the log back.
//! 5. In one short transaction: lock the live checkpoint row, drop the live tables, move the
//!    shadow tables into `public`, set the checkpoint to the horizon, drop the shadow schema.
//!
//! Queries keep reading the old tables until the swap commits, so they never see a half-built
//! table; the live projector waits on its checkpoint row during the swap and then continues
//! from the horizon into the new tables.

use std::time::{Duration, Instant};

use calltrail_eventlog::{Checkpoint, EventLog, StoredEvent};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::projector::{PROJECTIONS, READ_MODELS};
use crate::write::{apply_batch, READ_TABLES};
use crate::{Error, ReadStore};

/// Schema the shadow tables are built in.
pub const REPLAY_SCHEMA: &str = "calltrail_replay";
/// Key of the advisory lock that keeps replays one at a time.
const REPLAY_LOCK_KEY: i64 = 0x6361_6c6c_7472_6c01;
/// How long the swap waits for locks (a long-running query) before it retries.
const SWAP_LOCK_TIMEOUT: &str = "5s";
/// Swap attempts before giving up.
const SWAP_ATTEMPTS: u32 = 6;

/// What to replay.
#[derive(Debug, Clone)]
pub struct ReplayOptions {
    /// Events per page (folded and written together).
    pub batch_size: usize,
    /// Billing rate (must equal the live projector's).
    pub credits_per_minute: i64,
    /// Projections to rebuild by name; empty means all.
    pub projections: Vec<String>,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            credits_per_minute: 1,
            projections: Vec::new(),
        }
    }
}

/// What a replay did (printed as the last line of `calltrail replay`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct ReplaySummary {
    /// Events folded.
    pub events: u64,
    /// Wall time, swap included.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_second: f64,
}

/// Rebuilds the selected projections from the log and swaps them in. `progress(done, total)`
/// is called after every page. Fails with [`Error::ReplayRunning`] if another replay runs.
#[tracing::instrument(skip_all, err)]
pub async fn replay(
    log: &EventLog,
    store: &ReadStore,
    opts: ReplayOptions,
    progress: impl Fn(u64, u64),
) -> Result<ReplaySummary, Error> {
    let projections = resolve_projections(&opts.projections)?;
    let started = Instant::now();
    let mut session = store.dedicated_connection().await?;
    let locked: bool = session
        .query_one("SELECT pg_try_advisory_lock($1)", &[&REPLAY_LOCK_KEY])
        .await?
        .try_get(0)?;
    if !locked {
        return Err(Error::ReplayRunning);
    }
    let result = rebuild(&mut session, log, &opts, &projections, &progress).await;
    // Dropping the session ends it and releases the lock anyway; this is for tidiness.
    if let Err(error) = session
        .execute("SELECT pg_advisory_unlock($1)", &[&REPLAY_LOCK_KEY])
        .await
    {
        tracing::debug!(%error, "advisory unlock failed; the session end releases it");
    }
    let events = result?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = ReplaySummary {
        events,
        seconds,
        events_per_second: if seconds > 0.0 {
            u64_to_f64(events) / seconds
        } else {
            0.0
        },
    };
    tracing::info!(
        events,
        seconds,
        events_per_second = summary.events_per_second,
        "replay finished"
    );
    Ok(summary)
}

/// The projection names to rebuild, validated.
fn resolve_projections(requested: &[String]) -> Result<Vec<&'static str>, Error> {
    if requested.is_empty() {
        return Ok(PROJECTIONS.to_vec());
    }
    let mut names = Vec::new();
    for name in requested {
        let known = PROJECTIONS
            .iter()
            .find(|known| **known == name.as_str())
            .ok_or_else(|| {
                Error::Invalid(format!(
                    "unknown projection `{name}` (known: {})",
                    PROJECTIONS.join(", ")
                ))
            })?;
        if !names.contains(known) {
            names.push(*known);
        }
    }
    Ok(names)
}

/// The read tables a projection owns.
fn tables_of(projection: &str) -> &'static [&'static str] {
    match projection {
        READ_MODELS => READ_TABLES,
        _ => &[],
    }
}

async fn rebuild(
    session: &mut Client,
    log: &EventLog,
    opts: &ReplayOptions,
    projections: &[&'static str],
    progress: &impl Fn(u64, u64),
) -> Result<u64, Error> {
    let tables: Vec<&str> = projections
        .iter()
        .flat_map(|p| tables_of(p).iter().copied())
        .collect();
    let horizon = log.horizon().await?;
    let total = match horizon {
        Some(h) => {
            let (all, beyond) =
                tokio::try_join!(log.count_after(Checkpoint::START), log.count_after(h))?;
            u64::try_from(all.saturating_sub(beyond)).unwrap_or(0)
        }
        None => 0,
    };
    tracing::info!(?horizon, total, ?projections, "replay started");
    progress(0, total);

    let mut ddl =
        format!("DROP SCHEMA IF EXISTS {REPLAY_SCHEMA} CASCADE; CREATE SCHEMA {REPLAY_SCHEMA};");
    for table in &tables {
        ddl.push_str(&format!(
            "CREATE TABLE {REPLAY_SCHEMA}.{table} (LIKE public.{table} INCLUDING ALL);"
        ));
    }
    session.batch_execute(&ddl).await?;

    let mut done: u64 = 0;
    if let Some(horizon) = horizon {
        let page = opts.batch_size.max(1);
        let limit = i64::try_from(page).unwrap_or(i64::MAX);
        let mut events = up_to(log.read_after(Checkpoint::START, limit).await?, horizon);
        while !events.is_empty() {
            let full = events.len() == page;
            let last = events
                .last()
                .map_or(Checkpoint::START, StoredEvent::checkpoint);
            // Read the next page while this one is written.
            let next = async {
                if full && last < horizon {
                    log.read_after(last, limit).await.map(|e| up_to(e, horizon))
                } else {
                    Ok(Vec::new())
                }
            };
            let write = async {
                let tx = session.transaction().await?;
                apply_batch(
                    &tx,
                    REPLAY_SCHEMA,
                    READ_MODELS,
                    &events,
                    opts.credits_per_minute,
                )
                .await?;
                tx.commit().await?;
                Ok::<_, Error>(())
            };
            let (written, next) = tokio::join!(write, next);
            written?;
            done += u64::try_from(events.len()).unwrap_or(0);
            progress(done, total.max(done));
            events = next?;
        }
    }

    swap(
        session,
        projections,
        &tables,
        horizon.unwrap_or(Checkpoint::START),
    )
    .await?;
    Ok(done)
}

/// The events at or before `horizon` (a page may run past it).
fn up_to(mut events: Vec<StoredEvent>, horizon: Checkpoint) -> Vec<StoredEvent> {
    events.retain(|e| e.checkpoint() <= horizon);
    events
}

/// Swaps the shadow tables in and sets the checkpoints to `horizon`, in one transaction.
/// Retried when a long query keeps a table lock longer than the lock timeout.
async fn swap(
    session: &mut Client,
    projections: &[&'static str],
    tables: &[&str],
    horizon: Checkpoint,
) -> Result<(), Error> {
    let names: Vec<&str> = projections.to_vec();
    session
        .execute(
            "INSERT INTO projector_checkpoints (name, txid, position)
             SELECT unnest($1::text[]), 0, 0 ON CONFLICT (name) DO NOTHING",
            &[&names],
        )
        .await?;
    let mut ddl = String::new();
    if !tables.is_empty() {
        let live: Vec<String> = tables.iter().map(|t| format!("public.{t}")).collect();
        ddl.push_str(&format!("DROP TABLE {};", live.join(", ")));
    }
    for table in tables {
        ddl.push_str(&format!(
            "ALTER TABLE {REPLAY_SCHEMA}.{table} SET SCHEMA public;"
        ));
    }
    ddl.push_str(&format!("DROP SCHEMA {REPLAY_SCHEMA};"));

    let mut attempt = 1;
    loop {
        let tx = session.transaction().await?;
        let swapped = async {
            tx.batch_execute(&format!("SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT}'"))
                .await?;
            // Waits for the live projector's batch in progress; it stands by until we commit.
            tx.query(
                "SELECT name FROM projector_checkpoints WHERE name = ANY($1) FOR UPDATE",
                &[&names],
            )
            .await?;
            tx.batch_execute(&ddl).await?;
            tx.execute(
                "UPDATE projector_checkpoints SET txid = $2, position = $3, updated_at = now()
                  WHERE name = ANY($1)",
                &[&names, &horizon.txid, &horizon.position],
            )
            .await?;
            Ok::<_, tokio_postgres::Error>(())
        }
        .await;
        match swapped {
            Ok(()) => {
                tx.commit().await?;
                tracing::info!(?horizon, "read tables swapped in");
                return Ok(());
            }
            Err(error)
                if error.code() == Some(&SqlState::LOCK_NOT_AVAILABLE)
                    && attempt < SWAP_ATTEMPTS =>
            {
                tx.rollback().await?;
                tracing::warn!(attempt, "swap waited too long for table locks; retrying");
                attempt += 1;
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A count as a float (exact below 2^53, which any event count is).
fn u64_to_f64(n: u64) -> f64 {
    let high = u32::try_from(n >> 32).unwrap_or(u32::MAX);
    let low = u32::try_from(n & 0xFFFF_FFFF).unwrap_or(0);
    f64::from(high) * 4_294_967_296.0 + f64::from(low)
}
