//! The provider-neutral call event.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// Version of the normalized [`CallEvent`] shape stored in the log's `data` column.
pub const CALL_EVENT_SCHEMA_VERSION: i32 = 1;

pub use crate::providers::{Provider, UnknownProvider};

/// Direction of a call from the business's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LeadType {
    /// The contact called the agent.
    Inbound,
    /// The agent called the contact.
    Outbound,
}

impl LeadType {
    /// `inbound` or `outbound`.
    pub fn as_str(self) -> &'static str {
        match self {
            LeadType::Inbound => "inbound",
            LeadType::Outbound => "outbound",
        }
    }

    /// Parses `inbound` / `outbound` (trimmed, any case); anything else is `None`.
    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        if s.eq_ignore_ascii_case("inbound") {
            Some(LeadType::Inbound)
        } else if s.eq_ignore_ascii_case("outbound") {
            Some(LeadType::Outbound)
        } else {
            None
        }
    }
}

/// One webhook, normalized: what the projections need from any provider's payload.
///
/// Stored beside the raw payload in the event log (`data` column, version
/// [`CALL_EVENT_SCHEMA_VERSION`]) so a replay never re-parses provider JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CallEvent {
    /// Which provider sent it.
    pub provider: Provider,
    /// The provider's execution / call id (opaque string).
    pub execution_id: String,
    /// The lifecycle status this webhook reports, exactly as sent.
    pub status: LifecycleStatus,
    /// Event time: the payload's own timestamp, else the receive time.
    #[serde(serialize_with = "crate::timestamp::serialize")]
    pub occurred_at: DateTime<Utc>,
    /// When the provider says the call was created, if it says.
    #[serde(serialize_with = "crate::timestamp::serialize_option")]
    pub call_created_at: Option<DateTime<Utc>>,
    /// The provider's agent id.
    pub agent_id: Option<String>,
    /// The contact's number (callee for outbound, caller for inbound).
    pub phone_number: Option<PhoneNumber>,
    /// Call direction.
    pub lead_type: Option<LeadType>,
    /// Talk time in seconds as reported (e.g. 27.2); `None` when absent or null.
    pub conversation_seconds: Option<f64>,
    /// Who hung up (`Callee`, `Carrier`, …).
    pub hangup_by: Option<String>,
    /// Why the call ended.
    pub hangup_reason: Option<String>,
    /// Telephony provider's hangup code.
    pub hangup_provider_code: Option<i64>,
    /// Recording URL, once available.
    pub recording_url: Option<String>,
    /// Plain-text transcript, once available (empty strings are `None`).
    pub transcript: Option<String>,
    /// Contact's name when the provider passes one through (e.g. Bolna `context_details.recipient_data`).
    pub contact_name: Option<String>,
    /// Contact's company when the provider passes one through.
    pub contact_company: Option<String>,
    /// The batch the call was placed in (Bolna `batch_id`; for the others a `campaign_id` key
    /// in the call's own metadata, CONTRACT §6): attributes the call to the campaign that
    /// claims it. Absent in events recorded before it existed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub batch_id: Option<String>,
}
