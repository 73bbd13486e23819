//! Campaigns, their recipients and manual attributions as events (CONTRACT §6), and the rule
//! that attributes a call to a campaign.
//!
//! The events are calltrail's own (provider `calltrail`): the API writes them, the projector
//! folds them. Attribution itself is not an event: it is derived from these facts and the
//! call's own batch id and phone number by [`attribute`], so any order of the events gives
//! the same answer and a replay reproduces it.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

/// Version of every campaign event's `data`.
pub const CAMPAIGN_EVENT_SCHEMA_VERSION: i32 = 1;
/// `campaign.created` (stream id: the campaign id).
pub const CAMPAIGN_CREATED: &str = "campaign.created";
/// `campaign.renamed` (stream id: a fresh id per rename).
pub const CAMPAIGN_RENAMED: &str = "campaign.renamed";
/// `campaign.recipients_added` (stream id: a fresh id per chunk of an upload).
pub const RECIPIENTS_ADDED: &str = "campaign.recipients_added";
/// `attribution.set` (stream id: a fresh id, or one derived from the `Idempotency-Key`).
pub const ATTRIBUTION_SET: &str = "attribution.set";

/// `campaign.created`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignCreated {
    /// The new campaign.
    pub campaign_id: Uuid,
    /// Its name.
    pub name: String,
    /// Provider batch ids whose calls belong to it.
    #[serde(default)]
    pub provider_batch_ids: Vec<String>,
}

/// `campaign.renamed`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CampaignRenamed {
    /// The campaign.
    pub campaign_id: Uuid,
    /// Its new name.
    pub name: String,
}

/// One recipient of a campaign (phone in E.164).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Recipient {
    /// E.164.
    pub phone_number: String,
    /// Name, when the upload had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail address, when the upload had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Company, when the upload had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub company: Option<String>,
}

/// `campaign.recipients_added`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RecipientsAdded {
    /// The campaign.
    pub campaign_id: Uuid,
    /// The recipients (distinct phones).
    pub recipients: Vec<Recipient>,
}

/// A call named by an attribution: provider and the provider's call id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallRef {
    /// The provider (`bolna`, `vapi`, …).
    pub provider: String,
    /// The provider's call id.
    pub execution_id: String,
}

/// `attribution.set`: a manual attribution of calls (`campaign_id: null` clears it, so the
/// automatic rules apply again).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AttributionSet {
    /// The campaign, or `None` to clear.
    pub campaign_id: Option<Uuid>,
    /// The calls.
    pub calls: Vec<CallRef>,
}

/// How a call came to belong to its campaign (`calls.attribution`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Attribution {
    /// Its batch id is one a campaign claims.
    AutoBatch,
    /// Its phone is a recipient of exactly one campaign.
    AutoPhone,
    /// An operator said so.
    Manual,
}

impl Attribution {
    /// The column and JSON value.
    pub fn as_str(self) -> &'static str {
        match self {
            Attribution::AutoBatch => "auto_batch",
            Attribution::AutoPhone => "auto_phone",
            Attribution::Manual => "manual",
        }
    }
}

/// What attribution knows about one call.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct AttributionFacts {
    /// The latest manual attribution's campaign (`Some(None)`: cleared, `None`: never set).
    pub manual: Option<Option<Uuid>>,
    /// The campaign that claims the call's batch id.
    pub by_batch: Option<Uuid>,
    /// The only campaign whose recipients hold the call's phone (`None` when none or several).
    pub by_phone: Option<Uuid>,
}

/// The rule of CONTRACT §6: manual wins, then the batch id, then a phone that is a recipient
/// of exactly one campaign. The read tables apply the same rule in SQL
/// (`calltrail-projections/src/tables/attribution.rs`, tested against this function).
pub fn attribute(facts: AttributionFacts) -> Option<(Uuid, Attribution)> {
    if let Some(Some(campaign)) = facts.manual {
        return Some((campaign, Attribution::Manual));
    }
    facts
        .by_batch
        .map(|c| (c, Attribution::AutoBatch))
        .or(facts.by_phone.map(|c| (c, Attribution::AutoPhone)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manual_wins_then_batch_then_phone() {
        let [a, b, c] = [Uuid::from_u128(1), Uuid::from_u128(2), Uuid::from_u128(3)];
        let all = AttributionFacts {
            manual: Some(Some(a)),
            by_batch: Some(b),
            by_phone: Some(c),
        };
        assert_eq!(attribute(all), Some((a, Attribution::Manual)));
        let cleared = AttributionFacts {
            manual: Some(None),
            ..all
        };
        assert_eq!(attribute(cleared), Some((b, Attribution::AutoBatch)));
        let phone = AttributionFacts {
            by_batch: None,
            ..cleared
        };
        assert_eq!(attribute(phone), Some((c, Attribution::AutoPhone)));
        assert_eq!(attribute(AttributionFacts::default()), None);
    }

    #[test]
    fn events_round_trip_and_refuse_unknown_fields() {
        let set = AttributionSet {
            campaign_id: None,
            calls: vec![CallRef {
                provider: "bolna".into(),
                execution_id: "x".into(),
            }],
        };
        let text = serde_json::to_string(&set).unwrap_or_default();
        assert_eq!(
            serde_json::from_str::<AttributionSet>(&text).ok(),
            Some(set)
        );
        assert!(serde_json::from_str::<CampaignRenamed>(
            r#"{"campaign_id":"00000000-0000-0000-0000-000000000001","name":"a","x":1}"#
        )
        .is_err());
    }
}
