//! Raw payloads as received: what the web console's call page shows under "raw payloads".
//! Read by position (a call's timeline knows the positions of its events), scoped to a tenant.

use chrono::{DateTime, Utc};
use sqlx::Row;
use uuid::Uuid;

use crate::{Error, EventLog};

/// One stored event's raw provider payload.
#[derive(Debug, Clone, PartialEq)]
pub struct EventPayload {
    /// Global append position.
    pub position: i64,
    /// `bolna`, … or `calltrail` for events calltrail creates itself.
    pub provider: String,
    /// Provider status or calltrail event type.
    pub event_type: String,
    /// Event time.
    pub occurred_at: DateTime<Utc>,
    /// The payload as indented JSON text (`None` for events calltrail creates itself). Stored
    /// as `jsonb`, so keys come back in PostgreSQL's order, not the provider's.
    pub payload: Option<String>,
}

impl EventLog {
    /// The payloads of the events at `positions` that belong to `tenant_id`, by position.
    /// Positions of another tenant's events are silently absent.
    pub async fn payloads(
        &self,
        tenant_id: Uuid,
        positions: &[i64],
    ) -> Result<Vec<EventPayload>, Error> {
        if positions.is_empty() {
            return Ok(Vec::new());
        }
        let rows = sqlx::query(
            "SELECT position, provider, event_type, occurred_at, jsonb_pretty(payload) AS payload
               FROM events
              WHERE position = ANY($1) AND tenant_id = $2
              ORDER BY position",
        )
        .bind(positions)
        .bind(tenant_id)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(EventPayload {
                    position: row.try_get("position")?,
                    provider: row.try_get("provider")?,
                    event_type: row.try_get("event_type")?,
                    occurred_at: row.try_get("occurred_at")?,
                    payload: row.try_get("payload")?,
                })
            })
            .collect()
    }
}
