//! The Responses API wire format (docs/PROVIDERS.md §7): the request body we send and the parts of
//! the response and error bodies we read. Pure functions, no I/O.

use std::fmt::Write as _;

use calltrail_core::{AnalysisInput, AnalysisKind, AnalysisMeta, Analyzer};
use serde::Deserialize;
use serde_json::{json, Map, Value};

use crate::error::AnalysisError;

/// How the request asks for structured output (`text.format`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseFormat {
    /// `json_schema` with the strict `lead_analysis` schema (the fixture's schema). Default.
    #[default]
    JsonSchema,
    /// `json_object`: any JSON object; the prompt's instructions define the fields.
    JsonObject,
    /// No `text` field: whatever the stored prompt configures.
    PromptDefault,
}

/// `true` for `pmpt_` followed by 1–200 ASCII letters, digits, `_` and `-` (OpenAI documents
/// no stricter shape; the id only ever travels inside the JSON body).
pub fn is_valid_prompt_id(id: &str) -> bool {
    id.strip_prefix("pmpt_").is_some_and(|rest| {
        !rest.is_empty()
            && rest.len() <= 200
            && rest
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
    })
}

/// The JSON body of `POST /responses` for one analysis.
pub(crate) fn request_body(
    prompt_id: &str,
    model: Option<&str>,
    format: ResponseFormat,
    input: &AnalysisInput,
) -> Value {
    let mut body = Map::new();
    body.insert("prompt".into(), json!({ "id": prompt_id }));
    body.insert(
        "input".into(),
        json!([{ "role": "user", "content": user_message(input) }]),
    );
    match format {
        ResponseFormat::JsonSchema => {
            body.insert("text".into(), json!({ "format": lead_analysis_format() }));
        }
        ResponseFormat::JsonObject => {
            body.insert(
                "text".into(),
                json!({ "format": { "type": "json_object" } }),
            );
        }
        ResponseFormat::PromptDefault => {}
    }
    body.insert("store".into(), Value::Bool(false));
    let mut metadata = Map::new();
    // Metadata values are limited to 512 characters; ids longer than that are left out.
    if input.execution_id.len() <= 512 {
        metadata.insert("execution_id".into(), input.execution_id.clone().into());
    }
    metadata.insert("analysis_type".into(), input.kind.as_str().into());
    body.insert("metadata".into(), Value::Object(metadata));
    if let Some(model) = model {
        body.insert("model".into(), model.into());
    }
    Value::Object(body)
}

/// The user message: call metadata, known contact details and the transcript(s).
/// The word "JSON" must appear in it for `json_object` mode.
pub(crate) fn user_message(input: &AnalysisInput) -> String {
    let mut m = String::new();
    let previous = input.recent_previous();
    match input.kind {
        AnalysisKind::Individual => {
            m.push_str("Analyze this call transcript and extract lead data. Answer with one JSON object.\n\n");
        }
        AnalysisKind::Complete => {
            m.push_str("Analyze all call transcripts for this contact and provide aggregated lead insights, considering the full conversation history. Answer with one JSON object.\n\n");
        }
    }
    let _ = writeln!(m, "Phone Number: {}", input.phone_number);
    if input.kind == AnalysisKind::Complete {
        let _ = writeln!(m, "Total Calls: {}", previous.len().saturating_add(1));
    }
    if let Some(d) = input.call_date {
        let _ = writeln!(m, "Call Date: {d}");
    }
    if let Some(s) = input.call_duration_seconds {
        let _ = writeln!(m, "Call Duration: {s} seconds");
    }
    let hints = [
        ("Name", &input.contact.name),
        ("Email", &input.contact.email),
        ("Company", &input.contact.company),
    ];
    for (label, value) in hints {
        if let Some(v) = value {
            let _ = writeln!(m, "Known {label}: {v}");
        }
    }
    if input.kind == AnalysisKind::Individual {
        let _ = write!(m, "\nTranscript:\n{}", input.transcript.trim_end());
        return m;
    }
    if previous.iter().any(|p| p.analysis.is_some()) {
        m.push_str("\nPrevious Individual Analyses:\n");
        for (i, p) in previous.iter().enumerate() {
            if let Some(a) = &p.analysis {
                let extracted = json!({
                    "name": a.extracted_name, "email": a.extracted_email, "company": a.company_name,
                });
                let _ = writeln!(
                    m,
                    "Call {} ({}): score {}, intent {} ({}), status {}, extracted {extracted}",
                    i.saturating_add(1),
                    date_text(p.call_date),
                    a.total_score,
                    a.intent_level.as_deref().unwrap_or("-"),
                    a.intent_score,
                    a.lead_status_tag.as_str(),
                );
            }
        }
    }
    m.push_str("\nAll Call Transcripts (oldest first):\n");
    for (i, p) in previous.iter().enumerate() {
        let _ = write!(
            m,
            "\n=== CALL {} ({}, {}) ===\n{}\n",
            i.saturating_add(1),
            date_text(p.call_date),
            duration_text(p.call_duration_seconds),
            p.transcript.trim_end()
        );
    }
    let _ = write!(
        m,
        "\n=== CALL {} (current, {}, {}) ===\n{}\n",
        previous.len().saturating_add(1),
        date_text(input.call_date),
        duration_text(input.call_duration_seconds),
        input.transcript.trim_end()
    );
    m
}

fn date_text<D: std::fmt::Display>(d: Option<D>) -> String {
    d.map_or_else(|| "date unknown".to_owned(), |d| d.to_string())
}

fn duration_text(s: Option<f64>) -> String {
    s.map_or_else(|| "duration unknown".to_owned(), |s| format!("{s}s"))
}

/// `text.format` with the strict `lead_analysis` JSON schema.
fn lead_analysis_format() -> Value {
    let level = json!({ "type": "string", "enum": ["low", "medium", "high"] });
    let int = json!({ "type": "integer" });
    let text = json!({ "type": "string" });
    let nullable = json!({ "type": ["string", "null"] });
    let boolean = json!({ "type": "boolean" });
    json!({
        "type": "json_schema",
        "name": "lead_analysis",
        "description": "Lead scoring result for call transcripts",
        "strict": true,
        "schema": {
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "total_score": int, "intent_level": level, "intent_score": int,
                "urgency_level": level, "urgency_score": int,
                "budget_constraint": text, "budget_score": int,
                "fit_alignment": text, "fit_score": int,
                "engagement_health": text, "engagement_score": int,
                "lead_status_tag": { "type": "string", "enum": ["Hot", "Warm", "Cold"] },
                "reasoning": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "intent": text, "urgency": text, "budget": text,
                        "fit": text, "engagement": text, "cta_behavior": text,
                    },
                    "required": ["intent", "urgency", "budget", "fit", "engagement", "cta_behavior"],
                },
                "extraction": {
                    "type": "object",
                    "additionalProperties": false,
                    "properties": {
                        "company_name": nullable, "name": nullable,
                        "email_address": nullable, "smartnotification": nullable,
                    },
                    "required": ["company_name", "name", "email_address", "smartnotification"],
                },
                "cta_pricing_clicked": boolean, "cta_demo_clicked": boolean,
                "cta_followup_clicked": boolean, "cta_sample_clicked": boolean,
                "cta_escalated_to_human": boolean,
                "demo_scheduled_at": nullable,
            },
            "required": [
                "total_score", "intent_level", "intent_score", "urgency_level", "urgency_score",
                "budget_constraint", "budget_score", "fit_alignment", "fit_score",
                "engagement_health", "engagement_score", "lead_status_tag", "reasoning",
                "extraction", "cta_pricing_clicked", "cta_demo_clicked", "cta_followup_clicked",
                "cta_sample_clicked", "cta_escalated_to_human", "demo_scheduled_at",
            ],
        },
    })
}

/// The fields of a `Response` object this client reads.
#[derive(Debug, Deserialize)]
struct ResponseObject {
    id: Option<String>,
    model: Option<String>,
    status: Option<String>,
    error: Option<ApiError>,
    incomplete_details: Option<IncompleteDetails>,
    #[serde(default)]
    output: Vec<Value>,
    usage: Option<Usage>,
}

#[derive(Debug, Deserialize)]
struct IncompleteDetails {
    reason: Option<String>,
}

#[derive(Debug, Deserialize)]
struct Usage {
    total_tokens: Option<i64>,
}

/// `{"error": {message, type, param, code}}`, also the `error` of a failed response.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ApiError {
    #[serde(default)]
    pub(crate) message: Option<String>,
    #[serde(default, rename = "type")]
    pub(crate) kind: Option<String>,
    #[serde(default)]
    pub(crate) param: Option<String>,
    #[serde(default)]
    pub(crate) code: Option<String>,
}

#[derive(Debug, Deserialize)]
struct ErrorEnvelope {
    error: ApiError,
}

/// Reads an error body; `None` when it is not OpenAI's error envelope.
pub(crate) fn parse_error_body(body: &[u8]) -> Option<ApiError> {
    serde_json::from_slice::<ErrorEnvelope>(body)
        .ok()
        .map(|e| e.error)
}

/// A person-readable message for an error body: OpenAI's message, else a short excerpt.
pub(crate) fn error_message(error: Option<&ApiError>, body: &[u8]) -> String {
    if let Some(message) = error.and_then(|e| e.message.as_deref()) {
        return shorten(message, 300);
    }
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    if text.is_empty() {
        "no error body".to_owned()
    } else {
        format!(
            "no OpenAI error body; the server said: {}",
            shorten(text, 200)
        )
    }
}

/// At most `max` characters of `s`, with `…` when cut.
pub(crate) fn shorten(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}…", s.get(..cut).unwrap_or_default()),
        None => s.to_owned(),
    }
}

/// What a 200 body holds: the joined output text and the metadata, or why it is unusable.
pub(crate) enum Completed {
    /// The joined `output_text` parts and the response's metadata.
    Text(String, AnalysisMeta),
    /// A `failed` response with OpenAI's error code and message.
    Failed { code: String, message: String },
}

/// Reads a 200 body: joins the `output_text` parts of every `message` output.
pub(crate) fn read_response(body: &[u8]) -> Result<Completed, AnalysisError> {
    let response: ResponseObject =
        serde_json::from_slice(body).map_err(|e| AnalysisError::InvalidResponse(e.to_string()))?;
    let status = response.status.as_deref().unwrap_or("completed");
    if status == "failed" {
        let error = response.error.unwrap_or_default();
        return Ok(Completed::Failed {
            code: error.code.unwrap_or_else(|| "unknown".to_owned()),
            message: shorten(error.message.as_deref().unwrap_or("no message"), 300),
        });
    }
    if status != "completed" {
        return Err(AnalysisError::NotCompleted {
            status: shorten(status, 40),
            reason: response.incomplete_details.and_then(|d| d.reason),
        });
    }
    let mut text = String::new();
    let mut refusal = None;
    let messages = response
        .output
        .iter()
        .filter(|item| item.get("type").and_then(Value::as_str) == Some("message"));
    for item in messages {
        let parts = item.get("content").and_then(Value::as_array);
        for part in parts.into_iter().flatten() {
            match part.get("type").and_then(Value::as_str) {
                Some("output_text") => {
                    if let Some(t) = part.get("text").and_then(Value::as_str) {
                        text.push_str(t);
                    }
                }
                Some("refusal") => {
                    refusal = part
                        .get("refusal")
                        .and_then(Value::as_str)
                        .map(|r| shorten(r, 300));
                }
                _ => {}
            }
        }
    }
    if text.trim().is_empty() {
        return Err(refusal.map_or(AnalysisError::NoOutputText, AnalysisError::Refused));
    }
    let meta = AnalysisMeta {
        analyzer: Analyzer::OpenAi,
        model: response.model,
        response_id: response.id,
        tokens_used: response.usage.and_then(|u| u.total_tokens),
    };
    Ok(Completed::Text(text, meta))
}
