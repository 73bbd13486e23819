//! Key lookups in the log: whether an event exists, and which provider streams carry some ids.
//! The log answers at once, where a read table would wait for the projector (a campaign
//! created a moment ago already takes recipients; a call posted a moment ago can already be
//! attributed).

use sqlx::Row;
use uuid::Uuid;

use crate::{Error, EventLog};

impl EventLog {
    /// Whether `tenant_id` has the event with this natural key.
    pub async fn has_event(
        &self,
        tenant_id: Uuid,
        provider: &str,
        stream_id: &str,
        event_type: &str,
    ) -> Result<bool, Error> {
        let row = sqlx::query(
            "SELECT EXISTS (SELECT 1 FROM events
                             WHERE tenant_id = $1 AND provider = $2 AND stream_id = $3
                               AND event_type = $4)",
        )
        .bind(tenant_id)
        .bind(provider)
        .bind(stream_id)
        .bind(event_type)
        .fetch_one(self.pool())
        .await?;
        Ok(row.try_get(0)?)
    }

    /// The `(provider, stream id)` pairs of `tenant_id`'s events among `providers` whose stream
    /// id is one of `stream_ids`, sorted.
    pub async fn streams(
        &self,
        tenant_id: Uuid,
        providers: &[&str],
        stream_ids: &[String],
    ) -> Result<Vec<(String, String)>, Error> {
        if stream_ids.is_empty() || providers.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT DISTINCT provider, stream_id FROM events
              WHERE tenant_id = $1 AND provider = ANY($2) AND stream_id = ANY($3)
              ORDER BY provider, stream_id",
        )
        .bind(tenant_id)
        .bind(providers)
        .bind(stream_ids)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| Ok((row.try_get(0)?, row.try_get(1)?)))
            .collect()
    }
}
