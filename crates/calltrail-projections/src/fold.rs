//! Batch folding of log events into read-model row changes (pure, no I/O).
//!
//! One code path for the live projector and replay: both load the prior rows a batch touches
//! into a [`Snapshot`], fold the batch's events in log order with [`fold_batch`], and write the
//! resulting [`Changes`] set-wise (see `write`). Only where and when rows are written differs:
//! the live projector starts each batch from a fresh snapshot and writes every change in the
//! batch's transaction; replay keeps the snapshot across pages as a write-back cache (it
//! [`Changes::absorb`]s the keyed row changes and writes them when the cache is full).
//!
//! Row values come from events only (event time, never processing time), so folding the same
//! events in the same order gives the same rows however they are cut into batches.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::{CallEvent, CallState, LifecycleStatus};
use calltrail_eventlog::{Checkpoint, StoredEvent};
use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::analysis_fold::{self, AnalysisDecoded, TranscriptAnalysis};
use crate::jobs::JobRequest;

/// Provider name of events calltrail creates itself.
pub const CALLTRAIL_PROVIDER: &str = "calltrail";
/// Event type of a credit grant (`data = {"amount": N}`, N > 0).
pub const CREDITS_GRANTED: &str = "credits.granted";

/// A call's key: tenant and the provider's execution id (the event's stream id).
pub type CallKey = (Uuid, String);
/// A contact's key: tenant and E.164 phone number.
pub type ContactKey = (Uuid, String);

/// An event decoded for folding.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A provider webhook, normalized.
    Call(Box<CallEvent>),
    /// `credits.granted`: a positive amount.
    Grant {
        /// Credits granted (> 0).
        amount: i64,
    },
    /// `analysis.individual`, `analysis.complete` or `analysis.failed`.
    Analysis(Box<AnalysisDecoded>),
    /// Any other event: only recorded in the timeline of a known call.
    Other,
}

/// Decodes an event's `data`; the error says why it cannot be folded (it becomes a dead letter).
pub fn decode(event: &StoredEvent) -> Result<Decoded, String> {
    if event.provider == CALLTRAIL_PROVIDER && event.event_type == CREDITS_GRANTED {
        #[derive(serde::Deserialize)]
        struct Grant {
            amount: i64,
        }
        let grant: Grant = serde_json::from_str(&event.data)
            .map_err(|e| format!("credit grant data is not {{\"amount\": N}}: {e}"))?;
        if grant.amount <= 0 {
            return Err(format!(
                "credit grant amount must be positive, got {}",
                grant.amount
            ));
        }
        return Ok(Decoded::Grant {
            amount: grant.amount,
        });
    }
    if let Some(analysis) = analysis_fold::decode(event) {
        return analysis;
    }
    if event.provider == CALLTRAIL_PROVIDER || event.event_type.starts_with("analysis.") {
        return Ok(Decoded::Other);
    }
    if event.schema_version != CALL_EVENT_SCHEMA_VERSION {
        return Err(format!(
            "unsupported call event schema_version {} (this build reads {CALL_EVENT_SCHEMA_VERSION})",
            event.schema_version
        ));
    }
    let call: CallEvent = serde_json::from_str(&event.data)
        .map_err(|e| format!("call event data cannot be decoded: {e}"))?;
    Ok(Decoded::Call(Box::new(call)))
}

/// A call row as the fold sees it: the core state plus what the row adds.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CallRecord {
    /// The folded lifecycle state.
    pub state: CallState,
    /// The contact of the call's phone number.
    pub contact_id: Option<Uuid>,
    /// Whether this call already counted in its contact's `not_connected`.
    pub not_connected_counted: bool,
    /// Shown as `call_lifecycle_status` while only statuses calltrail does not know arrived
    /// (the greatest such status text, so the value does not depend on order).
    pub unknown_status: Option<String>,
    /// Position of the last event folded in.
    pub last_position: i64,
    /// The call's analysis status (its transcript row's).
    pub analysis: TranscriptAnalysis,
}

impl CallRecord {
    /// The `call_lifecycle_status` column.
    pub fn lifecycle_status(&self) -> &str {
        match (&self.state.lifecycle_status, &self.unknown_status) {
            (Some(status), _) => status.as_str(),
            (None, Some(status)) => status,
            (None, None) => "unknown",
        }
    }
}

/// A contact row.
#[derive(Debug, Clone, PartialEq)]
pub struct ContactRecord {
    /// Derived from the key ([`contact_id`]).
    pub id: Uuid,
    /// Name, when an event passed one.
    pub name: Option<String>,
    /// Company, when an event passed one.
    pub company: Option<String>,
    /// Calls of this contact that became no-answer or busy.
    pub not_connected: i64,
    /// The call whose event created it.
    pub auto_created_from_call_id: Option<String>,
    /// Event time of that event.
    pub created_at: DateTime<Utc>,
}

/// The prior rows a batch touches, loaded before folding (absent key = no row yet).
#[derive(Debug, Clone, Default)]
pub struct Snapshot {
    /// Calls by key.
    pub calls: HashMap<CallKey, CallRecord>,
    /// Contacts by key.
    pub contacts: HashMap<ContactKey, ContactRecord>,
    /// Credit balances by user.
    pub balances: HashMap<Uuid, i64>,
}

/// A transcript to insert (or whose content to update when the row exists).
#[derive(Debug, Clone, PartialEq)]
pub struct TranscriptChange {
    /// Transcript text.
    pub content: String,
    /// Event time of the event that first carried it (used only when inserting).
    pub created_at: DateTime<Utc>,
    /// The call's analysis status (event-derived: pending, completed or failed).
    pub analysis: TranscriptAnalysis,
}

/// One credit transaction.
#[derive(Debug, Clone, PartialEq)]
pub struct CreditChange {
    /// The user.
    pub user_id: Uuid,
    /// `grant` or `usage`.
    pub kind: &'static str,
    /// Signed amount.
    pub amount: i64,
    /// Balance after it, in log order.
    pub balance_after: i64,
    /// Charged call (usage).
    pub call_id: Option<String>,
    /// Event time.
    pub created_at: DateTime<Utc>,
    /// Position of the causing event.
    pub position: i64,
}

/// One timeline row.
#[derive(Debug, Clone, PartialEq)]
pub struct TimelineRow {
    /// The user.
    pub user_id: Uuid,
    /// The call.
    pub execution_id: String,
    /// Event type.
    pub event_type: String,
    /// Event time.
    pub occurred_at: DateTime<Utc>,
    /// Record time.
    pub recorded_at: DateTime<Utc>,
    /// Position.
    pub position: i64,
}

/// An event that could not be folded.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadLetter {
    /// Its position.
    pub position: i64,
    /// Its writer's transaction id.
    pub txid: i64,
    /// Its type.
    pub event_type: String,
    /// Its stream.
    pub stream_id: String,
    /// Why it could not be folded.
    pub error: String,
}

/// Every row change of a batch, ready to be written set-wise. Calls, contacts and balances
/// are named by key: their rows are the [`Snapshot`]'s.
#[derive(Debug, Clone, Default)]
pub struct Changes {
    /// Calls to upsert.
    pub calls: BTreeSet<CallKey>,
    /// Contacts to upsert.
    pub contacts: BTreeSet<ContactKey>,
    /// Transcripts to upsert.
    pub transcripts: BTreeMap<CallKey, TranscriptChange>,
    /// Credit transactions to insert, in log order.
    pub credits: Vec<CreditChange>,
    /// Users whose balance changed.
    pub balances: BTreeSet<Uuid>,
    /// Timeline rows to insert.
    pub timeline: Vec<TimelineRow>,
    /// Events that could not be folded.
    pub dead_letters: Vec<DeadLetter>,
    /// Lead analytics rows to upsert (each only over an older one).
    pub lead_analytics: BTreeMap<analysis_fold::LeadKey, analysis_fold::LeadAnalyticsRow>,
    /// Analysis jobs to enqueue (the live projector only; replay ignores them).
    pub jobs: Vec<JobRequest>,
    /// Events folded (dead letters included).
    pub events: usize,
    /// The checkpoint after the batch's last event.
    pub last: Option<Checkpoint>,
}

impl Changes {
    /// Adds a later batch's row changes to these (upserts by key; a transcript keeps the
    /// time it first appeared). Events, timeline, credits and dead letters are not merged.
    pub fn absorb(&mut self, later: Changes) {
        self.calls.extend(later.calls);
        self.contacts.extend(later.contacts);
        self.balances.extend(later.balances);
        for (key, transcript) in later.transcripts {
            self.transcripts
                .entry(key)
                .and_modify(|t| {
                    t.content.clone_from(&transcript.content);
                    t.analysis.clone_from(&transcript.analysis);
                })
                .or_insert(transcript);
        }
    }

    /// Takes out what is written with every batch (credit transactions, timeline rows, dead
    /// letters, lead analytics, jobs, counts), leaving the keyed row changes.
    pub fn take_appends(&mut self) -> Changes {
        Changes {
            credits: std::mem::take(&mut self.credits),
            timeline: std::mem::take(&mut self.timeline),
            dead_letters: std::mem::take(&mut self.dead_letters),
            lead_analytics: std::mem::take(&mut self.lead_analytics),
            jobs: std::mem::take(&mut self.jobs),
            events: self.events,
            last: self.last,
            ..Changes::default()
        }
    }

    /// True when no row needs writing.
    pub fn is_empty(&self) -> bool {
        self.calls.is_empty()
            && self.contacts.is_empty()
            && self.balances.is_empty()
            && self.transcripts.is_empty()
            && self.credits.is_empty()
            && self.timeline.is_empty()
            && self.dead_letters.is_empty()
            && self.lead_analytics.is_empty()
    }
}

/// The keys whose rows a batch needs before it can be folded.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Needs {
    /// Calls named by call events and other events.
    pub calls: Vec<CallKey>,
    /// Users whose balance may change.
    pub users: Vec<Uuid>,
}

/// A batch's events paired with their decoding.
pub type DecodedBatch<'a> = Vec<(&'a StoredEvent, Result<Decoded, String>)>;

/// Decodes a batch.
pub fn decode_batch(events: &[StoredEvent]) -> DecodedBatch<'_> {
    events.iter().map(|e| (e, decode(e))).collect()
}

/// The calls and balances a batch needs (step 1 of loading).
pub fn needs(batch: &DecodedBatch<'_>) -> Needs {
    let mut calls = Vec::new();
    let mut users = Vec::new();
    for (event, decoded) in batch {
        match decoded {
            Ok(Decoded::Call(_)) => {
                calls.push((event.tenant_id, event.stream_id.clone()));
                users.push(event.tenant_id);
            }
            Ok(Decoded::Other | Decoded::Analysis(_)) => {
                calls.push((event.tenant_id, event.stream_id.clone()));
            }
            Ok(Decoded::Grant { .. }) => users.push(event.tenant_id),
            Err(_) => {}
        }
    }
    calls.sort_unstable();
    calls.dedup();
    users.sort_unstable();
    users.dedup();
    Needs { calls, users }
}

/// The contacts a batch needs (step 2 of loading, once the calls are loaded): every phone
/// number its call events or its calls' stored states carry.
pub fn contact_needs(
    batch: &DecodedBatch<'_>,
    calls: &HashMap<CallKey, CallRecord>,
) -> Vec<ContactKey> {
    let mut keys: Vec<ContactKey> = Vec::new();
    for (event, decoded) in batch {
        let Ok(Decoded::Call(call)) = decoded else {
            continue;
        };
        let user = event.tenant_id;
        if let Some(phone) = &call.phone_number {
            keys.push((user, phone.as_str().to_owned()));
        }
        let stored = calls
            .get(&(user, event.stream_id.clone()))
            .and_then(|record| record.state.phone_number.as_ref());
        if let Some(phone) = stored {
            keys.push((user, phone.as_str().to_owned()));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The id of the contact `(user_id, phone)`: derived, not random, so a replay gives it again.
pub fn contact_id(user_id: Uuid, phone: &str) -> Uuid {
    let digest = Sha256::new()
        .chain_update(b"calltrail.contact\0")
        .chain_update(user_id.as_bytes())
        .chain_update(phone.as_bytes())
        .finalize();
    let mut bytes = [0_u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// Folds a batch in log order into `snapshot` (which it advances) and returns the row changes.
pub fn fold_batch(
    snapshot: &mut Snapshot,
    batch: &DecodedBatch<'_>,
    credits_per_minute: i64,
) -> Changes {
    let mut changes = Changes::default();
    for (event, decoded) in batch {
        changes.events += 1;
        changes.last = Some(event.checkpoint());
        match decoded {
            Err(error) => changes.dead_letters.push(DeadLetter {
                position: event.position,
                txid: event.txid,
                event_type: event.event_type.clone(),
                stream_id: event.stream_id.clone(),
                error: error.clone(),
            }),
            Ok(Decoded::Call(call)) => {
                fold_call(snapshot, &mut changes, event, call, credits_per_minute);
            }
            Ok(Decoded::Grant { amount }) => {
                let balance = snapshot.balances.entry(event.tenant_id).or_insert(0);
                *balance = balance.saturating_add(*amount);
                changes.balances.insert(event.tenant_id);
                changes.credits.push(CreditChange {
                    user_id: event.tenant_id,
                    kind: "grant",
                    amount: *amount,
                    balance_after: *balance,
                    call_id: None,
                    created_at: event.occurred_at,
                    position: event.position,
                });
            }
            Ok(Decoded::Other) => {
                let key = (event.tenant_id, event.stream_id.clone());
                if snapshot.calls.contains_key(&key) {
                    changes.timeline.push(timeline_row(event));
                }
            }
            Ok(Decoded::Analysis(analysis)) => {
                let key = (event.tenant_id, event.stream_id.clone());
                if snapshot.calls.contains_key(&key) {
                    changes.timeline.push(timeline_row(event));
                }
                analysis_fold::fold(snapshot, &mut changes, event, analysis);
            }
        }
    }
    changes
}

fn fold_call(
    snapshot: &mut Snapshot,
    changes: &mut Changes,
    event: &StoredEvent,
    call: &CallEvent,
    credits_per_minute: i64,
) {
    let user_id = event.tenant_id;
    let key = (user_id, event.stream_id.clone());
    let record = snapshot.calls.entry(key.clone()).or_default();
    let charged_before = record.state.charge.is_some();
    // Only an event that carries a transcript can change it: the copy is made only then.
    let transcript_before = call
        .transcript
        .is_some()
        .then(|| record.state.transcript.clone());

    record.state.apply(call, credits_per_minute);
    record.last_position = event.position;
    if record.state.lifecycle_status.is_none() && call.status.is_other() {
        let status = call.status.as_str();
        if record.unknown_status.as_deref().is_none_or(|s| status > s) {
            record.unknown_status = Some(status.to_owned());
        }
    }

    // Credits: a call is charged once, by the first charging event in log order.
    if let (false, Some(charge)) = (charged_before, record.state.charge) {
        let balance = snapshot.balances.entry(user_id).or_insert(0);
        *balance = balance.saturating_sub(charge.credits);
        changes.balances.insert(user_id);
        changes.credits.push(CreditChange {
            user_id,
            kind: "usage",
            amount: charge.credits.saturating_neg(),
            balance_after: *balance,
            call_id: Some(event.stream_id.clone()),
            created_at: event.occurred_at,
            position: event.position,
        });
    }

    // Contacts: created by the first event of a (user, phone) pair.
    if let Some(phone) = record.state.phone_number.as_ref() {
        let contact_key = (user_id, phone.as_str().to_owned());
        let mut dirty = !snapshot.contacts.contains_key(&contact_key);
        let contact = snapshot
            .contacts
            .entry(contact_key.clone())
            .or_insert_with(|| ContactRecord {
                id: contact_id(user_id, phone.as_str()),
                name: None,
                company: None,
                not_connected: 0,
                auto_created_from_call_id: Some(event.stream_id.clone()),
                created_at: event.occurred_at,
            });
        if contact.name.is_none() && record.state.contact_name.is_some() {
            contact.name.clone_from(&record.state.contact_name);
            dirty = true;
        }
        if contact.company.is_none() && record.state.contact_company.is_some() {
            contact.company.clone_from(&record.state.contact_company);
            dirty = true;
        }
        let not_connected = matches!(
            record.state.lifecycle_status,
            Some(LifecycleStatus::NoAnswer | LifecycleStatus::Busy)
        );
        if not_connected && !record.not_connected_counted {
            contact.not_connected = contact.not_connected.saturating_add(1);
            record.not_connected_counted = true;
            dirty = true;
        }
        record.contact_id = Some(contact.id);
        if dirty {
            changes.contacts.insert(contact_key);
        }
    }

    // Transcripts: upserted when the call's transcript appears or changes; its first
    // appearance asks for the call's individual analysis.
    if let Some(transcript_before) =
        transcript_before.filter(|before| *before != record.state.transcript)
    {
        if transcript_before.is_none() && record.state.transcript.is_some() {
            changes.jobs.push(analysis_fold::individual_job(
                event,
                record
                    .state
                    .phone_number
                    .as_ref()
                    .map(|p| p.as_str().to_owned()),
                record.state.created_at,
            ));
        }
        if let Some(content) = record.state.transcript.clone() {
            changes
                .transcripts
                .entry(key.clone())
                .and_modify(|t| t.content.clone_from(&content))
                .or_insert(TranscriptChange {
                    content,
                    created_at: event.occurred_at,
                    analysis: record.analysis.clone(),
                });
        }
    }

    changes.calls.insert(key);
    changes.timeline.push(timeline_row(event));
}

fn timeline_row(event: &StoredEvent) -> TimelineRow {
    TimelineRow {
        user_id: event.tenant_id,
        execution_id: event.stream_id.clone(),
        event_type: event.event_type.clone(),
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        position: event.position,
    }
}
