//! The fold stage of replay (`super`, step 4): a reader task pages through the log, the
//! replay task decodes and folds with a write-back cache, and a writer task on a connection
//! of its own writes each page in one short transaction.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use calltrail_eventlog::{Checkpoint, EventLog, StoredEvent};
use tokio::sync::{mpsc, oneshot};
use tokio_postgres::Client;

use super::{ReplayOptions, REPLAY_SCHEMA};
use crate::fold::{
    self, CallKey, CallRecord, Changes, ContactKey, ContactRecord, DecodedBatch, Snapshot,
};
use crate::projector::READ_MODELS;
use crate::tables::{self, calls, contacts};
use crate::Error;

/// Pages of the log up to `horizon`, read ahead by a task of their own (two pages queued).
pub(super) fn spawn_reader(
    log: EventLog,
    horizon: Option<Checkpoint>,
    page: usize,
) -> (
    mpsc::Receiver<Result<Vec<StoredEvent>, Error>>,
    tokio::task::JoinHandle<()>,
) {
    let (sender, pages) = mpsc::channel(2);
    let task = tokio::spawn(async move {
        let Some(horizon) = horizon else {
            return;
        };
        let limit = i64::try_from(page).unwrap_or(i64::MAX);
        let mut after = Checkpoint::START;
        loop {
            let read = log.read_after(after, limit).await;
            let events = match read {
                Ok(events) => events,
                Err(error) => {
                    // The receiver reports it; if it is gone, there is nobody to tell.
                    let _ = sender.send(Err(error.into())).await;
                    return;
                }
            };
            let full = events.len() == page;
            let Some(last) = events.last().map(StoredEvent::checkpoint) else {
                return;
            };
            let events = up_to(events, horizon);
            let more = full && last < horizon;
            if events.is_empty() || sender.send(Ok(events)).await.is_err() || !more {
                return;
            }
            after = last;
        }
    });
    (pages, task)
}

/// Folds the pages in log order, sends each page's rows to the writer, and returns the number
/// of events folded.
pub(super) async fn fold_pages(
    mut pages: mpsc::Receiver<Result<Vec<StoredEvent>, Error>>,
    writer: &Writer,
    opts: &ReplayOptions,
    total: u64,
    progress: &impl Fn(u64, u64),
) -> Result<u64, Error> {
    let mut cache = Cache::default();
    let mut done: u64 = 0;
    while let Some(events) = pages.recv().await {
        let events = events?;
        let batch = fold::decode_batch(&events);
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

/// The events at or before `horizon` (a page may run past it).
fn up_to(mut events: Vec<StoredEvent>, horizon: Checkpoint) -> Vec<StoredEvent> {
    events.retain(|e| e.checkpoint() <= horizon);
    events
}
