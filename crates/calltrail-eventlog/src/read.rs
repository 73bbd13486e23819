//! Gap-safe reads: events in `(txid, position)` order, only from transactions that no
//! running transaction can still precede (docs/EVENTLOG.md §1).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use uuid::Uuid;

use crate::{Error, EventLog};

/// A reader's position in the log: the `(txid, position)` pair of the last event consumed.
///
/// Never compare positions alone: a transaction that took its id earlier but its position
/// later would be skipped.
#[derive(
    Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize,
)]
pub struct Checkpoint {
    /// Writer transaction id (`xid8`) of the last event consumed.
    pub txid: i64,
    /// Position of the last event consumed.
    pub position: i64,
}

impl Checkpoint {
    /// Before the first event.
    pub const START: Checkpoint = Checkpoint {
        txid: 0,
        position: 0,
    };
}

/// An event as stored, without the raw provider payload (projections fold `data`).
#[derive(Debug, Clone, PartialEq)]
pub struct StoredEvent {
    /// Global append position.
    pub position: i64,
    /// Writer transaction id.
    pub txid: i64,
    /// Tenant (user) the event belongs to.
    pub tenant_id: Uuid,
    /// `bolna`, … or `calltrail` for events calltrail creates itself.
    pub provider: String,
    /// Execution id or other stream id.
    pub stream_id: String,
    /// Provider status or calltrail event type.
    pub event_type: String,
    /// Version of the `data` shape.
    pub schema_version: i32,
    /// Event time.
    pub occurred_at: DateTime<Utc>,
    /// Commit-side receive time.
    pub recorded_at: DateTime<Utc>,
    /// The normalized event as JSON text; empty when the event was read with its compact
    /// copy instead ([`StoredEvent::compact`]; [`EventLog::data_of`] reads it when needed).
    pub data: String,
    /// The compact copy of `data` (`crate::compact`), when the row has one.
    pub compact: Option<Vec<u8>>,
}

impl StoredEvent {
    /// This event's checkpoint: consuming it means resuming after this pair.
    pub fn checkpoint(&self) -> Checkpoint {
        Checkpoint {
            txid: self.txid,
            position: self.position,
        }
    }
}

const READ_AFTER: &str = "\
SELECT position, txid::text::bigint AS txid, tenant_id, provider, stream_id, event_type,
       schema_version, occurred_at, recorded_at, compact,
       CASE WHEN compact IS NULL THEN data::text ELSE '' END AS data
  FROM events
 WHERE (txid, position) > ($1::bigint::text::xid8, $2)
   AND txid < pg_snapshot_xmin(pg_current_snapshot())
 ORDER BY events.txid, events.position  -- the columns, not the bigint aliases: uses the index
 LIMIT $3";

impl EventLog {
    /// Up to `limit` events after `after`, in `(txid, position)` order, excluding anything a
    /// still-running transaction could yet commit before them.
    pub async fn read_after(
        &self,
        after: Checkpoint,
        limit: i64,
    ) -> Result<Vec<StoredEvent>, Error> {
        let rows = sqlx::query(READ_AFTER)
            .bind(after.txid)
            .bind(after.position)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        rows.iter().map(decode_event).collect()
    }

    /// The `data` of the events at these positions, as JSON text (for events read with a
    /// compact copy that turned out unusable).
    pub async fn data_of(&self, positions: &[i64]) -> Result<Vec<(i64, String)>, Error> {
        let rows =
            sqlx::query("SELECT position, data::text AS data FROM events WHERE position = ANY($1)")
                .bind(positions)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| Ok((r.try_get("position")?, r.try_get("data")?)))
            .collect()
    }

    /// The checkpoint of the last event a reader could see right now (the horizon a replay
    /// captures), or `None` for an empty log.
    pub async fn horizon(&self) -> Result<Option<Checkpoint>, Error> {
        let row = sqlx::query(
            "SELECT txid::text::bigint AS txid, position FROM events
              WHERE txid < pg_snapshot_xmin(pg_current_snapshot())
              ORDER BY events.txid DESC, events.position DESC LIMIT 1",
        )
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(Checkpoint {
                txid: r.try_get("txid")?,
                position: r.try_get("position")?,
            })
        })
        .transpose()
    }

    /// How many events a reader at `after` has not consumed yet (visible or not).
    pub async fn count_after(&self, after: Checkpoint) -> Result<i64, Error> {
        let n: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM events WHERE (txid, position) > ($1::bigint::text::xid8, $2)",
        )
        .bind(after.txid)
        .bind(after.position)
        .fetch_one(self.pool())
        .await?;
        Ok(n)
    }

    /// When the oldest event a reader at `after` has not consumed was recorded (lag in time).
    pub async fn oldest_recorded_after(
        &self,
        after: Checkpoint,
    ) -> Result<Option<DateTime<Utc>>, Error> {
        let oldest: Option<DateTime<Utc>> = sqlx::query_scalar(
            "SELECT min(recorded_at) FROM events WHERE (txid, position) > ($1::bigint::text::xid8, $2)",
        )
        .bind(after.txid)
        .bind(after.position)
        .fetch_one(self.pool())
        .await?;
        Ok(oldest)
    }

    /// Whether an event with this natural key exists (e.g. an analysis result already paid for).
    pub async fn exists(
        &self,
        tenant_id: Uuid,
        provider: &str,
        stream_id: &str,
        event_type: &str,
    ) -> Result<bool, Error> {
        let found: bool = sqlx::query_scalar(
            "SELECT EXISTS (SELECT 1 FROM events
                WHERE tenant_id = $1 AND provider = $2 AND stream_id = $3 AND event_type = $4)",
        )
        .bind(tenant_id)
        .bind(provider)
        .bind(stream_id)
        .bind(event_type)
        .fetch_one(self.pool())
        .await?;
        Ok(found)
    }

    /// Age of the oldest transaction that currently holds gap-safe readers back, if any.
    pub async fn blocking_transaction_age(&self) -> Result<Option<std::time::Duration>, Error> {
        let seconds: Option<f64> = sqlx::query_scalar(
            "SELECT EXTRACT(EPOCH FROM now() - min(xact_start))::float8
               FROM pg_stat_activity
              WHERE backend_xid IS NOT NULL AND datname = current_database()",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(seconds.map(|s| std::time::Duration::from_secs_f64(s.max(0.0))))
    }
}

fn decode_event(row: &sqlx::postgres::PgRow) -> Result<StoredEvent, Error> {
    Ok(StoredEvent {
        position: row.try_get("position")?,
        txid: row.try_get("txid")?,
        tenant_id: row.try_get("tenant_id")?,
        provider: row.try_get("provider")?,
        stream_id: row.try_get("stream_id")?,
        event_type: row.try_get("event_type")?,
        schema_version: row.try_get("schema_version")?,
        occurred_at: row.try_get("occurred_at")?,
        recorded_at: row.try_get("recorded_at")?,
        data: row.try_get("data")?,
        compact: row.try_get("compact")?,
    })
}
