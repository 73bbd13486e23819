//! Lead analysis (CONTRACT §3 LeadAnalytics): what an analyzer is given, what it returns,
//! and how the model's JSON answer is read.
//!
//! The model's answer is read by [`parse_model_output`] (rules in [`model_output`]); results
//! are recorded as the events of [`events`].

use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

pub mod events;
pub mod model_output;

pub use events::{
    parse_analysis_event_type, recorded_event_type, versioned_event_type, AnalysisEvent,
    AnalysisFailed, AnalysisRecorded, ANALYSIS_COMPLETE, ANALYSIS_EVENT_SCHEMA_VERSION,
    ANALYSIS_FAILED, ANALYSIS_INDIVIDUAL,
};
pub use model_output::{
    is_plausible_email, normalize_datetime, parse_model_output, AnalysisParseError,
};

/// Highest `total_score`.
pub const MAX_TOTAL_SCORE: i32 = 100;
/// Highest sub-score (intent, urgency, budget, fit, engagement).
pub const MAX_SUB_SCORE: i32 = 5;
/// At most this many transcripts (the current one included) go into a complete analysis.
pub const MAX_TRANSCRIPTS_PER_COMPLETE_ANALYSIS: usize = 10;

/// The lead temperature a person acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub enum LeadStatusTag {
    /// Ready to buy or book now.
    Hot,
    /// Interested, not yet committed.
    Warm,
    /// Not interested or not reachable.
    Cold,
}

impl LeadStatusTag {
    /// `Hot`, `Warm` or `Cold`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeadStatusTag::Hot => "Hot",
            LeadStatusTag::Warm => "Warm",
            LeadStatusTag::Cold => "Cold",
        }
    }

    /// Reads `hot`/`Hot`/`HOT` etc.; `None` for any other word.
    pub fn parse(s: &str) -> Option<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "hot" => Some(LeadStatusTag::Hot),
            "warm" => Some(LeadStatusTag::Warm),
            "cold" => Some(LeadStatusTag::Cold),
            _ => None,
        }
    }
}

/// Which analyzer produced a result.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "lowercase")]
pub enum Analyzer {
    /// The OpenAI Responses API.
    OpenAi,
    /// The built-in keyword heuristic (no network).
    Local,
}

impl Analyzer {
    /// `openai` or `local`.
    pub fn as_str(self) -> &'static str {
        match self {
            Analyzer::OpenAi => "openai",
            Analyzer::Local => "local",
        }
    }
}

/// One call (`individual`) or all of a contact's calls (`complete`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnalysisKind {
    /// The current call's transcript only.
    Individual,
    /// The current call plus the contact's previous calls.
    Complete,
}

impl AnalysisKind {
    /// `individual` or `complete`.
    pub fn as_str(self) -> &'static str {
        match self {
            AnalysisKind::Individual => "individual",
            AnalysisKind::Complete => "complete",
        }
    }
}

/// The analysis fields of a LeadAnalytics row (CONTRACT §3), as produced by an analyzer. Their
/// names are the `lead_analytics` columns' and the read API's (the one list of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LeadAnalysis {
    /// Overall score, `0..=100`.
    pub total_score: i32,
    /// Intent label, e.g. `high`.
    pub intent_level: Option<String>,
    /// Intent, `0..=5`.
    pub intent_score: i32,
    /// Urgency label, e.g. `medium`.
    pub urgency_level: Option<String>,
    /// Urgency, `0..=5`.
    pub urgency_score: i32,
    /// Budget label, e.g. `not_discussed`.
    pub budget_constraint: Option<String>,
    /// Budget, `0..=5`.
    pub budget_score: i32,
    /// Fit label, e.g. `strong`.
    pub fit_alignment: Option<String>,
    /// Fit, `0..=5`.
    pub fit_score: i32,
    /// Engagement label, e.g. `high`.
    pub engagement_health: Option<String>,
    /// Engagement, `0..=5`.
    pub engagement_score: i32,
    /// Hot, Warm or Cold.
    pub lead_status_tag: LeadStatusTag,
    /// Why, per dimension (`intent`, `urgency`, `budget`, `fit`, `engagement`, `cta_behavior`).
    #[cfg_attr(feature = "openapi", schema(value_type = Object))]
    pub reasoning: Map<String, Value>,
    /// The caller's company, when stated.
    pub company_name: Option<String>,
    /// The caller's name, when stated.
    pub extracted_name: Option<String>,
    /// The caller's e-mail address, when stated.
    pub extracted_email: Option<String>,
    /// A one-line notification for the business.
    pub smart_notification: Option<String>,
    /// The caller asked about price.
    pub cta_pricing_clicked: bool,
    /// The caller asked for or accepted a demo.
    pub cta_demo_clicked: bool,
    /// The caller asked to be contacted again.
    pub cta_followup_clicked: bool,
    /// The caller asked for a sample or trial.
    pub cta_sample_clicked: bool,
    /// The caller asked for a human.
    pub cta_escalated_to_human: bool,
    /// The booked demo time, RFC 3339.
    pub demo_book_datetime: Option<String>,
}

/// Who produced an analysis and what it cost.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnalysisMeta {
    /// `openai` or `local`.
    pub analyzer: Analyzer,
    /// The model that answered (OpenAI only).
    pub model: Option<String>,
    /// The OpenAI response id (`resp_…`).
    pub response_id: Option<String>,
    /// The response's `usage.total_tokens`.
    pub tokens_used: Option<i64>,
}

impl AnalysisMeta {
    /// Metadata of a local-analyzer result: no model, no response, no tokens.
    pub fn local() -> Self {
        AnalysisMeta {
            analyzer: Analyzer::Local,
            model: None,
            response_id: None,
            tokens_used: None,
        }
    }
}

/// What is already known about the contact (e.g. from the provider's recipient data).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactHints {
    /// The contact's name.
    pub name: Option<String>,
    /// The contact's e-mail address.
    pub email: Option<String>,
    /// The contact's company.
    pub company: Option<String>,
}

/// An earlier call of the same contact, for a complete analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PreviousCall {
    /// The provider's execution id.
    pub execution_id: String,
    /// The call's transcript.
    pub transcript: String,
    /// When the call took place.
    #[serde(default)]
    pub call_date: Option<NaiveDate>,
    /// How long the conversation lasted.
    #[serde(default)]
    pub call_duration_seconds: Option<f64>,
    /// The call's individual analysis, when there is one.
    #[serde(default)]
    pub analysis: Option<LeadAnalysis>,
}

/// Everything an analyzer needs for one analysis.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AnalysisInput {
    /// Individual or complete.
    pub kind: AnalysisKind,
    /// The current call's execution id.
    pub execution_id: String,
    /// The contact's phone number (E.164).
    pub phone_number: String,
    /// The current call's transcript (`assistant: …` / `user: …` lines).
    pub transcript: String,
    /// The current call's conversation length.
    #[serde(default)]
    pub call_duration_seconds: Option<f64>,
    /// The current call's date.
    #[serde(default)]
    pub call_date: Option<NaiveDate>,
    /// What is already known about the contact.
    #[serde(default)]
    pub contact: ContactHints,
    /// Earlier calls, oldest first (complete analyses only).
    #[serde(default)]
    pub previous: Vec<PreviousCall>,
}

impl AnalysisInput {
    /// An individual analysis of one transcript, without metadata.
    pub fn individual(execution_id: &str, phone_number: &str, transcript: &str) -> Self {
        AnalysisInput {
            kind: AnalysisKind::Individual,
            execution_id: execution_id.to_owned(),
            phone_number: phone_number.to_owned(),
            transcript: transcript.to_owned(),
            call_duration_seconds: None,
            call_date: None,
            contact: ContactHints::default(),
            previous: Vec::new(),
        }
    }

    /// The previous calls an analyzer may use: none for an individual analysis, else the most
    /// recent ones so that at most [`MAX_TRANSCRIPTS_PER_COMPLETE_ANALYSIS`] transcripts are used.
    pub fn recent_previous(&self) -> &[PreviousCall] {
        match self.kind {
            AnalysisKind::Individual => &[],
            AnalysisKind::Complete => {
                let keep = MAX_TRANSCRIPTS_PER_COMPLETE_ANALYSIS.saturating_sub(1);
                let skip = self.previous.len().saturating_sub(keep);
                self.previous.get(skip..).unwrap_or(&[])
            }
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn serializes_tags_and_analyzers_as_the_contract_spells_them() {
        assert_eq!(serde_json::to_value(LeadStatusTag::Warm).unwrap(), "Warm");
        assert_eq!(serde_json::to_value(Analyzer::OpenAi).unwrap(), "openai");
        assert_eq!(
            serde_json::to_value(AnalysisKind::Complete).unwrap(),
            "complete"
        );
    }

    #[test]
    fn keeps_only_the_last_transcripts() {
        let mut input = AnalysisInput::individual("e", "+14155550132", "t");
        input.previous = (0..12)
            .map(|i| PreviousCall {
                execution_id: i.to_string(),
                transcript: String::new(),
                call_date: None,
                call_duration_seconds: None,
                analysis: None,
            })
            .collect();
        assert!(input.recent_previous().is_empty());
        input.kind = AnalysisKind::Complete;
        let kept = input.recent_previous();
        assert_eq!(kept.len(), 9);
        assert_eq!(kept.first().map(|p| p.execution_id.as_str()), Some("3"));
    }
}
