//! Read queries for campaigns (CONTRACT §6): the list and one campaign with their counts, the
//! names alone (the console's pickers), the batch ids other campaigns claim, and which phones
//! a campaign already has.

use std::collections::HashSet;

use tokio_postgres::Row;
use uuid::Uuid;

use crate::queries::{encode_cursor, next_page, List};
use crate::views::{CampaignView, Page};
use crate::{Error, ReadStore};

/// A campaign's columns and counts (`connected` as `kpis.rs` defines it), `c` its row.
const CAMPAIGN_SELECT: &str = "SELECT c.campaign_id, c.name, c.created_at,
        ARRAY(SELECT b.batch_id FROM campaign_batches b
               WHERE b.user_id = c.user_id AND b.campaign_id = c.campaign_id
               ORDER BY b.batch_id) AS batch_ids,
        (SELECT count(*) FROM calls k WHERE k.user_id = c.user_id
            AND k.campaign_id = c.campaign_id) AS calls,
        (SELECT count(*) FROM calls k WHERE k.user_id = c.user_id
            AND k.campaign_id = c.campaign_id
            AND (k.call_answered_at IS NOT NULL OR k.call_disconnected_at IS NOT NULL
                 OR k.duration_seconds > 0)) AS connected,
        (SELECT count(*) FROM campaign_recipients r WHERE r.user_id = c.user_id
            AND r.campaign_id = c.campaign_id) AS recipients
   FROM campaigns c";

impl ReadStore {
    /// The tenant's campaigns, newest first, keyset-paginated.
    pub async fn list_campaigns(
        &self,
        tenant: Uuid,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<CampaignView>, Error> {
        let limit = limit.clamp(1, 1000);
        let rows = self
            .newest_first(
                CAMPAIGN_SELECT,
                ["c.user_id", "c.created_at", "c.campaign_id"],
                tenant,
                (List::Campaigns, cursor),
                limit + 1,
            )
            .await?;
        let mut items = rows
            .iter()
            .map(campaign_view)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = next_page(&mut items, limit, |c| {
            encode_cursor(List::Campaigns, c.created_at, &c.campaign_id.to_string())
        });
        Ok(Page { items, next_cursor })
    }

    /// The ids and names of the tenant's newest `limit` campaigns (1–1000), newest first,
    /// without their counts: what a picker or a list of calls needs, cheap at any size.
    pub async fn campaign_names(
        &self,
        tenant: Uuid,
        limit: i64,
    ) -> Result<Vec<(Uuid, String)>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT campaign_id, name FROM campaigns WHERE user_id = $1
                  ORDER BY created_at DESC, campaign_id DESC LIMIT $2",
                &[&tenant, &limit.clamp(1, 1000)],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// One campaign of the tenant.
    pub async fn get_campaign(
        &self,
        tenant: Uuid,
        campaign_id: Uuid,
    ) -> Result<Option<CampaignView>, Error> {
        let client = self.client().await?;
        let sql = format!("{CAMPAIGN_SELECT} WHERE c.user_id = $1 AND c.campaign_id = $2");
        let row = client.query_opt(&sql, &[&tenant, &campaign_id]).await?;
        row.as_ref().map(campaign_view).transpose()
    }

    /// Which of `batch_ids` a campaign of the tenant already claims: `(batch id, campaign)`.
    pub async fn claimed_batches(
        &self,
        tenant: Uuid,
        batch_ids: &[String],
    ) -> Result<Vec<(String, Uuid)>, Error> {
        if batch_ids.is_empty() {
            return Ok(Vec::new());
        }
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT batch_id, campaign_id FROM campaign_batches
                  WHERE user_id = $1 AND batch_id = ANY($2) ORDER BY batch_id",
                &[&tenant, &batch_ids],
            )
            .await?;
        rows.iter()
            .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
            .collect()
    }

    /// Which of `phones` are already recipients of the campaign.
    pub async fn existing_recipients(
        &self,
        tenant: Uuid,
        campaign_id: Uuid,
        phones: &[&str],
    ) -> Result<HashSet<String>, Error> {
        if phones.is_empty() {
            return Ok(HashSet::new());
        }
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT phone_number FROM campaign_recipients
                  WHERE user_id = $1 AND campaign_id = $2 AND phone_number = ANY($3)",
                &[&tenant, &campaign_id, &phones],
            )
            .await?;
        rows.iter().map(|r| Ok(r.try_get(0)?)).collect()
    }
}

fn campaign_view(r: &Row) -> Result<CampaignView, Error> {
    Ok(CampaignView {
        campaign_id: r.try_get(0)?,
        name: r.try_get(1)?,
        created_at: r.try_get(2)?,
        provider_batch_ids: r.try_get(3)?,
        calls: r.try_get(4)?,
        connected_calls: r.try_get(5)?,
        recipients: r.try_get(6)?,
    })
}
