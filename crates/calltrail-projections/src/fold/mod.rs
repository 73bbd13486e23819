//! Batch folding of log events into read-model row changes (pure: no I/O, no driver types).
//!
//! One code path for the live projector and replay: both load the prior rows a batch touches
//! into a [`Snapshot`] (what to load: [`needs`], then [`contact_needs`]), fold the batch's
//! events in log order with [`fold_batch`], and write the resulting [`Changes`] set-wise
//! (`crate::tables`). Only where and when rows are written differs: the live projector starts
//! each batch from a fresh snapshot and writes every change in the batch's transaction; replay
//! keeps the snapshot across pages as a write-back cache (it [`Changes::absorb`]s the keyed row
//! changes and writes them when the cache is full).
//!
//! Row values come from events only (event time, never processing time), so folding the same
//! events in the same order gives the same rows however they are cut into batches.
//!
//! - [`model`]: the snapshot and change types every other module shares.
//! - [`decode`]: an event's `data` read for folding (call event, grant, analysis result).
//! - [`calls`]: a call event: lifecycle, charge, contact, transcript, timeline.
//! - [`analysis`]: the `analysis.*` events: lead analytics rows, transcript statuses, jobs.
//! - [`campaigns`]: `campaign.*` and `attribution.set`: campaign rows, recipients, manual
//!   attributions, and which calls' attribution to derive again.

use std::collections::HashMap;

use calltrail_core::Bounds;
use uuid::Uuid;

pub mod analysis;
pub mod calls;
pub mod campaigns;
pub mod decode;
pub mod model;

pub use calls::contact_id;
pub use decode::{
    decode_batch, decode_events, pair, AnalysisDecoded, CampaignDecoded, Decoded, DecodedBatch,
    CALLTRAIL_PROVIDER, CREDITS_ADJUSTED, CREDITS_GRANTED,
};
pub use model::{
    AnalysisStatus, AnomalyNote, AttributionScope, CallKey, CallRecord, CampaignChanges, Changes,
    ContactDetail, ContactKey, ContactRecord, CreditChange, DeadLetter, JobRequest,
    LeadAnalyticsRow, LeadKey, Needs, Snapshot, TimelineRow, TranscriptAnalysis, TranscriptChange,
};

/// The calls and balances a batch needs (step 1 of loading).
pub fn needs(batch: &DecodedBatch<'_>) -> Needs {
    let mut calls = Vec::new();
    let mut users = Vec::new();
    for (event, decoded) in batch {
        match decoded {
            Ok(Decoded::Call(_)) => {
                calls.push(call_key(event));
                users.push(event.tenant_id);
            }
            Ok(Decoded::Other | Decoded::Analysis(_)) => {
                calls.push(call_key(event));
            }
            Ok(Decoded::Grant { .. } | Decoded::Adjustment { .. }) => {
                users.push(event.tenant_id);
            }
            Ok(Decoded::Campaign(_)) | Err(_) => {}
        }
    }
    calls.sort_unstable();
    calls.dedup();
    users.sort_unstable();
    users.dedup();
    Needs { calls, users }
}

/// The contacts a batch needs (step 2 of loading, once the calls are loaded): every phone
/// number its call events, its calls' stored states or its analyses carry.
pub fn contact_needs(
    batch: &DecodedBatch<'_>,
    calls: &HashMap<CallKey, CallRecord>,
) -> Vec<ContactKey> {
    let mut keys: Vec<ContactKey> = Vec::new();
    for (event, decoded) in batch {
        let user = event.tenant_id;
        let call = match decoded {
            Ok(Decoded::Call(call)) => call,
            Ok(Decoded::Analysis(analysis)) => {
                if let AnalysisDecoded::Recorded(r) = analysis.as_ref() {
                    if let Some(phone) = &r.phone_number {
                        keys.push((user, phone.clone()));
                    }
                }
                continue;
            }
            _ => continue,
        };
        if let Some(phone) = &call.phone_number {
            keys.push((user, phone.as_str().to_owned()));
        }
        let stored = calls
            .get(&call_key(event))
            .and_then(|record| record.state.phone_number.as_ref());
        if let Some(phone) = stored {
            keys.push((user, phone.as_str().to_owned()));
        }
    }
    keys.sort_unstable();
    keys.dedup();
    keys
}

/// The rules a fold applies beyond the events: the billing rate and the bounds of trust.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rules {
    /// Billing rate (`CALLTRAIL_CREDITS_PER_MINUTE`).
    pub credits_per_minute: i64,
    /// What a webhook's numbers must fall within (`CALLTRAIL_MAX_CALL_SECONDS`).
    pub bounds: Bounds,
}

impl Default for Rules {
    fn default() -> Self {
        Rules {
            credits_per_minute: 1,
            bounds: Bounds::default(),
        }
    }
}

/// Folds a batch in log order into `snapshot` (which it advances) and returns the row changes.
pub fn fold_batch(snapshot: &mut Snapshot, batch: &DecodedBatch<'_>, rules: Rules) -> Changes {
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
                calls::fold_call(snapshot, &mut changes, event, call, &rules);
            }
            Ok(Decoded::Grant { amount }) => {
                credit(
                    &mut snapshot.balances,
                    &mut changes,
                    event,
                    "grant",
                    *amount,
                );
            }
            Ok(Decoded::Adjustment { amount }) => {
                credit(
                    &mut snapshot.balances,
                    &mut changes,
                    event,
                    "adjustment",
                    *amount,
                );
            }
            Ok(Decoded::Campaign(campaign)) => {
                campaigns::fold_campaign(&mut changes, event, campaign);
            }
            Ok(Decoded::Other) => {
                if snapshot.calls.contains_key(&call_key(event)) {
                    changes.timeline.push(calls::timeline_row(event));
                }
            }
            Ok(Decoded::Analysis(analysis)) => {
                if snapshot.calls.contains_key(&call_key(event)) {
                    changes.timeline.push(calls::timeline_row(event));
                }
                analysis::fold_analysis(snapshot, &mut changes, event, analysis);
            }
        }
    }
    changes
}

/// The key of the call an event belongs to: its tenant, provider and stream id. Events
/// calltrail writes about a call (`analysis.*`) carry the call's provider, so they find it;
/// one under provider `calltrail` names no call.
pub fn call_key(event: &calltrail_eventlog::StoredEvent) -> CallKey {
    (
        event.tenant_id,
        event.provider.clone(),
        event.stream_id.clone(),
    )
}

/// A credit grant or an operator's adjustment: the balance moves by `amount` and a `kind`
/// (`grant`, `adjustment`) transaction is recorded with the balance after it.
fn credit(
    balances: &mut HashMap<Uuid, i64>,
    changes: &mut Changes,
    event: &calltrail_eventlog::StoredEvent,
    kind: &'static str,
    amount: i64,
) {
    let balance = balances.entry(event.tenant_id).or_insert(0);
    *balance = balance.saturating_add(amount);
    changes.balances.insert(event.tenant_id);
    changes.credits.push(CreditChange {
        user_id: event.tenant_id,
        kind,
        amount,
        balance_after: *balance,
        call_id: None,
        provider: None,
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        position: event.position,
    });
}
