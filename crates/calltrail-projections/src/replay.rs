//! Replay into shadow tables, then swap (docs/EVENTLOG.md §7).
//!
//! 1. Take a session advisory lock on a connection of its own: one replay at a time.
//! 2. Capture the horizon: the last event readable now. Everything up to it is committed.
//! 3. Create empty copies of the read tables in schema `calltrail_replay`
//!    (`LIKE public.x INCLUDING ALL EXCLUDING INDEXES`, plus the unique keys upserts need).
//! 4. Page through the log up to the horizon and fold each page with the live projector's own
//!    code (`fold::fold_batch`, `tables`), in three stages that run at once: a reader task
//!    reads the next pages by binary `COPY` (each event's compact copy, `data` only for rows
//!    without one) and decodes them, this task folds, and a writer task on a connection of
//!    its own writes each page in one short transaction (a long write transaction would hold
//!    every gap-safe reader of the log back). Calls, contacts and balances stay in memory
//!    across pages (a bounded write-back cache), so a call is usually written once; timeline
//!    and credit rows are written page by page. A call evicted from the cache and touched
//!    again is loaded back through the writer, after every write queued before it.
//! 5. Build the remaining indexes under the live tables' own names, two at a time, `ANALYZE`,
//!    and derive every call's attribution from the rebuilt campaign tables.
//! 6. In one short transaction: lock the live checkpoint row, drop the live tables, move the
//!    shadow tables into `public`, set the checkpoint to the horizon, drop the shadow schema.
//!
//! Queries keep reading the old tables until the swap commits, so they never see a half-built
//! table; the live projector waits on its checkpoint row during the swap and then continues
//! from the horizon into the new tables.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use calltrail_eventlog::{Checkpoint, EventLog};
use tokio_postgres::error::SqlState;
use tokio_postgres::Client;

use crate::projector::{PROJECTIONS, READ_MODELS};
use crate::tables::{ReadTable, READ_TABLES};
use crate::{Error, ReadStore};

mod pipeline;

use pipeline::{fold_pages, spawn_reader, Writer};

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
    /// What a webhook's numbers must fall within (must equal the live projector's).
    pub bounds: calltrail_core::Bounds,
    /// Projections to rebuild by name; empty means all.
    pub projections: Vec<String>,
    /// Calls kept in memory across pages; when full, their rows are written and the less
    /// recently touched half is dropped (bounds memory; a call is then usually written once).
    pub cached_calls: usize,
}

impl Default for ReplayOptions {
    fn default() -> Self {
        Self {
            batch_size: 10_000,
            credits_per_minute: 1,
            bounds: calltrail_core::Bounds::default(),
            projections: Vec::new(),
            cached_calls: 20_000,
        }
    }
}

/// What a replay did (printed as the last line of `calltrail replay`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ReplaySummary {
    /// Events folded.
    pub events: u64,
    /// Wall time, swap included.
    pub seconds: f64,
    /// `events / seconds`.
    pub events_per_second: f64,
    /// The rows of each rebuilt read table as swapped in, in the tables' order.
    pub tables: Vec<TableRows>,
}

/// How many rows a rebuilt read table holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub struct TableRows {
    /// The read table (`calls`, `contacts`, …).
    pub table: &'static str,
    /// Its rows once rebuilt.
    pub rows: u64,
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
        .query_one(
            "SELECT pg_try_advisory_lock($1) AS locked",
            &[&REPLAY_LOCK_KEY],
        )
        .await?
        .try_get("locked")?;
    if !locked {
        return Err(Error::ReplayRunning);
    }
    let result = rebuild(&mut session, log, store, &opts, &projections, &progress).await;
    // Dropping the session ends it and releases the lock anyway; this is for tidiness.
    if let Err(error) = session
        .execute("SELECT pg_advisory_unlock($1)", &[&REPLAY_LOCK_KEY])
        .await
    {
        tracing::debug!(%error, "advisory unlock failed; the session end releases it");
    }
    let (events, tables) = result?;
    let seconds = started.elapsed().as_secs_f64();
    let summary = ReplaySummary {
        events,
        seconds,
        events_per_second: if seconds > 0.0 {
            u64_to_f64(events) / seconds
        } else {
            0.0
        },
        tables,
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
            .ok_or_else(|| Error::UnknownProjection {
                name: name.clone(),
                known: PROJECTIONS.join(", "),
            })?;
        if !names.contains(known) {
            names.push(*known);
        }
    }
    Ok(names)
}

/// The read tables a projection owns.
fn tables_of(projection: &str) -> &'static [ReadTable] {
    match projection {
        READ_MODELS => READ_TABLES,
        _ => &[],
    }
}

async fn rebuild(
    session: &mut Client,
    log: &EventLog,
    store: &ReadStore,
    opts: &ReplayOptions,
    projections: &[&'static str],
    progress: &impl Fn(u64, u64),
) -> Result<(u64, Vec<TableRows>), Error> {
    let tables: Vec<&'static str> = projections
        .iter()
        .flat_map(|p| tables_of(p).iter().map(|t| t.name))
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
    tracing::info!(
        horizon_txid = horizon.map(|h| h.txid),
        horizon_position = horizon.map(|h| h.position),
        total,
        projections = %projections.join(","),
        "replay started"
    );
    progress(0, total);

    let indexes = create_shadow(session, &tables).await?;

    // Three stages at once: a reader task pages through the log and decodes, this task folds
    // (CPU), and a writer task on a connection of its own sends each page's rows in one short
    // transaction. Calls, contacts and balances stay in memory across pages (a write-back
    // cache) and are written when the cache is full and at the end.
    let (pages, reader) = spawn_reader(
        store.dedicated_connection().await?,
        log.clone(),
        horizon,
        opts.batch_size.max(1),
    );
    let writer = Writer::spawn(store.dedicated_connection().await?);
    let folded = fold_pages(pages, &writer, opts, total, progress).await;
    // Whatever happened, stop the other stages and collect their own errors first: a stage
    // that failed is the cause, the others only saw its channel close.
    reader.abort();
    let written = writer.finish().await;
    let (done, second) = match (written, folded) {
        (Err(error), _) | (Ok(_), Err(error)) => return Err(error),
        (Ok(writer_session), Ok(done)) => (done, writer_session),
    };
    finish_shadow([&*session, &second], &tables, &indexes).await?;
    if tables.contains(&"calls") {
        let attributed = crate::tables::attribution::refresh_all(&*session, REPLAY_SCHEMA).await?;
        tracing::info!(attributed, "attribution derived");
    }
    let rows = count_rows(session, &tables).await?;

    swap(
        session,
        projections,
        &tables,
        horizon.unwrap_or(Checkpoint::START),
    )
    .await?;
    Ok((done, rows))
}

/// The rows of each shadow table, in one statement (the summary's `tables`).
async fn count_rows(session: &Client, tables: &[&'static str]) -> Result<Vec<TableRows>, Error> {
    if tables.is_empty() {
        return Ok(Vec::new());
    }
    let counts: Vec<String> = tables
        .iter()
        .map(|t| format!("(SELECT count(*) FROM {REPLAY_SCHEMA}.{t})"))
        .collect();
    let row = session
        .query_one(&format!("SELECT {}", counts.join(", ")), &[])
        .await?;
    tables
        .iter()
        .enumerate()
        .map(|(i, table)| {
            let rows: i64 = row.try_get(i)?;
            Ok(TableRows {
                table,
                rows: u64::try_from(rows).unwrap_or(0),
            })
        })
        .collect()
}

/// An index or constraint of a live table, as DDL for its shadow table.
struct IndexDdl {
    table: String,
    ddl: String,
}

/// Creates the empty shadow tables. Only the unique keys the fold upserts on exist while they
/// fill; every other index is built once at the end ([`finish_shadow`]), which is much cheaper
/// than maintaining it row by row. Returns the DDL still to run.
async fn create_shadow(session: &Client, tables: &[&str]) -> Result<Vec<IndexDdl>, Error> {
    let mut ddl =
        format!("DROP SCHEMA IF EXISTS {REPLAY_SCHEMA} CASCADE; CREATE SCHEMA {REPLAY_SCHEMA};");
    for table in tables {
        ddl.push_str(&format!(
            "CREATE TABLE {REPLAY_SCHEMA}.{table} \
             (LIKE public.{table} INCLUDING ALL EXCLUDING INDEXES);"
        ));
    }
    session.batch_execute(&ddl).await?;
    // The live tables' own definitions, so the rebuilt ones get exactly the same names.
    let rows = session
        .query(
            "SELECT c.relname::text AS table_name, true AS is_key,
                    format('ALTER TABLE %I.%I ADD CONSTRAINT %I %s', $2::text, c.relname,
                           k.conname, pg_get_constraintdef(k.oid)) AS ddl
               FROM pg_constraint k JOIN pg_class c ON c.oid = k.conrelid
              WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)
                AND k.contype IN ('p', 'u', 'x')
             UNION ALL
             SELECT c.relname::text, false,
                    regexp_replace(pg_get_indexdef(i.indexrelid), ' ON (ONLY )?\\S+ USING ',
                                   format(' ON %I.%I USING ', $2::text, c.relname))
               FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
              WHERE c.relnamespace = 'public'::regnamespace AND c.relname = ANY($1)
                AND NOT EXISTS (SELECT 1 FROM pg_constraint k
                                 WHERE k.conindid = i.indexrelid AND k.conrelid = c.oid)",
            &[&tables, &REPLAY_SCHEMA],
        )
        .await?;
    let mut later = Vec::new();
    let mut now = String::new();
    for row in rows {
        let table: String = row.try_get("table_name")?;
        let is_key: bool = row.try_get("is_key")?;
        let ddl: String = row.try_get("ddl")?;
        let upserted = READ_TABLES.iter().any(|t| t.upserted && t.name == table);
        if is_key && upserted {
            now.push_str(&ddl);
            now.push(';');
        } else {
            later.push(IndexDdl { table, ddl });
        }
    }
    session.batch_execute(&now).await?;
    Ok(later)
}

/// Builds the remaining indexes, two at a time (one per connection), and refreshes the
/// planner statistics of the shadow tables.
async fn finish_shadow(
    sessions: [&Client; 2],
    tables: &[&str],
    indexes: &[IndexDdl],
) -> Result<(), Error> {
    let started = Instant::now();
    let next = AtomicUsize::new(0);
    let [first, second] = sessions;
    tokio::try_join!(
        build_indexes(first, indexes, &next),
        build_indexes(second, indexes, &next)
    )?;
    let analyze: Vec<String> = tables
        .iter()
        .map(|t| format!("{REPLAY_SCHEMA}.{t}"))
        .collect();
    first
        .batch_execute(&format!("ANALYZE {}", analyze.join(", ")))
        .await?;
    tracing::info!(
        seconds = started.elapsed().as_secs_f64(),
        "shadow indexes built"
    );
    Ok(())
}

/// Builds indexes from the shared list until none is left (`next`: the next one to take).
async fn build_indexes(
    client: &Client,
    indexes: &[IndexDdl],
    next: &AtomicUsize,
) -> Result<(), Error> {
    client
        .batch_execute("SET maintenance_work_mem = '256MB'")
        .await?;
    while let Some(index) = indexes.get(next.fetch_add(1, Ordering::Relaxed)) {
        tracing::debug!(table = %index.table, ddl = %index.ddl, "building index");
        client.batch_execute(&index.ddl).await?;
    }
    Ok(())
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
                tracing::info!(
                    horizon_txid = horizon.txid,
                    horizon_position = horizon.position,
                    "read tables swapped in"
                );
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
