//! The JSON shapes of the read API (CONTRACT §3). Field names are the contract's.

use calltrail_core::{Analyzer, LeadAnalysis};
use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

/// A call (CONTRACT §3 "Call").
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallView {
    /// The provider's execution id (its call id).
    pub execution_id: String,
    /// The provider whose call it is (`bolna`, `vapi`, `elevenlabs`, `twilio`, `retell`): a
    /// call is identified by `(provider, execution_id)`.
    pub provider: String,
    /// The provider's agent id.
    pub agent_id: Option<String>,
    /// Owning user (tenant).
    pub user_id: Uuid,
    /// The contact this call belongs to.
    pub contact_id: Option<Uuid>,
    /// E.164.
    pub phone_number: Option<String>,
    /// `inbound` or `outbound`.
    pub lead_type: Option<String>,
    /// Bolna's lifecycle status.
    pub call_lifecycle_status: String,
    /// `completed`, `failed`, `cancelled` or `in_progress`.
    pub status: String,
    /// `ceil(conversation_duration)`, 0 until charged.
    pub duration_seconds: i64,
    /// `ceil(duration_seconds / 60)`, 0 until charged.
    pub duration_minutes: i64,
    /// Credits charged, 0 until charged.
    pub credits_used: i64,
    /// Who hung up.
    pub hangup_by: Option<String>,
    /// Why the call ended.
    pub hangup_reason: Option<String>,
    /// Telephony hangup code.
    pub hangup_provider_code: Option<i64>,
    /// Recording URL.
    pub recording_url: Option<String>,
    /// Time of the `ringing` event.
    pub ringing_started_at: Option<DateTime<Utc>>,
    /// Time of the `in-progress` event.
    pub call_answered_at: Option<DateTime<Utc>>,
    /// Time of the `call-disconnected` event.
    pub call_disconnected_at: Option<DateTime<Utc>>,
    /// Time of the `completed` event.
    pub completed_at: Option<DateTime<Utc>>,
    /// When the provider created the call.
    pub created_at: DateTime<Utc>,
    /// When this row last changed (processing time).
    pub updated_at: DateTime<Utc>,
    /// The campaign the call is attributed to (`null`: unattributed).
    pub campaign_id: Option<Uuid>,
    /// How: `auto_batch`, `auto_phone` or `manual` (`null`: unattributed).
    pub attribution: Option<String>,
    /// What its webhooks sent that calltrail did not trust and replaced:
    /// `duration_out_of_range`, `timestamp_out_of_range`, `timestamp_unparseable`.
    pub anomalies: Vec<String>,
    /// Re-deliveries under the key of one of its webhooks whose body differed (answered as
    /// duplicates, kept for review: `calltrail admin conflicts`).
    pub conflicts: i64,
    /// The business outcome: `booked` (its analysis booked a demo) over the provider's ending
    /// (`transferred`, `voicemail`, `no_answer`, `busy`, `failed`) over `other`;
    /// `information` is reserved and never derived yet.
    #[schema(example = "voicemail")]
    pub outcome: String,
    /// The call's cost as the provider itself reported it, never converted (`null`: the
    /// provider sent none).
    pub cost: Option<f64>,
    /// What `cost` counts: `usd` (Vapi), `cents` of the provider account's currency (Bolna,
    /// Retell) or `credits` (ElevenLabs); `null` with `cost`.
    pub cost_unit: Option<String>,
}

/// One entry of a call's timeline.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TimelineEvent {
    /// Provider status exactly as sent, or `analysis.*`, `credits.*`.
    #[serde(rename = "type")]
    pub event_type: String,
    /// Event time.
    pub occurred_at: DateTime<Utc>,
    /// When calltrail recorded it.
    pub recorded_at: DateTime<Utc>,
    /// The event's position in the log (its raw payload is read by it; not in the JSON).
    #[serde(skip)]
    pub position: i64,
}

/// A call with its timeline (`GET /v1/calls/{id}`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CallDetail {
    /// The call.
    #[serde(flatten)]
    pub call: CallView,
    /// Its events ordered by `occurred_at`.
    pub events: Vec<TimelineEvent>,
}

/// A call's transcript.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct TranscriptView {
    /// Transcript text.
    pub content: String,
    /// `pending`, `processing`, `completed` or `failed`.
    pub analysis_status: String,
    /// Why analysis failed, or, while it waits for another attempt, why the last one failed.
    pub analysis_error: Option<String>,
    /// While a failed attempt waits to be retried: when the next attempt is due.
    pub next_attempt_at: Option<DateTime<Utc>>,
}

/// A contact.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ContactView {
    /// Contact id.
    pub id: Uuid,
    /// E.164.
    pub phone_number: String,
    /// Name, when known.
    pub name: Option<String>,
    /// E-mail, when known.
    pub email: Option<String>,
    /// Company, when known.
    pub company: Option<String>,
    /// Calls that ended `no-answer` or `busy`.
    pub not_connected: i64,
    /// The call that created this contact.
    pub auto_created_from_call_id: Option<String>,
    /// That call's provider.
    pub auto_created_from_provider: Option<String>,
    /// When the contact was created.
    pub created_at: DateTime<Utc>,
}

/// One credit transaction.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CreditTransactionView {
    /// `grant`, `usage` (a call's first charge) or `adjustment` (a later change of it).
    #[serde(rename = "type")]
    pub kind: String,
    /// Signed: grants positive, charges negative.
    pub amount: i64,
    /// Balance after this transaction.
    pub balance_after: i64,
    /// The charged call, for usage and adjustment.
    pub call_id: Option<String>,
    /// The charged call's provider (with `call_id`; null otherwise).
    pub provider: Option<String>,
    /// Event time of the transaction (equal to `occurred_at`).
    pub created_at: DateTime<Utc>,
    /// The provider's time of the event that caused it.
    pub occurred_at: DateTime<Utc>,
    /// When that event was recorded: transactions are listed in this order, in which
    /// `balance_after` is a running balance.
    pub recorded_at: DateTime<Utc>,
}

/// A user's credits (`GET /v1/credits`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CreditsView {
    /// Current balance (may be negative).
    pub balance: i64,
    /// Transactions, newest first.
    pub transactions: Vec<CreditTransactionView>,
}

/// A page of a list route.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Page<T> {
    /// The rows.
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; `null` on the last page.
    pub next_cursor: Option<String>,
}

/// A lead analysis (CONTRACT §3 "LeadAnalytics"): a call's `individual` one or a contact's
/// `complete` one.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct LeadAnalyticsView {
    /// `individual` or `complete`.
    pub analysis_type: String,
    /// The call analysed (individual rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub execution_id: Option<String>,
    /// That call's provider (individual rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    /// The latest call the analysis includes (complete rows only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub latest_execution_id: Option<String>,
    /// Owning user (tenant).
    pub user_id: Uuid,
    /// The contact's number, E.164.
    pub phone_number: Option<String>,
    /// 0 on individual rows; on complete rows, the contact's calls analysed.
    pub previous_calls_analyzed: i32,
    /// When the analysis was made.
    pub analysis_timestamp: DateTime<Utc>,
    /// The analysis fields (scores, labels, reasoning, extracted details, calls to action).
    #[serde(flatten)]
    pub analysis: LeadAnalysis,
    /// `openai` or `local`.
    pub analyzer: Analyzer,
    /// The model that answered (OpenAI only).
    pub model: Option<String>,
    /// The response's `usage.total_tokens`.
    pub tokens_used: Option<i64>,
}

/// A campaign (CONTRACT §6).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct CampaignView {
    /// Its id.
    pub campaign_id: Uuid,
    /// Its name.
    pub name: String,
    /// Provider batch ids whose calls it claims.
    pub provider_batch_ids: Vec<String>,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Calls attributed to it.
    pub calls: i64,
    /// Of those, the calls that connected (as `/v1/kpis` counts them).
    pub connected_calls: i64,
    /// Recipients uploaded.
    pub recipients: i64,
}
