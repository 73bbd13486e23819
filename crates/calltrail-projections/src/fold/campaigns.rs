//! Folding `campaign.*` and `attribution.set` events: the campaign, batch, recipient and
//! manual-attribution rows they write, and the calls whose attribution they may change.
//!
//! Nothing here decides an attribution: each call's is derived from the stored facts after
//! the batch is written (`tables/attribution.rs`, the rule of
//! `calltrail_core::campaign::attribute`), so the order of these events and the calls' never
//! matters.

use calltrail_eventlog::StoredEvent;

use super::decode::CampaignDecoded;
use super::model::{CampaignName, Changes, ManualAttribution, RecipientRow};

/// Records the rows a campaign event writes and the calls it may re-attribute.
pub(super) fn fold_campaign(changes: &mut Changes, event: &StoredEvent, decoded: &CampaignDecoded) {
    let user_id = event.tenant_id;
    let rows = &mut changes.campaigns;
    let scope = &mut changes.attribution;
    match decoded {
        CampaignDecoded::Created(created) => {
            rows.names.push(CampaignName {
                user_id,
                campaign_id: created.campaign_id,
                name: created.name.clone(),
                created_at: Some(event.occurred_at),
                position: event.position,
            });
            for batch in &created.provider_batch_ids {
                rows.batches
                    .push((user_id, batch.clone(), created.campaign_id, event.position));
                scope.batches.insert((user_id, batch.clone()));
            }
        }
        CampaignDecoded::Renamed(renamed) => rows.names.push(CampaignName {
            user_id,
            campaign_id: renamed.campaign_id,
            name: renamed.name.clone(),
            created_at: None,
            position: event.position,
        }),
        CampaignDecoded::RecipientsAdded(added) => {
            for recipient in &added.recipients {
                scope
                    .phones
                    .insert((user_id, recipient.phone_number.clone()));
                rows.recipients.push(RecipientRow {
                    user_id,
                    campaign_id: added.campaign_id,
                    recipient: recipient.clone(),
                    position: event.position,
                });
            }
        }
        CampaignDecoded::AttributionSet(set) => {
            for call in &set.calls {
                scope
                    .calls
                    .insert((user_id, call.provider.clone(), call.execution_id.clone()));
                rows.attributions.push(ManualAttribution {
                    user_id,
                    call: call.clone(),
                    campaign_id: set.campaign_id,
                    position: event.position,
                });
            }
        }
    }
}
