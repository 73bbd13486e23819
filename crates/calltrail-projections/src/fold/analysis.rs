//! Folding the `analysis.*` events into row changes (pure): the part of the fold that turns
//! analysis results into `lead_analytics` rows and transcript statuses.
//!
//! - `analysis.individual` → the call's `individual` row; the transcript becomes `completed`;
//!   the call's `complete` job is requested (the live projector enqueues it, replay ignores it);
//!   a booked demo (`demo_book_datetime`) makes the call's outcome `booked`.
//! - `analysis.complete` → the contact's `complete` row (key: phone), replaced only by an event
//!   later in the log than the row's (`position`; see `tables::lead_analytics`).
//! - `analysis.individual` and `analysis.complete` offer the name, e-mail and company they
//!   extracted to the contact (the newest wins, as for call events).
//! - `analysis.failed` → the transcript becomes `failed` with the reason, unless the call's
//!   analysis already succeeded.
//! - A re-run's `analysis.*.vN` events fold like the first run's, in log order (the newest
//!   result stands; a failed re-run leaves an earlier success standing); a newer individual
//!   run asks for the call's finished complete job to run again.

use calltrail_core::analysis::parse_analysis_event_type;
use calltrail_core::{AnalysisKind, AnalysisRecorded};
use calltrail_eventlog::StoredEvent;
use chrono::{DateTime, Utc};

use super::decode::AnalysisDecoded;
use super::model::{
    AnalysisStatus, Changes, ContactKey, JobRequest, LeadAnalyticsRow, Snapshot,
    TranscriptAnalysis, TranscriptChange,
};

/// Folds one decoded analysis event (see the module documentation).
pub(super) fn fold_analysis(
    snapshot: &mut Snapshot,
    changes: &mut Changes,
    event: &StoredEvent,
    decoded: &AnalysisDecoded,
) {
    let user_id = event.tenant_id;
    let call_key = super::call_key(event);
    match decoded {
        AnalysisDecoded::Recorded(r) => {
            let (key, provider) = match r.kind {
                AnalysisKind::Individual => (event.stream_id.clone(), event.provider.clone()),
                AnalysisKind::Complete => match &r.phone_number {
                    Some(phone) => (phone.clone(), String::new()),
                    None => return,
                },
            };
            changes.lead_analytics.insert(
                (user_id, r.kind.as_str(), key.clone(), provider.clone()),
                LeadAnalyticsRow {
                    user_id,
                    analysis_type: r.kind.as_str(),
                    key,
                    provider,
                    execution_id: event.stream_id.clone(),
                    phone_number: r.phone_number.clone(),
                    previous_calls_analyzed: r.previous_calls_analyzed,
                    analysis_timestamp: r.analysis_timestamp,
                    analysis: r.analysis.clone(),
                    analyzer: r.meta.analyzer,
                    model: r.meta.model.clone(),
                    tokens_used: r.meta.tokens_used,
                    position: event.position,
                },
            );
            if let Some(phone) = &r.phone_number {
                offer_contact_details(snapshot, changes, (user_id, phone.clone()), event, r);
            }
            let record = snapshot.calls.get_mut(&call_key);
            let (AnalysisKind::Individual, Some(record)) = (r.kind, record) else {
                return;
            };
            record.analysis = TranscriptAnalysis {
                status: AnalysisStatus::Completed,
                error: None,
            };
            // The latest individual analysis says whether the call booked (its outcome).
            let booked = r.analysis.demo_book_datetime.is_some();
            if record.booked != booked {
                record.booked = booked;
                changes.calls.insert(call_key.clone());
            }
            if let Some(phone) = &r.phone_number {
                changes.jobs.push(JobRequest {
                    user_id,
                    kind: AnalysisKind::Complete,
                    provider: event.provider.clone(),
                    execution_id: event.stream_id.clone(),
                    phone_number: Some(phone.clone()),
                    call_created_at: record.state.created_at.unwrap_or(event.occurred_at),
                    after_version: parse_analysis_event_type(&event.event_type)
                        .and_then(|(_, version)| i32::try_from(version).ok())
                        .unwrap_or(1),
                });
            }
        }
        AnalysisDecoded::Failed(f) => {
            let Some(record) = snapshot.calls.get_mut(&call_key) else {
                return;
            };
            if record.analysis.status == AnalysisStatus::Completed {
                return;
            }
            record.analysis = TranscriptAnalysis {
                status: AnalysisStatus::Failed,
                error: Some(f.message.clone()),
            };
        }
    }
    // The transcript row shows the new status (its content is the call's current one).
    let Some(record) = snapshot.calls.get(&call_key) else {
        return;
    };
    if let Some(content) = &record.state.transcript {
        let status = record.analysis.clone();
        changes
            .transcripts
            .entry(call_key)
            .and_modify(|t| t.analysis = status.clone())
            .or_insert_with(|| TranscriptChange {
                content: content.clone(),
                created_at: event.occurred_at,
                analysis: status,
            });
    }
}

/// The name, e-mail and company an analysis extracted, offered to its contact (the newest
/// wins; a contact no call event created yet is left alone).
fn offer_contact_details(
    snapshot: &mut Snapshot,
    changes: &mut Changes,
    key: ContactKey,
    event: &StoredEvent,
    recorded: &AnalysisRecorded,
) {
    let Some(contact) = snapshot.contacts.get_mut(&key) else {
        return;
    };
    let analysis = &recorded.analysis;
    let at = event.occurred_at;
    let mut dirty = contact.name.offer(analysis.extracted_name.as_deref(), at);
    dirty |= contact.email.offer(
        analysis
            .extracted_email
            .as_deref()
            .filter(|e| e.contains('@')),
        at,
    );
    dirty |= contact.company.offer(analysis.company_name.as_deref(), at);
    if dirty {
        changes.contacts.insert(key);
    }
}

/// The individual job a call needs once its transcript appears.
pub fn individual_job(
    event: &StoredEvent,
    phone_number: Option<String>,
    call_created_at: Option<DateTime<Utc>>,
) -> JobRequest {
    JobRequest {
        user_id: event.tenant_id,
        kind: AnalysisKind::Individual,
        provider: event.provider.clone(),
        execution_id: event.stream_id.clone(),
        phone_number,
        call_created_at: call_created_at.unwrap_or(event.occurred_at),
        after_version: 1,
    }
}
