//! Folding one call event into its call row and everything that follows from it, in this
//! order: the lifecycle state (`calltrail-core`'s precedence), the charge (a credit
//! transaction and the balance), the contact, the transcript (and the analysis job its first
//! appearance asks for), and the timeline row.

use std::collections::HashMap;

use calltrail_core::{ledger_entry, CallEvent, LifecycleStatus};
use calltrail_eventlog::StoredEvent;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use super::analysis::individual_job;
use super::model::{
    AnomalyNote, CallKey, CallRecord, Changes, ContactDetail, ContactKey, ContactRecord,
    CreditChange, Snapshot, TimelineRow, TranscriptChange,
};
use super::Rules;

/// Folds a call event into `snapshot` and records the rows it changes in `changes`.
pub(super) fn fold_call(
    snapshot: &mut Snapshot,
    changes: &mut Changes,
    event: &StoredEvent,
    call: &CallEvent,
    rules: &Rules,
) {
    // Values out of range are replaced (CONTRACT §4.5, `anomalies`); the copy is made only then.
    let bounded;
    let call = if rules.bounds.admits(call, event.recorded_at) {
        call
    } else {
        let mut copy = call.clone();
        copy.bound(event.recorded_at, &rules.bounds);
        changes.anomalies.push(AnomalyNote {
            tenant_id: event.tenant_id,
            provider: event.provider.clone(),
            execution_id: event.stream_id.clone(),
            event_type: event.event_type.clone(),
            position: event.position,
            anomalies: copy.anomalies.clone(),
        });
        bounded = copy;
        &bounded
    };
    let key = super::call_key(event);
    let record = snapshot.calls.entry(key.clone()).or_default();
    let charged_before = credits(record);
    // Only an event that carries a transcript can change it: the copy is made only then.
    let transcript_before = call
        .transcript
        .is_some()
        .then(|| record.state.transcript.clone());

    apply_lifecycle(record, event, call, rules.credits_per_minute);
    charge(
        &mut snapshot.balances,
        changes,
        record,
        event,
        charged_before,
    );
    touch_contact(&mut snapshot.contacts, changes, record, event, call);
    if let Some(before) = transcript_before {
        record_transcript(changes, &key, record, event, before);
    }

    changes.calls.insert(key);
    changes.timeline.push(timeline_row(event));
}

/// Lifecycle: the core state's precedence rules, and the greatest unknown status text while
/// no known status arrived.
fn apply_lifecycle(
    record: &mut CallRecord,
    event: &StoredEvent,
    call: &CallEvent,
    credits_per_minute: i64,
) {
    record.state.apply(call, credits_per_minute);
    record.last_position = event.position;
    if record.state.lifecycle_status.is_none() && call.status.is_other() {
        let status = call.status.as_str();
        if record.unknown_status.as_deref().is_none_or(|s| status > s) {
            record.unknown_status = Some(status.to_owned());
        }
    }
}

/// The credits a call's charge takes (0 while it has none).
fn credits(record: &CallRecord) -> i64 {
    record.state.charge.map_or(0, |c| c.credits)
}

/// Credits: when this event changed the call's charge, the transaction that follows
/// (`calltrail_core::ledger_entry`: the first charge is a usage, a later change an adjustment).
fn charge(
    balances: &mut HashMap<Uuid, i64>,
    changes: &mut Changes,
    record: &CallRecord,
    event: &StoredEvent,
    before: i64,
) {
    let Some((kind, amount)) = ledger_entry(before, credits(record)) else {
        return;
    };
    let user_id = event.tenant_id;
    let balance = balances.entry(user_id).or_insert(0);
    *balance = balance.saturating_add(amount);
    changes.balances.insert(user_id);
    changes.credits.push(CreditChange {
        user_id,
        kind: kind.as_str(),
        amount,
        balance_after: *balance,
        call_id: Some(event.stream_id.clone()),
        provider: Some(event.provider.clone()),
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        position: event.position,
    });
}

/// Contacts: created by the first event of a (user, phone) pair; name, e-mail and company
/// are the newest any event gave ([`ContactDetail::offer`]); `not_connected` counts each call
/// that became no-answer or busy once.
fn touch_contact(
    contacts: &mut HashMap<ContactKey, ContactRecord>,
    changes: &mut Changes,
    record: &mut CallRecord,
    event: &StoredEvent,
    call: &CallEvent,
) {
    let user_id = event.tenant_id;
    let Some(phone) = record.state.phone_number.as_ref() else {
        return;
    };
    let contact_key = (user_id, phone.as_str().to_owned());
    let mut dirty = !contacts.contains_key(&contact_key);
    let contact = contacts
        .entry(contact_key.clone())
        .or_insert_with(|| ContactRecord {
            id: contact_id(user_id, phone.as_str()),
            name: ContactDetail::default(),
            email: ContactDetail::default(),
            company: ContactDetail::default(),
            not_connected: 0,
            auto_created_from_call_id: Some(event.stream_id.clone()),
            auto_created_from_provider: Some(event.provider.clone()),
            created_at: event.occurred_at,
        });
    let at = call.occurred_at;
    dirty |= contact.name.offer(call.contact_name.as_deref(), at);
    dirty |= contact.email.offer(call.contact_email.as_deref(), at);
    dirty |= contact.company.offer(call.contact_company.as_deref(), at);
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

/// Transcripts: upserted when the call's transcript appears or changes (`before` is the
/// transcript before this event); its first appearance asks for the call's individual analysis.
fn record_transcript(
    changes: &mut Changes,
    key: &CallKey,
    record: &CallRecord,
    event: &StoredEvent,
    before: Option<String>,
) {
    if before == record.state.transcript {
        return;
    }
    if before.is_none() && record.state.transcript.is_some() {
        changes.jobs.push(individual_job(
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

/// The timeline row of an event.
pub(super) fn timeline_row(event: &StoredEvent) -> TimelineRow {
    TimelineRow {
        user_id: event.tenant_id,
        provider: event.provider.clone(),
        execution_id: event.stream_id.clone(),
        event_type: event.event_type.clone(),
        occurred_at: event.occurred_at,
        recorded_at: event.recorded_at,
        position: event.position,
    }
}
