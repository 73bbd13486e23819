//! Conflicting re-deliveries: a webhook under a recorded key with a different body is answered
//! as a duplicate and kept in `event_conflicts`, with the top-level fields that differ.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::{Error, EventLog};

/// A conflicting re-delivery, as `calltrail admin conflicts` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ConflictRow {
    /// When the re-delivery arrived.
    pub received_at: DateTime<Utc>,
    /// The recorded event's tenant.
    pub tenant_id: Option<Uuid>,
    /// Its provider.
    pub provider: Option<String>,
    /// Its call (execution id).
    pub execution_id: Option<String>,
    /// Its type (the provider status).
    pub event_type: String,
    /// Its log position.
    pub position: i64,
    /// The top-level payload fields whose values differ from the recorded event's.
    pub fields: Vec<String>,
}

impl EventLog {
    /// The most recent conflicting re-deliveries, newest first.
    pub async fn recent_conflicts(&self, limit: i64) -> Result<Vec<ConflictRow>, Error> {
        let rows = sqlx::query(
            "SELECT c.received_at, c.tenant_id, c.provider, c.stream_id, e.event_type,
                    c.event_position, c.fields
               FROM event_conflicts c JOIN events e ON e.position = c.event_position
              WHERE c.metadata ->> 'after_reconciliation' IS NULL
              ORDER BY c.id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(ConflictRow {
                    received_at: row.try_get("received_at")?,
                    tenant_id: row.try_get("tenant_id")?,
                    provider: row.try_get("provider")?,
                    execution_id: row.try_get("stream_id")?,
                    event_type: row.try_get("event_type")?,
                    position: row.try_get("event_position")?,
                    fields: row.try_get("fields")?,
                })
            })
            .collect()
    }

    /// The differing fields of the latest conflicting re-delivery of the event at `position`
    /// (empty when there is none).
    pub async fn conflict_fields(&self, position: i64) -> Result<Vec<String>, Error> {
        let fields: Option<Vec<String>> = sqlx::query_scalar(
            "SELECT fields FROM event_conflicts WHERE event_position = $1 ORDER BY id DESC LIMIT 1",
        )
        .bind(position)
        .fetch_optional(self.pool())
        .await?;
        Ok(fields.unwrap_or_default())
    }
}
