//! The `calls` table: loading a batch's prior call rows (their transcripts joined back in) and
//! upserting the changed ones, with the stored state's encoding (`calls.state`).

use calltrail_core::{CallState, Ending, Outcome};
use chrono::{DateTime, Utc};
use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::fold::{AnalysisStatus, CallKey, CallRecord, Changes, Snapshot, TranscriptAnalysis};
use crate::Error;

/// The stored rows of these calls (those that have one), transcripts joined back in.
pub(crate) async fn load(
    client: &impl GenericClient,
    schema: &str,
    keys: &[CallKey],
) -> Result<Vec<(CallKey, CallRecord)>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<Uuid> = keys.iter().map(|(user, _, _)| *user).collect();
    let providers: Vec<&str> = keys.iter().map(|(_, p, _)| p.as_str()).collect();
    let executions: Vec<&str> = keys.iter().map(|(_, _, id)| id.as_str()).collect();
    // The stored state leaves the transcript out (it is the transcripts row's content, often
    // kilobytes): it is joined back here.
    let sql = format!(
        "SELECT c.user_id, c.provider, c.execution_id, c.state, c.contact_id, c.not_connected_counted,
                c.call_lifecycle_status, c.last_position, c.outcome, t.content,
                t.analysis_status, t.analysis_error
           FROM {schema}.calls c
           LEFT JOIN {schema}.transcripts t
             ON t.user_id = c.user_id AND t.execution_id = c.execution_id
            AND t.provider = c.provider
          WHERE (c.user_id, c.execution_id, c.provider)
                IN (SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[]))"
    );
    let mut loaded = Vec::new();
    for row in client
        .query(&sql, &[&users, &executions, &providers])
        .await?
    {
        let key: CallKey = (
            row.try_get("user_id")?,
            row.try_get("provider")?,
            row.try_get("execution_id")?,
        );
        let state_text: &str = row.try_get("state")?;
        let mut state: CallState =
            serde_json::from_str(state_text).map_err(|source| Error::CorruptState {
                execution_id: key.2.clone(),
                source,
            })?;
        state.transcript = row.try_get("content")?;
        assume_ending_from_status(&mut state);
        let status: String = row.try_get("call_lifecycle_status")?;
        let unknown_status = state.lifecycle_status.is_none().then_some(status);
        let record = CallRecord {
            state,
            contact_id: row.try_get("contact_id")?,
            not_connected_counted: row.try_get("not_connected_counted")?,
            unknown_status,
            last_position: row.try_get("last_position")?,
            analysis: TranscriptAnalysis {
                status: AnalysisStatus::parse(
                    row.try_get::<_, Option<&str>>("analysis_status")?
                        .unwrap_or(""),
                ),
                error: row.try_get("analysis_error")?,
            },
            // `booked` outranks every other outcome, so the stored outcome says it exactly.
            booked: row.try_get::<_, &str>("outcome")? == Outcome::Booked.as_str(),
        };
        loaded.push((key, record));
    }
    Ok(loaded)
}

/// A state stored before endings existed has none even when its status is one (`busy`, …):
/// it gets the one its lifecycle status says, from the event that set that status, as a
/// replay of its events would give it ([`Ending::of_status`]).
fn assume_ending_from_status(state: &mut CallState) {
    if state.provenance.ending.is_some() {
        return;
    }
    let ending = state.lifecycle_status.as_ref().and_then(Ending::of_status);
    if ending.is_some() {
        state.ending = ending;
        state.provenance.ending = state.provenance.lifecycle_status.clone();
    }
}

/// Upserts the calls `changes` names, from their `snapshot` records.
#[derive(Default)]
struct CallColumns {
    user_id: Vec<Uuid>,
    provider: Vec<String>,
    execution_id: Vec<String>,
    agent_id: Vec<Option<String>>,
    contact_id: Vec<Option<Uuid>>,
    phone_number: Vec<Option<String>>,
    lead_type: Vec<Option<String>>,
    lifecycle_status: Vec<String>,
    status: Vec<String>,
    duration_seconds: Vec<i64>,
    duration_minutes: Vec<i64>,
    credits_used: Vec<i64>,
    hangup_by: Vec<Option<String>>,
    hangup_reason: Vec<Option<String>>,
    hangup_provider_code: Vec<Option<i64>>,
    recording_url: Vec<Option<String>>,
    ringing_started_at: Vec<Option<DateTime<Utc>>>,
    call_answered_at: Vec<Option<DateTime<Utc>>>,
    call_disconnected_at: Vec<Option<DateTime<Utc>>>,
    completed_at: Vec<Option<DateTime<Utc>>>,
    created_at: Vec<DateTime<Utc>>,
    not_connected_counted: Vec<bool>,
    state: Vec<String>,
    last_position: Vec<i64>,
    batch_id: Vec<Option<String>>,
    /// Comma-separated (an array of arrays does not unnest row by row).
    anomalies: Vec<String>,
    outcome: Vec<&'static str>,
    cost: Vec<Option<f64>>,
    cost_unit: Vec<Option<&'static str>>,
}

/// Calls upserted by one statement: bounds the memory a large write-back takes (the columns
/// and their encoding), at no measurable cost in statements.
const CALLS_PER_STATEMENT: usize = 2_000;

pub(super) async fn write(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    let keys: Vec<&CallKey> = changes.calls.iter().collect();
    for chunk in keys.chunks(CALLS_PER_STATEMENT) {
        write_call_rows(tx, schema, snapshot, chunk).await?;
    }
    Ok(())
}

async fn write_call_rows(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    keys: &[&CallKey],
) -> Result<(), Error> {
    let mut c = CallColumns::default();
    for key in keys {
        let Some(record) = snapshot.calls.get(*key) else {
            continue;
        };
        let (user_id, provider, execution_id) = *key;
        let s = &record.state;
        let charge = s.charge.unwrap_or(calltrail_core::Charge {
            duration_seconds: 0,
            duration_minutes: 0,
            credits: 0,
        });
        let state = stored_state(s)?;
        c.user_id.push(*user_id);
        c.provider.push(provider.clone());
        c.execution_id.push(execution_id.clone());
        c.agent_id.push(s.agent_id.clone());
        c.contact_id.push(record.contact_id);
        c.phone_number
            .push(s.phone_number.as_ref().map(|p| p.as_str().to_owned()));
        c.lead_type.push(s.lead_type.map(|l| l.as_str().to_owned()));
        c.lifecycle_status
            .push(record.lifecycle_status().to_owned());
        c.status.push(s.status().as_str().to_owned());
        c.duration_seconds.push(charge.duration_seconds);
        c.duration_minutes.push(charge.duration_minutes);
        c.credits_used.push(charge.credits);
        c.hangup_by.push(s.hangup_by.clone());
        c.hangup_reason.push(s.hangup_reason.clone());
        c.hangup_provider_code.push(s.hangup_provider_code);
        c.recording_url.push(s.recording_url.clone());
        c.ringing_started_at.push(s.ringing_started_at);
        c.call_answered_at.push(s.call_answered_at);
        c.call_disconnected_at.push(s.call_disconnected_at);
        c.completed_at.push(s.completed_at);
        // Every call event sets created_at; the fallback only guards a hand-edited state.
        c.created_at
            .push(s.created_at.unwrap_or(DateTime::<Utc>::UNIX_EPOCH));
        c.not_connected_counted.push(record.not_connected_counted);
        c.state.push(state);
        c.last_position.push(record.last_position);
        c.batch_id.push(s.batch_id.clone());
        let anomalies: Vec<&str> = s.anomalies.iter().map(|a| a.as_str()).collect();
        c.anomalies.push(anomalies.join(","));
        c.outcome.push(record.outcome().as_str());
        c.cost.push(s.cost.map(|cost| cost.amount));
        c.cost_unit.push(s.cost.map(|cost| cost.unit.as_str()));
    }
    let sql = format!(
        "INSERT INTO {schema}.calls AS t (user_id, execution_id, agent_id, contact_id, phone_number,
                lead_type, call_lifecycle_status, status, duration_seconds, duration_minutes,
                credits_used, hangup_by, hangup_reason, hangup_provider_code, recording_url,
                ringing_started_at, call_answered_at, call_disconnected_at, completed_at,
                created_at, updated_at, not_connected_counted, state, last_position, batch_id,
                anomalies, provider, outcome, cost, cost_unit)
         SELECT u.user_id, u.execution_id, u.agent_id, u.contact_id, u.phone_number, u.lead_type,
                u.call_lifecycle_status, u.status, u.duration_seconds, u.duration_minutes,
                u.credits_used, u.hangup_by, u.hangup_reason, u.hangup_provider_code,
                u.recording_url, u.ringing_started_at, u.call_answered_at,
                u.call_disconnected_at, u.completed_at, u.created_at, now(),
                u.not_connected_counted, u.state, u.last_position, u.batch_id,
                string_to_array(u.anomalies, ','), u.provider, u.outcome, u.cost, u.cost_unit
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::text[],
                       $13::text[], $14::int8[], $15::text[], $16::timestamptz[],
                       $17::timestamptz[], $18::timestamptz[], $19::timestamptz[],
                       $20::timestamptz[], $21::bool[], $22::text[], $23::int8[],
                       $24::text[], $25::text[], $26::text[], $27::text[], $28::float8[],
                       $29::text[])
             AS u(user_id, execution_id, agent_id, contact_id, phone_number, lead_type,
                  call_lifecycle_status, status, duration_seconds, duration_minutes, credits_used,
                  hangup_by, hangup_reason, hangup_provider_code, recording_url,
                  ringing_started_at, call_answered_at, call_disconnected_at, completed_at,
                  created_at, not_connected_counted, state, last_position, batch_id, anomalies,
                  provider, outcome, cost, cost_unit)
         ON CONFLICT (user_id, execution_id, provider) DO UPDATE SET
                agent_id = EXCLUDED.agent_id, contact_id = EXCLUDED.contact_id,
                phone_number = EXCLUDED.phone_number, lead_type = EXCLUDED.lead_type,
                call_lifecycle_status = EXCLUDED.call_lifecycle_status, status = EXCLUDED.status,
                duration_seconds = EXCLUDED.duration_seconds,
                duration_minutes = EXCLUDED.duration_minutes,
                credits_used = EXCLUDED.credits_used, hangup_by = EXCLUDED.hangup_by,
                hangup_reason = EXCLUDED.hangup_reason,
                hangup_provider_code = EXCLUDED.hangup_provider_code,
                recording_url = EXCLUDED.recording_url,
                ringing_started_at = EXCLUDED.ringing_started_at,
                call_answered_at = EXCLUDED.call_answered_at,
                call_disconnected_at = EXCLUDED.call_disconnected_at,
                completed_at = EXCLUDED.completed_at, created_at = EXCLUDED.created_at,
                updated_at = EXCLUDED.updated_at,
                not_connected_counted = EXCLUDED.not_connected_counted,
                state = EXCLUDED.state, last_position = EXCLUDED.last_position,
                batch_id = EXCLUDED.batch_id, anomalies = EXCLUDED.anomalies,
                outcome = EXCLUDED.outcome, cost = EXCLUDED.cost, cost_unit = EXCLUDED.cost_unit"
    );
    tx.execute(
        &sql,
        &[
            &c.user_id,
            &c.execution_id,
            &c.agent_id,
            &c.contact_id,
            &c.phone_number,
            &c.lead_type,
            &c.lifecycle_status,
            &c.status,
            &c.duration_seconds,
            &c.duration_minutes,
            &c.credits_used,
            &c.hangup_by,
            &c.hangup_reason,
            &c.hangup_provider_code,
            &c.recording_url,
            &c.ringing_started_at,
            &c.call_answered_at,
            &c.call_disconnected_at,
            &c.completed_at,
            &c.created_at,
            &c.not_connected_counted,
            &c.state,
            &c.last_position,
            &c.batch_id,
            &c.anomalies,
            &c.provider,
            &c.outcome,
            &c.cost,
            &c.cost_unit,
        ],
    )
    .await?;
    Ok(())
}

/// The state as stored in `calls.state`: without the transcript, which is the transcripts
/// row's content (always written with it) and is joined back on load.
fn stored_state(state: &CallState) -> Result<String, Error> {
    let encoded = if state.transcript.is_none() {
        serde_json::to_string(state)
    } else {
        let mut stored = state.clone();
        stored.transcript = None;
        serde_json::to_string(&stored)
    };
    encoded.map_err(|source| Error::Encode {
        what: "a call state",
        source,
    })
}
