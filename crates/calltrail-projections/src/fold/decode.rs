//! Reading an event's `data` for folding: call events, credit grants and `analysis.*` results;
//! anything that cannot be read says why (it becomes a dead letter).

use calltrail_core::analysis::{
    parse_analysis_event_type, AnalysisFailed, AnalysisRecorded, ANALYSIS_EVENT_SCHEMA_VERSION,
    ANALYSIS_FAILED,
};
use calltrail_core::campaign::{
    AttributionSet, CampaignCreated, CampaignRenamed, RecipientsAdded, ATTRIBUTION_SET,
    CAMPAIGN_CREATED, CAMPAIGN_EVENT_SCHEMA_VERSION, CAMPAIGN_RENAMED, RECIPIENTS_ADDED,
};
use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::CallEvent;
use calltrail_eventlog::StoredEvent;

/// Provider name of events calltrail creates itself.
pub const CALLTRAIL_PROVIDER: &str = "calltrail";
/// Event type of a credit grant (`data = {"amount": N}`, N > 0).
pub const CREDITS_GRANTED: &str = "credits.granted";

/// Event type of a credit adjustment (`data = {"amount": N, "reason": "…"}`, N ≠ 0, either
/// sign): `calltrail admin adjust-credits`.
pub const CREDITS_ADJUSTED: &str = "credits.adjusted";

/// An event decoded for folding.
#[derive(Debug, Clone, PartialEq)]
pub enum Decoded {
    /// A provider webhook, normalized.
    Call(Box<CallEvent>),
    /// `credits.granted`: a positive amount.
    Grant {
        /// Credits granted (> 0).
        amount: i64,
    },
    /// `credits.adjusted`: a signed amount.
    Adjustment {
        /// Credits added (> 0) or taken (< 0).
        amount: i64,
    },
    /// `analysis.individual`, `analysis.complete` or `analysis.failed`.
    Analysis(Box<AnalysisDecoded>),
    /// `campaign.*` and `attribution.set`.
    Campaign(Box<CampaignDecoded>),
    /// Any other event: only recorded in the timeline of a known call.
    Other,
}

/// A decoded campaign or attribution event.
#[derive(Debug, Clone, PartialEq)]
pub enum CampaignDecoded {
    /// `campaign.created`.
    Created(CampaignCreated),
    /// `campaign.renamed`.
    Renamed(CampaignRenamed),
    /// `campaign.recipients_added`.
    RecipientsAdded(RecipientsAdded),
    /// `attribution.set`.
    AttributionSet(AttributionSet),
}

/// A decoded `analysis.*` event.
#[derive(Debug, Clone, PartialEq)]
#[allow(clippy::large_enum_variant)] // always boxed, in `Decoded::Analysis`
pub enum AnalysisDecoded {
    /// `analysis.individual` or `analysis.complete`.
    Recorded(AnalysisRecorded),
    /// `analysis.failed`.
    Failed(AnalysisFailed),
}

/// A batch's events paired with their decoding.
pub type DecodedBatch<'a> = Vec<(&'a StoredEvent, Result<Decoded, String>)>;

/// Decodes a batch.
pub fn decode_batch(events: &[StoredEvent]) -> DecodedBatch<'_> {
    events.iter().map(|e| (e, decode(e))).collect()
}

/// Decodes an event's `data`; the error says why it cannot be folded (it becomes a dead letter).
pub fn decode(event: &StoredEvent) -> Result<Decoded, String> {
    if event.provider == CALLTRAIL_PROVIDER && event.event_type == CREDITS_GRANTED {
        #[derive(serde::Deserialize)]
        struct Grant {
            amount: i64,
        }
        let grant: Grant = serde_json::from_str(&event.data)
            .map_err(|e| format!("credit grant data is not {{\"amount\": N}}: {e}"))?;
        if grant.amount <= 0 {
            return Err(format!(
                "credit grant amount must be positive, got {}",
                grant.amount
            ));
        }
        return Ok(Decoded::Grant {
            amount: grant.amount,
        });
    }
    if event.provider == CALLTRAIL_PROVIDER && event.event_type == CREDITS_ADJUSTED {
        #[derive(serde::Deserialize)]
        struct Adjustment {
            amount: i64,
        }
        let adjustment: Adjustment = serde_json::from_str(&event.data).map_err(|e| {
            format!("credit adjustment data is not {{\"amount\": N, \"reason\": …}}: {e}")
        })?;
        if adjustment.amount == 0 {
            return Err("credit adjustment amount must not be 0".to_owned());
        }
        return Ok(Decoded::Adjustment {
            amount: adjustment.amount,
        });
    }
    if let Some(analysis) = decode_analysis(event) {
        return analysis;
    }
    if event.provider == CALLTRAIL_PROVIDER {
        if let Some(campaign) = decode_campaign(event) {
            return campaign;
        }
    }
    if event.provider == CALLTRAIL_PROVIDER || event.event_type.starts_with("analysis.") {
        return Ok(Decoded::Other);
    }
    if event.schema_version != CALL_EVENT_SCHEMA_VERSION {
        return Err(format!(
            "unsupported call event schema_version {} (this build reads {CALL_EVENT_SCHEMA_VERSION})",
            event.schema_version
        ));
    }
    let call: CallEvent = serde_json::from_str(&event.data)
        .map_err(|e| format!("call event data cannot be decoded: {e}"))?;
    Ok(Decoded::Call(Box::new(call)))
}

/// Decodes an `analysis.individual`/`complete`/`failed` event; `None` for any other type.
fn decode_analysis(event: &StoredEvent) -> Option<Result<Decoded, String>> {
    // A re-run's `.vN` types decode like the first run's.
    let (base, _version) = parse_analysis_event_type(&event.event_type)?;
    let failed = base == ANALYSIS_FAILED;
    if event.schema_version != ANALYSIS_EVENT_SCHEMA_VERSION {
        return Some(Err(format!(
            "unsupported {} schema_version {} (this build reads {ANALYSIS_EVENT_SCHEMA_VERSION})",
            event.event_type, event.schema_version
        )));
    }
    let decoded = if failed {
        serde_json::from_str(&event.data)
            .map(AnalysisDecoded::Failed)
            .map_err(|e| format!("analysis.failed data cannot be decoded: {e}"))
    } else {
        serde_json::from_str::<AnalysisRecorded>(&event.data)
            .map_err(|e| format!("{} data cannot be decoded: {e}", event.event_type))
            .and_then(|r| {
                if calltrail_core::analysis::recorded_event_type(r.kind) == base {
                    Ok(AnalysisDecoded::Recorded(r))
                } else {
                    Err(format!(
                        "{} data has kind {}",
                        event.event_type,
                        r.kind.as_str()
                    ))
                }
            })
    };
    Some(decoded.map(|d| Decoded::Analysis(Box::new(d))))
}

/// Decodes a `campaign.*` or `attribution.set` event; `None` for any other type.
fn decode_campaign(event: &StoredEvent) -> Option<Result<Decoded, String>> {
    fn read<T: serde::de::DeserializeOwned>(
        event: &StoredEvent,
        wrap: fn(T) -> CampaignDecoded,
    ) -> Result<CampaignDecoded, String> {
        serde_json::from_str(&event.data)
            .map(wrap)
            .map_err(|e| format!("{} data cannot be decoded: {e}", event.event_type))
    }
    let decoded = match event.event_type.as_str() {
        CAMPAIGN_CREATED => read(event, CampaignDecoded::Created),
        CAMPAIGN_RENAMED => read(event, CampaignDecoded::Renamed),
        RECIPIENTS_ADDED => read(event, CampaignDecoded::RecipientsAdded),
        ATTRIBUTION_SET => read(event, CampaignDecoded::AttributionSet),
        _ => return None,
    };
    if event.schema_version != CAMPAIGN_EVENT_SCHEMA_VERSION {
        return Some(Err(format!(
            "unsupported {} schema_version {} (this build reads {CAMPAIGN_EVENT_SCHEMA_VERSION})",
            event.event_type, event.schema_version
        )));
    }
    Some(decoded.map(|d| Decoded::Campaign(Box::new(d))))
}
