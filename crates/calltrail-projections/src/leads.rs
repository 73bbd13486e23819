//! Lead reads per contact: the current tag and score of a page of contacts, and a contact's
//! score history (one point per analysed call). Every query is scoped to one tenant.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use serde::Serialize;
use uuid::Uuid;

use crate::{Error, ReadStore};

/// Most points [`ReadStore::score_history`] returns (the newest ones).
pub const MAX_SCORE_POINTS: i64 = 200;

/// A contact's current lead standing: its complete analysis's tag and score.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct LeadStanding {
    /// `Hot`, `Warm` or `Cold`.
    pub lead_status_tag: String,
    /// Overall score, 0–100.
    pub total_score: i32,
    /// Calls the complete analysis covers.
    pub previous_calls_analyzed: i32,
}

/// One analysed call of a contact: its individual analysis's score and tag.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct ScorePoint {
    /// The call analysed.
    pub execution_id: String,
    /// The analysed call's provider.
    pub provider: String,
    /// When the analysis was made.
    pub analysis_timestamp: DateTime<Utc>,
    /// Overall score, 0–100.
    pub total_score: i32,
    /// `Hot`, `Warm` or `Cold`.
    pub lead_status_tag: String,
}

impl ReadStore {
    /// The lead standing of each of `phones` (E.164) that has a complete analysis.
    pub async fn lead_standings(
        &self,
        tenant: Uuid,
        phones: &[String],
    ) -> Result<HashMap<String, LeadStanding>, Error> {
        if phones.is_empty() {
            return Ok(HashMap::new());
        }
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT key, lead_status_tag, total_score, previous_calls_analyzed
                   FROM lead_analytics
                  WHERE user_id = $1 AND analysis_type = 'complete' AND key = ANY($2)",
                &[&tenant, &phones],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok((
                    r.try_get("key")?,
                    LeadStanding {
                        lead_status_tag: r.try_get("lead_status_tag")?,
                        total_score: r.try_get("total_score")?,
                        previous_calls_analyzed: r.try_get("previous_calls_analyzed")?,
                    },
                ))
            })
            .collect()
    }

    /// A contact's score history, oldest first: the individual analyses of the calls to
    /// `phone` (E.164), at most the newest [`MAX_SCORE_POINTS`].
    pub async fn score_history(&self, tenant: Uuid, phone: &str) -> Result<Vec<ScorePoint>, Error> {
        let client = self.client().await?;
        // Through the calls of the phone (index on user_id, phone_number), then each call's
        // analysis by primary key: no scan of the tenant's analyses.
        let rows = client
            .query(
                "SELECT la.execution_id, la.provider, la.analysis_timestamp, la.total_score,
                        la.lead_status_tag
                   FROM calls c
                   JOIN lead_analytics la
                     ON la.user_id = c.user_id AND la.analysis_type = 'individual'
                    AND la.key = c.execution_id AND la.provider = c.provider
                  WHERE c.user_id = $1 AND c.phone_number = $2
                  ORDER BY la.analysis_timestamp DESC, la.execution_id DESC
                  LIMIT $3",
                &[&tenant, &phone, &MAX_SCORE_POINTS],
            )
            .await?;
        let mut points = rows
            .iter()
            .map(|r| {
                Ok(ScorePoint {
                    execution_id: r.try_get("execution_id")?,
                    provider: r.try_get("provider")?,
                    analysis_timestamp: r.try_get("analysis_timestamp")?,
                    total_score: r.try_get("total_score")?,
                    lead_status_tag: r.try_get("lead_status_tag")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        points.reverse();
        Ok(points)
    }
}
