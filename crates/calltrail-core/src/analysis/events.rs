//! The `analysis.*` events (schema version 1). Analysis results are events, so `calltrail
//! replay` rebuilds `lead_analytics` and the transcripts' analysis status without a model.
//!
//! Each is keyed like the call's webhooks: tenant, the call's provider, its execution id as the
//! stream id, and the event type. A call's first analysis run records the plain types; each
//! re-run (`calltrail analysis retry`) is a new version whose types end in `.v2`, `.v3`, …
//! ([`versioned_event_type`]), so a re-run never collides with, or overwrites, an earlier event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{AnalysisKind, AnalysisMeta, LeadAnalysis};

/// The call's individual analysis.
pub const ANALYSIS_INDIVIDUAL: &str = "analysis.individual";
/// The contact's complete analysis as of this call.
pub const ANALYSIS_COMPLETE: &str = "analysis.complete";
/// The call's analysis failed for good (until an operator re-queues it).
pub const ANALYSIS_FAILED: &str = "analysis.failed";
/// Version of the `data` shape of every `analysis.*` event.
pub const ANALYSIS_EVENT_SCHEMA_VERSION: i32 = 1;

/// The event type that records a successful analysis of `kind`.
pub fn recorded_event_type(kind: AnalysisKind) -> &'static str {
    match kind {
        AnalysisKind::Individual => ANALYSIS_INDIVIDUAL,
        AnalysisKind::Complete => ANALYSIS_COMPLETE,
    }
}

/// The event type of `base` (an `analysis.*` type above) in analysis run `version`: the
/// plain type for the first run (`version` 1, or 0), `base.vN` for run N.
pub fn versioned_event_type(base: &str, version: u32) -> String {
    if version <= 1 {
        base.to_owned()
    } else {
        format!("{base}.v{version}")
    }
}

/// The base `analysis.*` type and run of an event type ([`versioned_event_type`]'s inverse);
/// `None` for any other type (including a malformed or `.v1`/`.v0` suffix).
pub fn parse_analysis_event_type(event_type: &str) -> Option<(&'static str, u32)> {
    [ANALYSIS_INDIVIDUAL, ANALYSIS_COMPLETE, ANALYSIS_FAILED]
        .into_iter()
        .find_map(|base| {
            let rest = event_type.strip_prefix(base)?;
            if rest.is_empty() {
                return Some((base, 1));
            }
            let digits = rest.strip_prefix(".v")?;
            if digits.starts_with('0') || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            let version: u32 = digits.parse().ok()?;
            (version >= 2).then_some((base, version))
        })
}

/// Data of `analysis.individual` and `analysis.complete`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisRecorded {
    /// Individual or complete.
    pub kind: AnalysisKind,
    /// The call analysed (for a complete analysis: the latest call it includes).
    pub execution_id: String,
    /// The contact's phone number (E.164), when the call has one.
    pub phone_number: Option<String>,
    /// 0 for an individual analysis; for a complete one, the contact's calls analysed so far.
    pub previous_calls_analyzed: i32,
    /// When the analysis was made.
    pub analysis_timestamp: DateTime<Utc>,
    /// The result.
    pub analysis: LeadAnalysis,
    /// Who produced it and what it cost.
    pub meta: AnalysisMeta,
}

/// Data of `analysis.failed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisFailed {
    /// The analysis that failed.
    pub kind: AnalysisKind,
    /// The call.
    pub execution_id: String,
    /// A stable snake_case reason code (e.g. `missing_prompt_id`, `server_error`).
    pub code: String,
    /// One sentence a person can act on (never quotes the transcript).
    pub message: String,
    /// Job attempts made before giving up.
    pub attempts: u32,
    /// When it was given up.
    pub failed_at: DateTime<Utc>,
}

/// An analysis event to append.
#[derive(Debug, Clone, PartialEq)]
pub enum AnalysisEvent {
    /// `analysis.individual` or `analysis.complete`.
    Recorded(Box<AnalysisRecorded>),
    /// `analysis.failed`.
    Failed(AnalysisFailed),
}

impl AnalysisEvent {
    /// The event type.
    pub fn event_type(&self) -> &'static str {
        match self {
            AnalysisEvent::Recorded(r) => recorded_event_type(r.kind),
            AnalysisEvent::Failed(_) => ANALYSIS_FAILED,
        }
    }

    /// The event time.
    pub fn occurred_at(&self) -> DateTime<Utc> {
        match self {
            AnalysisEvent::Recorded(r) => r.analysis_timestamp,
            AnalysisEvent::Failed(f) => f.failed_at,
        }
    }

    /// The call.
    pub fn execution_id(&self) -> &str {
        match self {
            AnalysisEvent::Recorded(r) => &r.execution_id,
            AnalysisEvent::Failed(f) => &f.execution_id,
        }
    }

    /// The event's `data` as JSON text.
    pub fn data_json(&self) -> Result<String, serde_json::Error> {
        match self {
            AnalysisEvent::Recorded(r) => serde_json::to_string(r.as_ref()),
            AnalysisEvent::Failed(f) => serde_json::to_string(f),
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn a_re_run_is_a_new_event_type_that_reads_back_as_its_base_and_version() {
        assert_eq!(versioned_event_type(ANALYSIS_FAILED, 1), "analysis.failed");
        assert_eq!(
            versioned_event_type(ANALYSIS_INDIVIDUAL, 2),
            "analysis.individual.v2"
        );
        for base in [ANALYSIS_INDIVIDUAL, ANALYSIS_COMPLETE, ANALYSIS_FAILED] {
            for version in [1, 2, 3, 17, u32::MAX] {
                assert_eq!(
                    parse_analysis_event_type(&versioned_event_type(base, version)),
                    Some((base, version))
                );
            }
        }
        for other in [
            "analysis.failed.v1",
            "analysis.failed.v0",
            "analysis.failed.v02",
            "analysis.failed.v",
            "analysis.failed.v2x",
            "analysis.failedx",
            "analysis.individual.v99999999999",
            "completed",
            "analysis.",
        ] {
            assert_eq!(parse_analysis_event_type(other), None, "{other}");
        }
    }
    use crate::analysis::{Analyzer, LeadStatusTag};
    use serde_json::Map;

    fn analysis() -> LeadAnalysis {
        LeadAnalysis {
            total_score: 70,
            intent_level: Some("high".into()),
            intent_score: 4,
            urgency_level: None,
            urgency_score: 2,
            budget_constraint: None,
            budget_score: 2,
            fit_alignment: None,
            fit_score: 3,
            engagement_health: None,
            engagement_score: 3,
            lead_status_tag: LeadStatusTag::Hot,
            reasoning: Map::new(),
            company_name: None,
            extracted_name: None,
            extracted_email: Some("a@b.example".into()),
            smart_notification: None,
            cta_pricing_clicked: true,
            cta_demo_clicked: false,
            cta_followup_clicked: false,
            cta_sample_clicked: false,
            cta_escalated_to_human: false,
            demo_book_datetime: None,
        }
    }

    #[test]
    fn recorded_data_round_trips_and_names_its_type() {
        let event = AnalysisRecorded {
            kind: AnalysisKind::Complete,
            execution_id: "e1".into(),
            phone_number: Some("+14155550132".into()),
            previous_calls_analyzed: 2,
            analysis_timestamp: DateTime::<Utc>::UNIX_EPOCH,
            analysis: analysis(),
            meta: AnalysisMeta {
                analyzer: Analyzer::OpenAi,
                model: Some("m".into()),
                response_id: Some("resp_1".into()),
                tokens_used: Some(10),
            },
        };
        let wrapped = AnalysisEvent::Recorded(Box::new(event.clone()));
        assert_eq!(wrapped.event_type(), ANALYSIS_COMPLETE);
        let back: AnalysisRecorded = serde_json::from_str(&wrapped.data_json().unwrap()).unwrap();
        assert_eq!(back, event);
    }

    #[test]
    fn failed_data_round_trips() {
        let failed = AnalysisFailed {
            kind: AnalysisKind::Individual,
            execution_id: "e1".into(),
            code: "missing_prompt_id".into(),
            message: "no prompt".into(),
            attempts: 1,
            failed_at: DateTime::<Utc>::UNIX_EPOCH,
        };
        let wrapped = AnalysisEvent::Failed(failed.clone());
        assert_eq!(wrapped.event_type(), ANALYSIS_FAILED);
        let back: AnalysisFailed = serde_json::from_str(&wrapped.data_json().unwrap()).unwrap();
        assert_eq!(back, failed);
    }
}
