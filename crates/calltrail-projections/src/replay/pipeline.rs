//! The stages of replay (`super`, step 4): a reader task reads the log with binary `COPY` and
//! decodes each page, the replay task folds with a write-back cache, and a writer task on a
//! connection of its own writes each page in one short transaction.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};
use std::pin::pin;

use calltrail_eventlog::{Checkpoint, EventLog, StoredEvent};
use futures_util::StreamExt;
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::binary_copy::BinaryCopyOutStream;
use tokio_postgres::types::Type;
use tokio_postgres::Client;

use super::{ReplayOptions, REPLAY_SCHEMA};
use crate::fold::{
    self, CallKey, CallRecord, Changes, ContactKey, ContactRecord, Decoded, DecodedBatch, Snapshot,
};
use crate::projector::READ_MODELS;
use crate::tables::{self, calls, contacts};
use crate::Error;

/// A page of the log, decoded (the events keep no `data` or compact copy: the fold reads only
/// their decodings and their metadata).
pub(super) struct Page {
    events: Vec<StoredEvent>,
    decoded: Vec<Result<Decoded, String>>,
}

/// Pages of the log up to `horizon`, read and decoded ahead by a task of their own on
/// `client` (two pages queued), so reading and decoding overlap the fold and the writes.
pub(super) fn spawn_reader(
    client: Client,
    log: EventLog,
    horizon: Option<Checkpoint>,
    page: usize,
) -> (
    mpsc::Receiver<Result<Page, Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (sender, pages) = mpsc::channel(2);
    let task = tokio::spawn(async move {
        let Some(horizon) = horizon else {
            return;
        };
        let mut after = Checkpoint::START;
        loop {
            let read = async {
                let mut events = read_page(&client, after, horizon, page).await?;
                let decoded = fold::decode_events(&log, &mut events).await?;
                for event in &mut events {
                    event.data = String::new();
                    event.compact = None;
                }
                Ok::<_, Error>(Page { events, decoded })
            };
            let page_read = match read.await {
                Ok(page_read) => page_read,
                Err(error) => {
                    // The receiver reports it; if it is gone, there is nobody to tell.
                    let _ = sender.send(Err(error)).await;
                    return;
                }
            };
            let full = page_read.events.len() == page;
            let Some(last) = page_read.events.last().map(StoredEvent::checkpoint) else {
                return;
            };
            if sender.send(Ok(page_read)).await.is_err() || !full {
                return;
            }
            after = last;
        }
    });
    (pages, task)
}

/// The columns [`read_page`] copies out, in order. `txid` is sent as it is stored: `xid8`'s
/// binary form is a big-endian 64-bit integer, as `int8`'s is.
const PAGE_COLUMNS: [Type; 11] = [
    Type::INT8,
    Type::INT8,
    Type::UUID,
    Type::TEXT,
    Type::TEXT,
    Type::TEXT,
    Type::INT4,
    Type::TIMESTAMPTZ,
    Type::TIMESTAMPTZ,
    Type::BYTEA,
    Type::TEXT,
];

/// Up to `limit` events after `after` and at or before `horizon`, in `(txid, position)` order,
/// by binary `COPY`: each event's compact copy, or its `data` as text when it has none.
///
/// Gap-safe without asking for the snapshot's xmin: the horizon was the last event below the
/// xmin when the replay started, so every transaction that wrote at or before it has ended.
async fn read_page(
    client: &Client,
    after: Checkpoint,
    horizon: Checkpoint,
    limit: usize,
) -> Result<Vec<StoredEvent>, Error> {
    // COPY takes no parameters; these are integers, formatted by Rust.
    let sql = format!(
        "COPY (SELECT position, txid, tenant_id, provider, stream_id, event_type,
                      schema_version, occurred_at, recorded_at, compact,
                      CASE WHEN compact IS NULL THEN data::text END
                 FROM events
                WHERE (txid, position) > ('{}'::xid8, {})
                  AND (txid, position) <= ('{}'::xid8, {})
                ORDER BY txid, position
                LIMIT {limit}) TO STDOUT (FORMAT binary)",
        after.txid, after.position, horizon.txid, horizon.position
    );
    let stream = client.copy_out(&sql).await?;
    let mut rows = pin!(BinaryCopyOutStream::new(stream, &PAGE_COLUMNS));
    let mut events = Vec::with_capacity(limit.min(100_000));
    while let Some(row) = rows.next().await {
        let row = row?;
        events.push(StoredEvent {
            position: row.try_get(0)?,
            txid: row.try_get(1)?,
            tenant_id: row.try_get(2)?,
            provider: row.try_get(3)?,
            stream_id: row.try_get(4)?,
            event_type: row.try_get(5)?,
            schema_version: row.try_get(6)?,
            occurred_at: row.try_get(7)?,
            recorded_at: row.try_get(8)?,
            compact: row.try_get(9)?,
            data: row.try_get::<Option<String>>(10)?.unwrap_or_default(),
        });
    }
    Ok(events)
}

/// Folds the pages in log order, sends each page's rows to the writer, and returns the number
/// of events folded.
pub(super) async fn fold_pages(
    mut pages: mpsc::Receiver<Result<Page, Error>>,
    writer: &Writer,
    opts: &ReplayOptions,
    total: u64,
    progress: &impl Fn(u64, u64),
) -> Result<u64, Error> {
    let mut cache = Cache::default();
    let mut done: u64 = 0;
    while let Some(page) = pages.recv().await {
        let Page { events, decoded } = page?;
        let batch = fold::pair(&events, decoded);
        cache.load_written(&batch, writer).await?;
        let rules = fold::Rules {
            credits_per_minute: opts.credits_per_minute,
            bounds: opts.bounds,
        };
        let mut changes = fold::fold_batch(&mut cache.snapshot, &batch, rules);
        let appends = Box::new(changes.take_appends());
        cache.pending.absorb(changes);
        let rows = (cache.snapshot.calls.len() >= opts.cached_calls.max(1))
            .then(|| cache.write_back(true));
        writer.send(WriterJob::Write { appends, rows }).await?;
        done += u64::try_from(events.len()).unwrap_or(0);
        progress(done, total.max(done));
    }
    tracing::info!(
        events = done,
        loads = cache.loads,
        written_calls = cache.written_calls.len(),
        "log folded"
    );
    let rows = cache.write_back(false);
    writer
        .send(WriterJob::Write {
            appends: Box::default(),
            rows: Some(rows),
        })
        .await?;
    Ok(done)
}

/// The write-back cache of replay: the snapshot the fold advances, the keyed row changes not
/// written yet, and which keys were ever written (only those can have a row to load again).
#[derive(Default)]
struct Cache {
    snapshot: Snapshot,
    pending: Changes,
    written_calls: HashSet<u64>,
    written_contacts: HashSet<u64>,
    /// Loads asked of the writer (each waits for the writes queued before it).
    loads: u64,
}

impl Cache {
    /// Loads (through the writer, after every write before it) the calls and contacts this
    /// batch touches that were written back and evicted.
    async fn load_written(
        &mut self,
        batch: &DecodedBatch<'_>,
        writer: &Writer,
    ) -> Result<(), Error> {
        if self.written_calls.is_empty() {
            return Ok(());
        }
        let calls: Vec<CallKey> = fold::needs(batch)
            .calls
            .into_iter()
            .filter(|key| {
                !self.snapshot.calls.contains_key(key) && self.written_calls.contains(&digest(key))
            })
            .collect();
        if !calls.is_empty() {
            self.loads += 1;
            let loaded = writer.load_calls(calls).await?;
            self.snapshot.calls.extend(loaded);
        }
        let contacts: Vec<ContactKey> = fold::contact_needs(batch, &self.snapshot.calls)
            .into_iter()
            .filter(|key| {
                !self.snapshot.contacts.contains_key(key)
                    && self.written_contacts.contains(&digest(key))
            })
            .collect();
        if !contacts.is_empty() {
            self.loads += 1;
            let loaded = writer.load_contacts(contacts).await?;
            self.snapshot.contacts.extend(loaded);
        }
        Ok(())
    }

    /// Takes the pending keyed rows out for writing (with their records, transcripts left
    /// out: the row does not store them) and, when `evict`,
    /// drops the calls least recently touched (the older half by log position), and the
    /// contacts once there are [`CONTACTS_PER_CACHED_CALL`] times as many as calls. Balances
    /// stay (one per user).
    fn write_back(&mut self, evict: bool) -> Box<RowsToWrite> {
        let changes = std::mem::take(&mut self.pending);
        let mut rows = Snapshot {
            balances: self.snapshot.balances.clone(),
            ..Snapshot::default()
        };
        if evict {
            let evicted = evict_older_half(&mut self.snapshot.calls);
            rows.calls.extend(
                evicted
                    .into_iter()
                    .filter(|(key, _)| changes.calls.contains(key))
                    .map(|(key, mut record)| {
                        record.state.transcript = None;
                        (key, record)
                    }),
            );
            if self.snapshot.contacts.len()
                >= self
                    .snapshot
                    .calls
                    .len()
                    .saturating_mul(CONTACTS_PER_CACHED_CALL)
            {
                rows.contacts = std::mem::take(&mut self.snapshot.contacts);
            }
        }
        for key in &changes.calls {
            if !rows.calls.contains_key(key) {
                if let Some(record) = self.snapshot.calls.get_mut(key) {
                    rows.calls
                        .insert(key.clone(), copy_without_transcript(record));
                }
            }
            self.written_calls.insert(digest(key));
        }
        rows.contacts
            .retain(|key, _| changes.contacts.contains(key));
        for key in &changes.contacts {
            if !rows.contacts.contains_key(key) {
                if let Some(contact) = self.snapshot.contacts.get(key) {
                    rows.contacts.insert(key.clone(), contact.clone());
                }
            }
            self.written_contacts.insert(digest(key));
        }
        Box::new(RowsToWrite {
            snapshot: rows,
            changes,
        })
    }
}

/// A copy of a call's record for writing its row: without the transcript, which the row
/// leaves out (it is the transcripts row's content, written from the changes).
fn copy_without_transcript(record: &mut CallRecord) -> CallRecord {
    let transcript = record.state.transcript.take();
    let copy = record.clone();
    record.state.transcript = transcript;
    copy
}

/// A key's digest, for the sets of written keys (a collision only costs a needless load).
fn digest<K: Hash>(key: &K) -> u64 {
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    key.hash(&mut hasher);
    hasher.finish()
}

/// Keyed rows to upsert: the records of the changed keys.
struct RowsToWrite {
    snapshot: Snapshot,
    changes: Changes,
}

/// What the writer does, in the order it is asked.
enum WriterJob {
    /// One transaction: a page's append-only rows, and keyed rows written back.
    Write {
        appends: Box<Changes>,
        rows: Option<Box<RowsToWrite>>,
    },
    /// The stored rows of these calls.
    LoadCalls(
        Vec<CallKey>,
        oneshot::Sender<Result<Vec<(CallKey, CallRecord)>, Error>>,
    ),
    /// The stored rows of these contacts.
    LoadContacts(
        Vec<ContactKey>,
        oneshot::Sender<Result<Vec<(ContactKey, ContactRecord)>, Error>>,
    ),
}

/// The writer stage: a task with a connection of its own that runs jobs one after another.
pub(super) struct Writer {
    jobs: mpsc::Sender<WriterJob>,
    task: tokio::task::JoinHandle<Result<Client, Error>>,
}

impl Writer {
    pub(super) fn spawn(mut client: Client) -> Writer {
        // Two jobs queued: the fold of the next page overlaps the writes of this one, and
        // memory stays bounded when PostgreSQL is the slower stage.
        let (jobs, mut queue) = mpsc::channel::<WriterJob>(2);
        let task = tokio::spawn(async move {
            while let Some(job) = queue.recv().await {
                match job {
                    WriterJob::Write { appends, rows } => {
                        let tx = client.transaction().await?;
                        tables::write_appends(&tx, REPLAY_SCHEMA, READ_MODELS, &appends).await?;
                        if let Some(rows) = rows {
                            tables::write_rows(&tx, REPLAY_SCHEMA, &rows.snapshot, &rows.changes)
                                .await?;
                        }
                        tx.commit().await?;
                    }
                    WriterJob::LoadCalls(keys, reply) => {
                        let _ = reply.send(calls::load(&client, REPLAY_SCHEMA, &keys).await);
                    }
                    WriterJob::LoadContacts(keys, reply) => {
                        let _ = reply.send(contacts::load(&client, REPLAY_SCHEMA, &keys).await);
                    }
                }
            }
            Ok(client)
        });
        Writer { jobs, task }
    }

    /// Queues a job; fails when the writer has stopped (its own error is reported by
    /// [`Writer::finish`]).
    async fn send(&self, job: WriterJob) -> Result<(), Error> {
        self.jobs.send(job).await.map_err(|_| writer_stopped())
    }

    async fn load_calls(&self, keys: Vec<CallKey>) -> Result<Vec<(CallKey, CallRecord)>, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(WriterJob::LoadCalls(keys, reply)).await?;
        answer.await.map_err(|_| writer_stopped())?
    }

    async fn load_contacts(
        &self,
        keys: Vec<ContactKey>,
    ) -> Result<Vec<(ContactKey, ContactRecord)>, Error> {
        let (reply, answer) = oneshot::channel();
        self.send(WriterJob::LoadContacts(keys, reply)).await?;
        answer.await.map_err(|_| writer_stopped())?
    }

    /// Waits until every queued job is done; the writer's connection, or its first error.
    pub(super) async fn finish(self) -> Result<Client, Error> {
        drop(self.jobs);
        self.task.await.map_err(Error::ReplayWriterFailed)?
    }
}

fn writer_stopped() -> Error {
    Error::ReplayWriterStopped
}

/// Contacts kept per cached call before the contact cache is emptied: contacts are small, and
/// every one evicted and met again costs a load that stalls the pipeline.
const CONTACTS_PER_CACHED_CALL: usize = 4;

/// Removes and returns the calls least recently touched (the older half by log position).
fn evict_older_half(calls: &mut HashMap<CallKey, CallRecord>) -> HashMap<CallKey, CallRecord> {
    let mut positions: Vec<i64> = calls.values().map(|c| c.last_position).collect();
    let middle = positions.len() / 2;
    let threshold = match positions.get(middle) {
        Some(_) => *positions.select_nth_unstable(middle).1,
        None => i64::MAX,
    };
    let (kept, evicted) = std::mem::take(calls)
        .into_iter()
        .partition(|(_, call)| call.last_position >= threshold);
    *calls = kept;
    evicted
}
