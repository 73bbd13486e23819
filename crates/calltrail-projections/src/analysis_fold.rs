//! Folding the `analysis.*` events (pure) and writing `lead_analytics` (set-wise): the part of
//! the read-model projection that turns analysis results into rows. Called from [`crate::fold`]
//! and `write`, shared by the live projector and replay like the rest of the fold.
//!
//! - `analysis.individual` → the call's `individual` row; the transcript becomes `completed`;
//!   the call's `complete` job is requested (the live projector enqueues it, replay ignores it).
//! - `analysis.complete` → the contact's `complete` row (key: phone), replaced only by an event
//!   later in the log than the row's (`position`).
//! - `analysis.failed` → the transcript becomes `failed` with the reason, unless the call's
//!   analysis already succeeded.

use calltrail_core::analysis::{
    AnalysisFailed, AnalysisRecorded, ANALYSIS_COMPLETE, ANALYSIS_EVENT_SCHEMA_VERSION,
    ANALYSIS_FAILED, ANALYSIS_INDIVIDUAL,
};
use calltrail_core::{AnalysisKind, Analyzer, LeadAnalysis};
use calltrail_eventlog::StoredEvent;
use chrono::{DateTime, Utc};
use serde::Serialize;
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::fold::{Changes, Decoded, Snapshot, TranscriptChange};
use crate::jobs::JobRequest;
use crate::Error;

/// A decoded `analysis.*` event.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // always boxed, in `Decoded::Analysis`
pub enum AnalysisDecoded {
    /// `analysis.individual` or `analysis.complete`.
    Recorded(AnalysisRecorded),
    /// `analysis.failed`.
    Failed(AnalysisFailed),
}

/// A transcript's analysis status (`transcripts.analysis_status`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AnalysisStatus {
    /// Not analysed yet (or put back for a retry).
    #[default]
    Pending,
    /// A worker holds the job (live only; written by the job queue).
    Processing,
    /// The individual analysis is recorded.
    Completed,
    /// The analysis failed.
    Failed,
}

impl AnalysisStatus {
    /// The column value.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisStatus::Pending => "pending",
            AnalysisStatus::Processing => "processing",
            AnalysisStatus::Completed => "completed",
            AnalysisStatus::Failed => "failed",
        }
    }

    /// Reads a column value (anything unknown is `pending`).
    pub fn parse(s: &str) -> Self {
        match s {
            "processing" => AnalysisStatus::Processing,
            "completed" => AnalysisStatus::Completed,
            "failed" => AnalysisStatus::Failed,
            _ => AnalysisStatus::Pending,
        }
    }
}

/// A call's analysis state as its transcript row shows it.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TranscriptAnalysis {
    /// The status.
    pub status: AnalysisStatus,
    /// Why it failed.
    pub error: Option<String>,
}

/// Key of a `lead_analytics` row: user, `individual`/`complete`, execution id or phone.
pub type LeadKey = (Uuid, &'static str, String);

/// A `lead_analytics` row; field names are the table's columns.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct LeadAnalyticsRow {
    /// The tenant.
    pub user_id: Uuid,
    /// `individual` or `complete`.
    pub analysis_type: &'static str,
    /// Execution id (individual) or phone (complete).
    pub key: String,
    /// The call analysed, or the latest call a complete analysis includes.
    pub execution_id: String,
    /// The contact's phone.
    pub phone_number: Option<String>,
    /// 0, or the contact's calls analysed.
    pub previous_calls_analyzed: i32,
    /// When the analysis was made.
    pub analysis_timestamp: DateTime<Utc>,
    /// The analysis fields (their names are the columns').
    #[serde(flatten)]
    pub analysis: LeadAnalysis,
    /// `openai` or `local`.
    pub analyzer: Analyzer,
    /// The model.
    pub model: Option<String>,
    /// The response's total tokens.
    pub tokens_used: Option<i64>,
    /// The event's log position.
    pub position: i64,
}

/// Decodes an `analysis.individual`/`complete`/`failed` event; `None` for any other type.
pub fn decode(event: &StoredEvent) -> Option<Result<Decoded, String>> {
    let failed = event.event_type == ANALYSIS_FAILED;
    let recorded = [ANALYSIS_INDIVIDUAL, ANALYSIS_COMPLETE].contains(&event.event_type.as_str());
    if !failed && !recorded {
        return None;
    }
    if event.schema_version != ANALYSIS_EVENT_SCHEMA_VERSION {
        return Some(Err(format!(
            "unsupported {} schema_version {} (this build reads {ANALYSIS_EVENT_SCHEMA_VERSION})",
            event.event_type, event.schema_version
        )));
    }
    let decoded = if failed {
        serde_json::from_str(&event.data)
            .map(AnalysisDecoded::Failed)
            .map_err(|e| format!("analysis.failed data cannot be decoded: {e}"))
    } else {
        serde_json::from_str::<AnalysisRecorded>(&event.data)
            .map_err(|e| format!("{} data cannot be decoded: {e}", event.event_type))
            .and_then(|r| {
                if calltrail_core::analysis::recorded_event_type(r.kind) == event.event_type {
                    Ok(AnalysisDecoded::Recorded(r))
                } else {
                    Err(format!(
                        "{} data has kind {}",
                        event.event_type,
                        r.kind.as_str()
                    ))
                }
            })
    };
    Some(decoded.map(|d| Decoded::Analysis(Box::new(d))))
}

/// Folds one decoded analysis event (see the module documentation).
pub fn fold(
    snapshot: &mut Snapshot,
    changes: &mut Changes,
    event: &StoredEvent,
    decoded: &AnalysisDecoded,
) {
    let user_id = event.tenant_id;
    let call_key = (user_id, event.stream_id.clone());
    let record = snapshot.calls.get_mut(&call_key);
    match decoded {
        AnalysisDecoded::Recorded(r) => {
            let key = match r.kind {
                AnalysisKind::Individual => event.stream_id.clone(),
                AnalysisKind::Complete => match &r.phone_number {
                    Some(phone) => phone.clone(),
                    None => return,
                },
            };
            changes.lead_analytics.insert(
                (user_id, r.kind.as_str(), key.clone()),
                LeadAnalyticsRow {
                    user_id,
                    analysis_type: r.kind.as_str(),
                    key,
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
            let (AnalysisKind::Individual, Some(record)) = (r.kind, record) else {
                return;
            };
            record.analysis = TranscriptAnalysis {
                status: AnalysisStatus::Completed,
                error: None,
            };
            if let Some(phone) = &r.phone_number {
                changes.jobs.push(JobRequest {
                    user_id,
                    kind: AnalysisKind::Complete,
                    provider: event.provider.clone(),
                    execution_id: event.stream_id.clone(),
                    phone_number: Some(phone.clone()),
                    call_created_at: record.state.created_at.unwrap_or(event.occurred_at),
                });
            }
        }
        AnalysisDecoded::Failed(f) => {
            let Some(record) = record else {
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
    }
}

/// Upserts the batch's `lead_analytics` rows; a row is only replaced by a later event.
pub(crate) async fn write_lead_analytics(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.lead_analytics.is_empty() {
        return Ok(());
    }
    let rows: Vec<&LeadAnalyticsRow> = changes.lead_analytics.values().collect();
    let rows = serde_json::to_value(rows)
        .map_err(|e| Error::Invalid(format!("lead analytics rows cannot be serialized: {e}")))?;
    // Every column but the key.
    let updated = [
        "execution_id",
        "phone_number",
        "previous_calls_analyzed",
        "analysis_timestamp",
    ]
    .into_iter()
    .chain(crate::analytics::ANALYSIS_COLUMNS)
    .chain(["position"]);
    let set = updated
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {schema}.lead_analytics AS t
         SELECT * FROM jsonb_populate_recordset(NULL::{schema}.lead_analytics, $1::jsonb)
         ON CONFLICT (user_id, analysis_type, key) DO UPDATE SET {set}
          WHERE t.position < EXCLUDED.position"
    );
    tx.execute(&sql, &[&rows]).await?;
    Ok(())
}
