//! Loading the rows a batch touches and writing its changes, set-wise: a handful of
//! statements per batch (arrays through `unnest`), never one per event. Shared by the live
//! projector (schema `public`, inside its checkpoint transaction) and replay (the shadow schema).
//!
//! Keyed rows (calls, contacts, transcripts, balances: [`write_rows`]) are upserted whole from
//! the snapshot; append-only rows (credit transactions, timeline, dead letters:
//! [`write_appends`]) are plain inserts, exactly once per event because the live projector
//! moves its checkpoint in the same transaction and replay writes each page once.

use calltrail_core::CallState;
use calltrail_eventlog::StoredEvent;
use chrono::{DateTime, Utc};
use std::pin::pin;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::analysis_fold::{write_lead_analytics, AnalysisStatus, TranscriptAnalysis};
use crate::fold::{
    self, CallKey, CallRecord, Changes, ContactKey, ContactRecord, DecodedBatch, Snapshot,
};
use crate::Error;

/// The read tables one projection of events writes (and replay rebuilds).
pub(crate) const READ_TABLES: &[&str] = &[
    "calls",
    "contacts",
    "transcripts",
    "credit_balances",
    "credit_transactions",
    "call_events",
    "lead_analytics",
];

/// Loads the rows `batch` touches, folds it, and writes the changes into `schema`'s tables
/// (the live projector's batch).
pub(crate) async fn apply_batch(
    tx: &Transaction<'_>,
    schema: &str,
    projector: &str,
    events: &[StoredEvent],
    credits_per_minute: i64,
) -> Result<Changes, Error> {
    let batch = fold::decode_batch(events);
    let mut snapshot = Snapshot::default();
    load_missing(tx, schema, &batch, &mut snapshot).await?;
    let changes = fold::fold_batch(&mut snapshot, &batch, credits_per_minute);
    tokio::try_join!(
        write_rows(tx, schema, &snapshot, &changes),
        write_appends(tx, schema, projector, &changes),
    )?;
    Ok(changes)
}

/// Loads into `snapshot` the rows of every call, contact and balance the batch touches that
/// it does not hold yet (absent from the tables = no row yet).
pub(crate) async fn load_missing(
    tx: &Transaction<'_>,
    schema: &str,
    batch: &DecodedBatch<'_>,
    snapshot: &mut Snapshot,
) -> Result<(), Error> {
    let needs = fold::needs(batch);
    let calls: Vec<CallKey> = needs
        .calls
        .into_iter()
        .filter(|key| !snapshot.calls.contains_key(key))
        .collect();
    let balance_users: Vec<Uuid> = needs
        .users
        .into_iter()
        .filter(|user| !snapshot.balances.contains_key(user))
        .collect();
    let (call_rows, balance_rows) = tokio::try_join!(
        load_calls(tx, schema, &calls),
        load_balances(tx, schema, &balance_users),
    )?;
    snapshot.calls.extend(call_rows);
    for user in &balance_users {
        snapshot.balances.insert(*user, 0);
    }
    snapshot.balances.extend(balance_rows);

    let contacts: Vec<ContactKey> = fold::contact_needs(batch, &snapshot.calls)
        .into_iter()
        .filter(|key| !snapshot.contacts.contains_key(key))
        .collect();
    snapshot
        .contacts
        .extend(load_contacts(tx, schema, &contacts).await?);
    Ok(())
}

/// The stored rows of these calls (those that have one), transcripts joined back in.
pub(crate) async fn load_calls(
    client: &impl GenericClient,
    schema: &str,
    keys: &[CallKey],
) -> Result<Vec<(CallKey, CallRecord)>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<Uuid> = keys.iter().map(|(user, _)| *user).collect();
    let executions: Vec<&str> = keys.iter().map(|(_, id)| id.as_str()).collect();
    // The stored state leaves the transcript out (it is the transcripts row's content, often
    // kilobytes): it is joined back here.
    let sql = format!(
        "SELECT c.user_id, c.execution_id, c.state, c.contact_id, c.not_connected_counted,
                c.call_lifecycle_status, c.last_position, t.content,
                t.analysis_status, t.analysis_error
           FROM {schema}.calls c
           LEFT JOIN {schema}.transcripts t
             ON t.user_id = c.user_id AND t.execution_id = c.execution_id
          WHERE (c.user_id, c.execution_id) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    );
    let mut loaded = Vec::new();
    for row in client.query(&sql, &[&users, &executions]).await? {
        let key: CallKey = (row.try_get(0)?, row.try_get(1)?);
        let state_text: &str = row.try_get(2)?;
        let mut state: CallState = serde_json::from_str(state_text).map_err(|e| {
            Error::Invalid(format!(
                "the stored state of call {} cannot be read ({e}); run `calltrail replay`",
                key.1
            ))
        })?;
        state.transcript = row.try_get(7)?;
        let status: String = row.try_get(5)?;
        let unknown_status = state.lifecycle_status.is_none().then_some(status);
        let record = CallRecord {
            state,
            contact_id: row.try_get(3)?,
            not_connected_counted: row.try_get(4)?,
            unknown_status,
            last_position: row.try_get(6)?,
            analysis: TranscriptAnalysis {
                status: AnalysisStatus::parse(row.try_get::<_, Option<&str>>(8)?.unwrap_or("")),
                error: row.try_get(9)?,
            },
        };
        loaded.push((key, record));
    }
    Ok(loaded)
}

/// The stored balances of these users (those that have one).
async fn load_balances(
    client: &impl GenericClient,
    schema: &str,
    users: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, Error> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let sql =
        format!("SELECT user_id, balance FROM {schema}.credit_balances WHERE user_id = ANY($1)");
    let mut loaded = Vec::new();
    for row in client.query(&sql, &[&users]).await? {
        loaded.push((row.try_get(0)?, row.try_get(1)?));
    }
    Ok(loaded)
}

/// The stored rows of these contacts (those that have one).
pub(crate) async fn load_contacts(
    client: &impl GenericClient,
    schema: &str,
    keys: &[ContactKey],
) -> Result<Vec<(ContactKey, ContactRecord)>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<Uuid> = keys.iter().map(|(user, _)| *user).collect();
    let phones: Vec<&str> = keys.iter().map(|(_, phone)| phone.as_str()).collect();
    let sql = format!(
        "SELECT user_id, phone_number, id, name, company, not_connected,
                auto_created_from_call_id, created_at
           FROM {schema}.contacts
          WHERE (user_id, phone_number) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    );
    let mut loaded = Vec::new();
    for row in client.query(&sql, &[&users, &phones]).await? {
        let key: ContactKey = (row.try_get(0)?, row.try_get(1)?);
        let contact = ContactRecord {
            id: row.try_get(2)?,
            name: row.try_get(3)?,
            company: row.try_get(4)?,
            not_connected: row.try_get(5)?,
            auto_created_from_call_id: row.try_get(6)?,
            created_at: row.try_get(7)?,
        };
        loaded.push((key, contact));
    }
    Ok(loaded)
}

/// Upserts the keyed rows of `changes` (calls, contacts, transcripts, balances) from `snapshot`.
pub(crate) async fn write_rows(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    tokio::try_join!(
        write_calls(tx, schema, snapshot, changes),
        write_contacts(tx, schema, snapshot, changes),
        write_transcripts(tx, schema, changes),
        write_balances(tx, schema, snapshot, changes),
    )?;
    Ok(())
}

/// Inserts the append-only rows of `changes`: credit transactions, timeline, dead letters.
pub(crate) async fn write_appends(
    tx: &Transaction<'_>,
    schema: &str,
    projector: &str,
    changes: &Changes,
) -> Result<(), Error> {
    tokio::try_join!(
        write_credit_transactions(tx, schema, changes),
        write_timeline(tx, schema, changes),
        write_dead_letters(tx, projector, changes),
        write_lead_analytics(tx, schema, changes),
    )?;
    Ok(())
}

#[derive(Default)]
struct CallColumns {
    user_id: Vec<Uuid>,
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
}

/// Calls upserted by one statement: bounds the memory a large write-back takes (the columns
/// and their encoding), at no measurable cost in statements.
const CALLS_PER_STATEMENT: usize = 2_000;

async fn write_calls(
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
        let (user_id, execution_id) = *key;
        let s = &record.state;
        let charge = s.charge.unwrap_or(calltrail_core::Charge {
            duration_seconds: 0,
            duration_minutes: 0,
            credits: 0,
        });
        let state = stored_state(s)?;
        c.user_id.push(*user_id);
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
    }
    let sql = format!(
        "INSERT INTO {schema}.calls AS t (user_id, execution_id, agent_id, contact_id, phone_number,
                lead_type, call_lifecycle_status, status, duration_seconds, duration_minutes,
                credits_used, hangup_by, hangup_reason, hangup_provider_code, recording_url,
                ringing_started_at, call_answered_at, call_disconnected_at, completed_at,
                created_at, updated_at, not_connected_counted, state, last_position)
         SELECT u.user_id, u.execution_id, u.agent_id, u.contact_id, u.phone_number, u.lead_type,
                u.call_lifecycle_status, u.status, u.duration_seconds, u.duration_minutes,
                u.credits_used, u.hangup_by, u.hangup_reason, u.hangup_provider_code,
                u.recording_url, u.ringing_started_at, u.call_answered_at,
                u.call_disconnected_at, u.completed_at, u.created_at, now(),
                u.not_connected_counted, u.state, u.last_position
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::text[], $6::text[],
                       $7::text[], $8::text[], $9::int8[], $10::int8[], $11::int8[], $12::text[],
                       $13::text[], $14::int8[], $15::text[], $16::timestamptz[],
                       $17::timestamptz[], $18::timestamptz[], $19::timestamptz[],
                       $20::timestamptz[], $21::bool[], $22::text[], $23::int8[])
             AS u(user_id, execution_id, agent_id, contact_id, phone_number, lead_type,
                  call_lifecycle_status, status, duration_seconds, duration_minutes, credits_used,
                  hangup_by, hangup_reason, hangup_provider_code, recording_url,
                  ringing_started_at, call_answered_at, call_disconnected_at, completed_at,
                  created_at, not_connected_counted, state, last_position)
         ON CONFLICT (user_id, execution_id) DO UPDATE SET
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
                state = EXCLUDED.state, last_position = EXCLUDED.last_position"
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
        ],
    )
    .await?;
    Ok(())
}

async fn write_contacts(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.contacts.is_empty() {
        return Ok(());
    }
    let n = changes.contacts.len();
    let (mut user_id, mut phone, mut id) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut name, mut company, mut not_connected, mut created_from, mut created_at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for key in &changes.contacts {
        let Some(contact) = snapshot.contacts.get(key) else {
            continue;
        };
        let (user, number) = key;
        user_id.push(*user);
        phone.push(number.as_str());
        id.push(contact.id);
        name.push(contact.name.as_deref());
        company.push(contact.company.as_deref());
        not_connected.push(contact.not_connected);
        created_from.push(contact.auto_created_from_call_id.as_deref());
        created_at.push(contact.created_at);
    }
    // Only the columns the fold owns are updated; `email` is left to whoever sets it.
    let sql = format!(
        "INSERT INTO {schema}.contacts (id, user_id, phone_number, name, company, not_connected,
                auto_created_from_call_id, created_at, updated_at)
         SELECT u.id, u.user_id, u.phone_number, u.name, u.company, u.not_connected,
                u.auto_created_from_call_id, u.created_at, now()
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[],
                       $7::text[], $8::timestamptz[])
             AS u(id, user_id, phone_number, name, company, not_connected,
                  auto_created_from_call_id, created_at)
         ON CONFLICT (user_id, phone_number) DO UPDATE SET
                name = EXCLUDED.name, company = EXCLUDED.company,
                not_connected = EXCLUDED.not_connected, updated_at = EXCLUDED.updated_at"
    );
    tx.execute(
        &sql,
        &[
            &id,
            &user_id,
            &phone,
            &name,
            &company,
            &not_connected,
            &created_from,
            &created_at,
        ],
    )
    .await?;
    Ok(())
}

async fn write_transcripts(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.transcripts.is_empty() {
        return Ok(());
    }
    let mut user_id = Vec::new();
    let mut execution_id = Vec::new();
    let mut content = Vec::new();
    let mut created_at = Vec::new();
    let mut status = Vec::new();
    let mut error = Vec::new();
    for ((user, execution), transcript) in &changes.transcripts {
        user_id.push(*user);
        execution_id.push(execution.as_str());
        content.push(transcript.content.as_str());
        created_at.push(transcript.created_at);
        status.push(transcript.analysis.status.as_str());
        error.push(transcript.analysis.error.as_deref());
    }
    // A changed transcript keeps its analysis state: a call gets exactly one analysis. Only an
    // analysis result (completed/failed) replaces the status of an existing row; `pending` and
    // the live-only `processing` are the job queue's to set there.
    let sql = format!(
        "INSERT INTO {schema}.transcripts AS t
                (user_id, execution_id, content, created_at, updated_at, analysis_status,
                 analysis_error)
         SELECT u.user_id, u.execution_id, u.content, u.created_at, now(), u.status, u.error
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                       $6::text[])
             AS u(user_id, execution_id, content, created_at, status, error)
         ON CONFLICT (user_id, execution_id) DO UPDATE SET
                content = EXCLUDED.content, updated_at = EXCLUDED.updated_at,
                analysis_status = CASE WHEN EXCLUDED.analysis_status IN ('completed', 'failed')
                                       THEN EXCLUDED.analysis_status ELSE t.analysis_status END,
                analysis_error = CASE WHEN EXCLUDED.analysis_status IN ('completed', 'failed')
                                      THEN EXCLUDED.analysis_error ELSE t.analysis_error END"
    );
    tx.execute(
        &sql,
        &[
            &user_id,
            &execution_id,
            &content,
            &created_at,
            &status,
            &error,
        ],
    )
    .await?;
    Ok(())
}

async fn write_credit_transactions(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.credits.is_empty() {
        return Ok(());
    }
    let mut user_id = Vec::new();
    let mut kind = Vec::new();
    let mut amount = Vec::new();
    let mut balance_after = Vec::new();
    let mut call_id = Vec::new();
    let mut created_at = Vec::new();
    let mut position = Vec::new();
    for credit in &changes.credits {
        user_id.push(credit.user_id);
        kind.push(credit.kind);
        amount.push(credit.amount);
        balance_after.push(credit.balance_after);
        call_id.push(credit.call_id.as_deref());
        created_at.push(credit.created_at);
        position.push(credit.position);
    }
    // Every transaction is caused by one event, so its position is its natural key.
    let sql = format!(
        "INSERT INTO {schema}.credit_transactions
                (user_id, kind, amount, balance_after, call_id, created_at, position)
         SELECT * FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[],
                              $6::timestamptz[], $7::int8[])"
    );
    tx.execute(
        &sql,
        &[
            &user_id,
            &kind,
            &amount,
            &balance_after,
            &call_id,
            &created_at,
            &position,
        ],
    )
    .await?;
    Ok(())
}

async fn write_balances(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    let (users, balances): (Vec<Uuid>, Vec<i64>) = changes
        .balances
        .iter()
        .filter_map(|u| snapshot.balances.get(u).map(|b| (*u, *b)))
        .unzip();
    if users.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {schema}.credit_balances (user_id, balance)
         SELECT * FROM unnest($1::uuid[], $2::int8[])
         ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance"
    );
    tx.execute(&sql, &[&users, &balances]).await?;
    Ok(())
}

/// Timeline rows go in by binary `COPY`: the cheapest way into PostgreSQL, and one event's
/// row is one row, so there is nothing to upsert.
async fn write_timeline(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.timeline.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(&format!(
            "COPY {schema}.call_events
                  (user_id, execution_id, event_type, occurred_at, recorded_at, position)
             FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let types = [
        Type::UUID,
        Type::TEXT,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::INT8,
    ];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    for row in &changes.timeline {
        writer
            .as_mut()
            .write(&[
                &row.user_id,
                &row.execution_id,
                &row.event_type,
                &row.occurred_at,
                &row.recorded_at,
                &row.position,
            ])
            .await?;
    }
    writer.finish().await?;
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
    encoded.map_err(|e| Error::Invalid(format!("call state cannot be serialized: {e}")))
}

/// Dead letters always go to `public.dead_letters` (replay does not swap it), once per event.
async fn write_dead_letters(
    tx: &Transaction<'_>,
    projector: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.dead_letters.is_empty() {
        return Ok(());
    }
    for dead in &changes.dead_letters {
        tracing::warn!(
            projector,
            position = dead.position,
            event_type = %dead.event_type,
            execution_id = %dead.stream_id,
            error = %dead.error,
            "event cannot be folded; recorded as a dead letter"
        );
    }
    let position: Vec<i64> = changes.dead_letters.iter().map(|d| d.position).collect();
    let txid: Vec<i64> = changes.dead_letters.iter().map(|d| d.txid).collect();
    let event_type: Vec<&str> = changes
        .dead_letters
        .iter()
        .map(|d| d.event_type.as_str())
        .collect();
    let stream_id: Vec<&str> = changes
        .dead_letters
        .iter()
        .map(|d| d.stream_id.as_str())
        .collect();
    let error: Vec<&str> = changes
        .dead_letters
        .iter()
        .map(|d| d.error.as_str())
        .collect();
    tx.execute(
        "INSERT INTO public.dead_letters (projector, position, txid, event_type, stream_id, error)
         SELECT $1::text, * FROM unnest($2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[])
         ON CONFLICT (projector, position) DO NOTHING",
        &[
            &projector,
            &position,
            &txid,
            &event_type,
            &stream_id,
            &error,
        ],
    )
    .await?;
    Ok(())
}
