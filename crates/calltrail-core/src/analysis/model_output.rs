//! Reading the model's JSON answer into a [`LeadAnalysis`].
//!
//! # Rules of [`parse_model_output`]
//!
//! The answer is the JSON object of the OpenAI prompt's `lead_analysis` schema (see
//! `fixtures/openai/response-completed.json`). Reading is strict where a wrong value would
//! mislead a person and lenient where the model's formatting varies harmlessly:
//!
//! - Surrounding whitespace and one Markdown code fence (` ```json … ``` `) are ignored;
//!   anything else that is not one JSON object is an error (`model output is not JSON: …`).
//! - **Required**: `total_score`, the five sub-scores (`intent_score`, `urgency_score`,
//!   `budget_score`, `fit_score`, `engagement_score`) and `lead_status_tag`. A missing or
//!   `null` one is an error naming it (``model output is missing `total_score` ``).
//! - Scores may be integers, decimals (rounded half away from zero) or numeric strings; they
//!   are clamped into `0..=100` (total) and `0..=5` (sub-scores). Anything else is an error.
//! - `lead_status_tag` is `Hot`, `Warm` or `Cold`, in any letter case; another word is an error.
//! - Level labels (`intent_level`, `urgency_level`, `budget_constraint`, `fit_alignment`,
//!   `engagement_health`) are kept as trimmed text; missing, empty or non-text → `None`.
//! - `reasoning` is kept when it is an object; a string becomes `{"summary": …}`; missing → `{}`.
//! - Extraction comes from `extraction.{company_name, name, email_address, smartnotification}`,
//!   falling back to top-level `company_name`, `extracted_name`, `extracted_email`,
//!   `smart_notification`. Empty text and placeholders (`null`, `none`, `n/a`, `unknown`) →
//!   `None`; an e-mail that does not look like `local@domain.tld` → `None`.
//! - CTA flags accept booleans, `"true"`/`"false"`/`"yes"`/`"no"` and `0`/`1`; anything else,
//!   or missing → `false`.
//! - `demo_scheduled_at` (or `demo_book_datetime`) becomes RFC 3339 when it parses as RFC 3339
//!   or as `YYYY-MM-DD[T ]HH:MM[:SS]` (taken as UTC); otherwise `None`.
//!
//! Error messages never quote the transcript; at most a short excerpt of an invalid value.

use chrono::{DateTime, NaiveDateTime};
use serde_json::{Map, Value};

use super::{LeadAnalysis, LeadStatusTag, MAX_SUB_SCORE, MAX_TOTAL_SCORE};

/// Why the model's answer could not be read as a [`LeadAnalysis`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AnalysisParseError {
    /// The text is not JSON.
    #[error("model output is not JSON: {0}")]
    NotJson(String),
    /// The JSON is not an object.
    #[error("model output is not a JSON object but {0}")]
    NotAnObject(&'static str),
    /// A required field is missing or null.
    #[error("model output is missing `{0}`")]
    Missing(&'static str),
    /// A field has a value that cannot be used.
    #[error("model output has an invalid `{field}`: {reason}")]
    Invalid {
        /// The field.
        field: &'static str,
        /// What is wrong.
        reason: String,
    },
}

/// Reads the model's JSON answer; the rules are in the module documentation.
pub fn parse_model_output(text: &str) -> Result<LeadAnalysis, AnalysisParseError> {
    let body = strip_code_fence(text.trim());
    if body.is_empty() {
        return Err(AnalysisParseError::NotJson(
            "the output is empty".to_owned(),
        ));
    }
    let value: Value =
        serde_json::from_str(body).map_err(|e| AnalysisParseError::NotJson(e.to_string()))?;
    let obj = match value {
        Value::Object(obj) => obj,
        other => return Err(AnalysisParseError::NotAnObject(json_kind(&other))),
    };
    let extraction = obj.get("extraction").and_then(Value::as_object);
    let extracted = |nested: &[&str], top: &[&str]| {
        let from_nested = extraction.and_then(|e| nested.iter().find_map(|k| text_field(e, k)));
        from_nested.or_else(|| top.iter().find_map(|k| text_field(&obj, k)))
    };
    let tag_value = required(&obj, "lead_status_tag")?;
    let lead_status_tag = tag_value
        .as_str()
        .and_then(LeadStatusTag::parse)
        .ok_or_else(|| AnalysisParseError::Invalid {
            field: "lead_status_tag",
            reason: format!("expected Hot, Warm or Cold, got {}", excerpt(tag_value)),
        })?;
    Ok(LeadAnalysis {
        total_score: score(&obj, "total_score", MAX_TOTAL_SCORE)?,
        intent_level: text_field(&obj, "intent_level"),
        intent_score: score(&obj, "intent_score", MAX_SUB_SCORE)?,
        urgency_level: text_field(&obj, "urgency_level"),
        urgency_score: score(&obj, "urgency_score", MAX_SUB_SCORE)?,
        budget_constraint: text_field(&obj, "budget_constraint"),
        budget_score: score(&obj, "budget_score", MAX_SUB_SCORE)?,
        fit_alignment: text_field(&obj, "fit_alignment"),
        fit_score: score(&obj, "fit_score", MAX_SUB_SCORE)?,
        engagement_health: text_field(&obj, "engagement_health"),
        engagement_score: score(&obj, "engagement_score", MAX_SUB_SCORE)?,
        lead_status_tag,
        reasoning: reasoning(obj.get("reasoning")),
        company_name: extracted(&["company_name", "company"], &["company_name"]),
        extracted_name: extracted(&["name"], &["extracted_name"]),
        extracted_email: extracted(&["email_address", "email"], &["extracted_email"])
            .filter(|e| is_plausible_email(e)),
        smart_notification: extracted(
            &["smartnotification", "smart_notification"],
            &["smart_notification", "smartnotification"],
        ),
        cta_pricing_clicked: flag(&obj, "cta_pricing_clicked"),
        cta_demo_clicked: flag(&obj, "cta_demo_clicked"),
        cta_followup_clicked: flag(&obj, "cta_followup_clicked"),
        cta_sample_clicked: flag(&obj, "cta_sample_clicked"),
        cta_escalated_to_human: flag(&obj, "cta_escalated_to_human"),
        demo_book_datetime: ["demo_scheduled_at", "demo_book_datetime"]
            .iter()
            .find_map(|k| {
                obj.get(*k)
                    .and_then(Value::as_str)
                    .and_then(normalize_datetime)
            }),
    })
}

/// `true` when `s` looks like `local@domain.tld`: one `@`, no spaces, a dotted domain.
pub fn is_plausible_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._%+-'".contains(c));
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        })
        && labels
            .last()
            .is_some_and(|tld| tld.len() >= 2 && tld.chars().all(|c| c.is_ascii_alphabetic()));
    local_ok && domain_ok
}

/// RFC 3339 text for an RFC 3339 or zone-less (`YYYY-MM-DD[T ]HH:MM[:SS]`, UTC) date-time.
pub fn normalize_datetime(s: &str) -> Option<String> {
    let s = s.trim();
    if let Ok(dt) = DateTime::parse_from_rfc3339(s) {
        return Some(dt.to_rfc3339());
    }
    [
        "%Y-%m-%dT%H:%M:%S%.f",
        "%Y-%m-%d %H:%M:%S%.f",
        "%Y-%m-%dT%H:%M",
        "%Y-%m-%d %H:%M",
    ]
    .iter()
    .find_map(|f| NaiveDateTime::parse_from_str(s, f).ok())
    .map(|naive| naive.and_utc().to_rfc3339())
}

fn strip_code_fence(s: &str) -> &str {
    let Some(rest) = s.strip_prefix("```") else {
        return s;
    };
    let rest = rest.strip_prefix("json").unwrap_or(rest);
    rest.strip_suffix("```").unwrap_or(rest).trim()
}

fn required<'a>(
    obj: &'a Map<String, Value>,
    field: &'static str,
) -> Result<&'a Value, AnalysisParseError> {
    match obj.get(field) {
        None | Some(Value::Null) => Err(AnalysisParseError::Missing(field)),
        Some(v) => Ok(v),
    }
}

fn score(
    obj: &Map<String, Value>,
    field: &'static str,
    max: i32,
) -> Result<i32, AnalysisParseError> {
    let value = required(obj, field)?;
    let number = match value {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.trim().parse::<f64>().ok(),
        _ => None,
    }
    .filter(|n| n.is_finite())
    .ok_or_else(|| AnalysisParseError::Invalid {
        field,
        reason: format!("expected a number, got {}", excerpt(value)),
    })?;
    let clamped = number.round().clamp(0.0, f64::from(max));
    // Exact: `clamped` is a whole number within `0..=max`, which fits in i32.
    #[allow(clippy::as_conversions)]
    let whole = clamped as i32;
    Ok(whole)
}

fn text_field(obj: &Map<String, Value>, field: &str) -> Option<String> {
    let text = obj.get(field)?.as_str()?.trim();
    let placeholder = ["", "null", "none", "n/a", "na", "unknown"]
        .iter()
        .any(|p| text.eq_ignore_ascii_case(p));
    (!placeholder).then(|| text.to_owned())
}

fn flag(obj: &Map<String, Value>, field: &str) -> bool {
    match obj.get(field) {
        Some(Value::Bool(b)) => *b,
        Some(Value::Number(n)) => n.as_i64() == Some(1),
        Some(Value::String(s)) => {
            let s = s.trim();
            s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes")
        }
        _ => false,
    }
}

fn reasoning(value: Option<&Value>) -> Map<String, Value> {
    match value {
        Some(Value::Object(map)) => map.clone(),
        None | Some(Value::Null) => Map::new(),
        Some(Value::String(s)) => {
            Map::from_iter([("summary".to_owned(), Value::String(s.clone()))])
        }
        Some(other) => Map::from_iter([("summary".to_owned(), Value::String(other.to_string()))]),
    }
}

fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A short quotation of an invalid value (at most 40 characters).
fn excerpt(v: &Value) -> String {
    let text = v.to_string();
    match text.char_indices().nth(40) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text,
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    const FULL: &str = r#"{"total_score":82,"intent_level":"high","intent_score":4,"urgency_level":"medium","urgency_score":3,"budget_constraint":"not_discussed","budget_score":2,"fit_alignment":"strong","fit_score":4,"engagement_health":"high","engagement_score":4,"lead_status_tag":"Hot","reasoning":{"intent":"x"},"extraction":{"company_name":"Acme Logistics","name":"Rohan Mehta","email_address":"rohan@acme-logistics.example","smartnotification":"Hot lead"},"cta_pricing_clicked":true,"cta_demo_clicked":true,"cta_followup_clicked":false,"cta_sample_clicked":false,"cta_escalated_to_human":false,"demo_scheduled_at":"2025-10-09T15:00:00-07:00"}"#;

    #[test]
    fn reads_the_fixture_shape() {
        let a = parse_model_output(FULL).unwrap();
        assert_eq!(a.total_score, 82);
        assert_eq!(a.lead_status_tag, LeadStatusTag::Hot);
        assert_eq!(a.company_name.as_deref(), Some("Acme Logistics"));
        assert_eq!(a.extracted_name.as_deref(), Some("Rohan Mehta"));
        assert_eq!(
            a.extracted_email.as_deref(),
            Some("rohan@acme-logistics.example")
        );
        assert_eq!(a.smart_notification.as_deref(), Some("Hot lead"));
        assert!(a.cta_pricing_clicked && a.cta_demo_clicked && !a.cta_sample_clicked);
        assert_eq!(
            a.demo_book_datetime.as_deref(),
            Some("2025-10-09T15:00:00-07:00")
        );
        assert_eq!(a.reasoning.get("intent"), Some(&Value::String("x".into())));
    }

    #[test]
    fn clamps_rounds_and_tolerates_formatting() {
        let text = "```json\n{\"total_score\":140.6,\"intent_score\":\"4.5\",\"urgency_score\":-2,\"budget_score\":9,\"fit_score\":1,\"engagement_score\":0,\"lead_status_tag\":\"warm\",\"reasoning\":\"short\",\"extraction\":{\"email_address\":\"not an email\",\"name\":\"N/A\"},\"cta_demo_clicked\":\"yes\",\"demo_scheduled_at\":\"Thursday 3pm\"}\n```";
        let a = parse_model_output(text).unwrap();
        assert_eq!(
            (
                a.total_score,
                a.intent_score,
                a.urgency_score,
                a.budget_score
            ),
            (100, 5, 0, 5)
        );
        assert_eq!(a.lead_status_tag, LeadStatusTag::Warm);
        assert_eq!(
            a.reasoning.get("summary"),
            Some(&Value::String("short".into()))
        );
        assert_eq!(
            (a.extracted_email, a.extracted_name, a.intent_level),
            (None, None, None)
        );
        assert!(a.cta_demo_clicked && !a.cta_pricing_clicked);
        assert_eq!(a.demo_book_datetime, None);
    }

    #[test]
    fn names_what_is_wrong() {
        let no_total = FULL.replace("\"total_score\":82,", "");
        assert_eq!(
            parse_model_output(&no_total).unwrap_err().to_string(),
            "model output is missing `total_score`"
        );
        let bad_tag = FULL.replace("\"Hot\"", "\"Lukewarm\"");
        assert!(parse_model_output(&bad_tag)
            .unwrap_err()
            .to_string()
            .contains("`lead_status_tag`: expected Hot, Warm or Cold"));
        let err = parse_model_output("I think this lead is hot").unwrap_err();
        assert!(
            err.to_string().starts_with("model output is not JSON: "),
            "{err}"
        );
        assert_eq!(
            parse_model_output("[1]").unwrap_err(),
            AnalysisParseError::NotAnObject("an array")
        );
    }

    #[test]
    fn zone_less_times_are_utc() {
        assert_eq!(
            normalize_datetime("2025-10-09 15:00").as_deref(),
            Some("2025-10-09T15:00:00+00:00")
        );
        assert_eq!(
            normalize_datetime("2025-10-09T15:00:00Z").as_deref(),
            Some("2025-10-09T15:00:00+00:00")
        );
    }

    #[test]
    fn plausible_emails() {
        assert!(is_plausible_email("rohan@acme-logistics.example"));
        for bad in [
            "rohan@",
            "@x.com",
            "a b@x.com",
            "a@x",
            "a@x.c0m",
            "a@-x.com",
        ] {
            assert!(!is_plausible_email(bad), "{bad}");
        }
    }
}
