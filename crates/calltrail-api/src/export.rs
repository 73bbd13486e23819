//! `GET /v1/calls.csv` (CONTRACT §6): the calls of `GET /v1/calls`'s filters and order as
//! RFC 4180 CSV (header row, UTF-8, CRLF), streamed: the query layer reads a server-side
//! cursor a chunk at a time ([`calltrail_projections::ReadStore::export_calls`]) and each
//! chunk is encoded and sent before the next is read, so memory stays flat for any number
//! of calls. Cells that a spreadsheet would run as a formula are guarded (OWASP's rule).

use actix_web::http::header;
use actix_web::{web, HttpResponse};
use calltrail_projections::views::CallView;
use calltrail_projections::CallFilter;
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::{stream, StreamExt};
use uuid::Uuid;

use crate::auth::Tenant;
use crate::calls::CallsQuery;
use crate::error::{ApiError, ErrorBody};
use crate::{AppState, ReadFrom};

/// Rows read from the cursor and encoded at a time.
const CHUNK: i32 = 1_000;

/// The columns, named as in the Call JSON (no transcript); `provider` came last, after the
/// columns files were already read by position, and `outcome`, `cost`, `cost_unit` after it.
pub const COLUMNS: [&str; 29] = [
    "execution_id",
    "agent_id",
    "user_id",
    "contact_id",
    "phone_number",
    "lead_type",
    "call_lifecycle_status",
    "status",
    "duration_seconds",
    "duration_minutes",
    "credits_used",
    "hangup_by",
    "hangup_reason",
    "hangup_provider_code",
    "recording_url",
    "ringing_started_at",
    "call_answered_at",
    "call_disconnected_at",
    "completed_at",
    "created_at",
    "updated_at",
    "campaign_id",
    "attribution",
    "anomalies",
    "conflicts",
    "provider",
    "outcome",
    "cost",
    "cost_unit",
];

/// Exports the calls as CSV.
#[utoipa::path(
    get,
    path = "/v1/calls.csv",
    tag = "calls",
    params(CallsQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Every call matching the filters, in the list's order, as `text/csv` (RFC 4180, header row, UTF-8, CRLF; `limit` and `cursor` are ignored). A cell starting with `=`, `+`, `-`, `@`, a tab or a carriage return is prefixed with `'`.", content_type = "text/csv", body = String),
        (status = 400, description = "The filters' errors, as for `GET /v1/calls`", body = ErrorBody),
        (status = 401, description = "`unauthorized`", body = ErrorBody),
        (status = 503, description = "`unavailable`", body = ErrorBody),
    )
)]
pub async fn export_calls(
    state: web::Data<AppState>,
    tenant: Tenant,
    query: web::Query<CallsQuery>,
) -> Result<HttpResponse, ApiError> {
    let (_, filter) = query.parse()?;
    Ok(csv_response(&state, tenant.0, filter))
}

/// The streamed CSV answer of `filter` (the console's download sends the same).
pub fn csv_response(state: &AppState, tenant: Uuid, filter: CallFilter) -> HttpResponse {
    let (sender, receiver) = tokio::sync::mpsc::channel::<Vec<CallView>>(2);
    let store = state.store_for(ReadFrom::Replica);
    let export = state.spawn_on_db_runtime(async move {
        store.export_calls(tenant, &filter, CHUNK, sender).await
    });
    let header = encode(|w| w.write_record(COLUMNS));
    let chunks = stream::unfold(
        (receiver, Some(export)),
        |(mut receiver, export)| async move {
            if let Some(calls) = receiver.recv().await {
                let bytes = encode(|w| {
                    calls
                        .iter()
                        .try_for_each(|call| w.write_record(record(call)))
                });
                return Some((bytes, (receiver, export)));
            }
            // The export ended: a failure part-way aborts the answer (the client sees a
            // broken transfer, never a silently short file).
            let outcome = export?.await;
            let failure = match outcome {
                Ok(Ok(())) => return None,
                Ok(Err(error)) => ApiError::from_store(error),
                Err(join) => ApiError::Internal(Box::new(join)),
            };
            failure.log_cause();
            Some((Err(failure), (receiver, None)))
        },
    );
    HttpResponse::Ok()
        .content_type("text/csv; charset=utf-8")
        .insert_header((
            header::CONTENT_DISPOSITION,
            "attachment; filename=\"calls.csv\"",
        ))
        .streaming(stream::once(async move { header }).chain(chunks))
}

/// Encodes records with a fresh CRLF writer into one chunk.
fn encode(
    write: impl FnOnce(&mut csv::Writer<Vec<u8>>) -> csv::Result<()>,
) -> Result<web::Bytes, ApiError> {
    let mut writer = csv::WriterBuilder::new()
        .terminator(csv::Terminator::CRLF)
        .from_writer(Vec::with_capacity(64 * 1024));
    write(&mut writer).map_err(|e| ApiError::Internal(Box::new(e)))?;
    let bytes = writer
        .into_inner()
        .map_err(|e| ApiError::Internal(Box::new(e.into_error())))?;
    Ok(web::Bytes::from(bytes))
}

/// A call's cells, in [`COLUMNS`] order, each guarded.
fn record(c: &CallView) -> [String; 29] {
    let text = |v: &Option<String>| guard(v.as_deref().unwrap_or(""));
    let time = |v: Option<DateTime<Utc>>| v.map(timestamp).unwrap_or_default();
    let id = |v: Option<Uuid>| v.map(|u| u.to_string()).unwrap_or_default();
    [
        guard(&c.execution_id),
        text(&c.agent_id),
        c.user_id.to_string(),
        id(c.contact_id),
        text(&c.phone_number),
        text(&c.lead_type),
        guard(&c.call_lifecycle_status),
        guard(&c.status),
        c.duration_seconds.to_string(),
        c.duration_minutes.to_string(),
        guard(&c.credits_used.to_string()),
        text(&c.hangup_by),
        text(&c.hangup_reason),
        c.hangup_provider_code
            .map(|v| guard(&v.to_string()))
            .unwrap_or_default(),
        text(&c.recording_url),
        time(c.ringing_started_at),
        time(c.call_answered_at),
        time(c.call_disconnected_at),
        time(c.completed_at),
        timestamp(c.created_at),
        timestamp(c.updated_at),
        id(c.campaign_id),
        text(&c.attribution),
        // Snake-case names, `;`-separated: nothing to guard.
        c.anomalies.join(";"),
        c.conflicts.to_string(),
        guard(&c.provider),
        guard(&c.outcome),
        // A number as the provider sent it (never below 0, so never a formula).
        c.cost.map(|v| guard(&v.to_string())).unwrap_or_default(),
        text(&c.cost_unit),
    ]
}

/// A timestamp as the Call JSON writes it.
fn timestamp(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::AutoSi, true)
}

/// OWASP's CSV injection rule: a cell starting with `=`, `+`, `-`, `@`, a tab or a carriage
/// return gets a leading `'`, so a spreadsheet shows it as text (`'+14155550132`).
pub fn guard(cell: &str) -> String {
    if cell.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        format!("'{cell}")
    } else {
        cell.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formula_cells_are_prefixed_and_others_kept() {
        for (cell, shown) in [
            ("=SUM(A1)", "'=SUM(A1)"),
            ("+14155550132", "'+14155550132"),
            ("-1", "'-1"),
            ("@cmd", "'@cmd"),
            ("\tx", "'\tx"),
            ("\rx", "'\rx"),
            ("plain", "plain"),
            ("", ""),
        ] {
            assert_eq!(guard(cell), shown);
        }
    }

    #[test]
    fn the_columns_are_the_call_json_fields_in_order() {
        let at = DateTime::<Utc>::UNIX_EPOCH;
        let call = CallView {
            execution_id: "e".into(),
            provider: "twilio".into(),
            agent_id: None,
            user_id: Uuid::nil(),
            contact_id: None,
            phone_number: Some("+14155550132".into()),
            lead_type: None,
            call_lifecycle_status: "completed".into(),
            status: "completed".into(),
            duration_seconds: 28,
            duration_minutes: 1,
            credits_used: 1,
            hangup_by: None,
            hangup_reason: Some("a, \"quoted\"\nreason".into()),
            hangup_provider_code: None,
            recording_url: None,
            ringing_started_at: None,
            call_answered_at: None,
            call_disconnected_at: None,
            completed_at: Some(at),
            created_at: at,
            updated_at: at,
            campaign_id: None,
            attribution: None,
            anomalies: vec!["duration_out_of_range".into()],
            conflicts: 0,
            outcome: "voicemail".into(),
            cost: Some(0.0473),
            cost_unit: Some("usd".into()),
        };
        let json = serde_json::to_value(&call).unwrap_or_default();
        let keys: Vec<&str> = json
            .as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default();
        let mut sorted = COLUMNS.to_vec();
        sorted.sort_unstable();
        let mut json_keys = keys.clone();
        json_keys.sort_unstable();
        assert_eq!(sorted, json_keys, "every Call field, no other");
        let bytes = encode(|w| w.write_record(record(&call))).unwrap_or_default();
        let line = String::from_utf8_lossy(&bytes);
        assert!(line.contains(",'+14155550132,"), "{line}");
        assert!(line.contains("\"a, \"\"quoted\"\"\nreason\""), "{line}");
        assert!(
            line.ends_with(",twilio,voicemail,0.0473,usd\r\n"),
            "{line:?}"
        );
        assert_eq!(timestamp(at), "1970-01-01T00:00:00Z");
    }
}
