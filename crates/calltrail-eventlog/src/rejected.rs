//! The rejected-webhook log: every refused request is kept with its reason and body.

use chrono::{DateTime, Utc};
use serde::Serialize;
use sqlx::Row;
use uuid::Uuid;

use crate::{Error, EventLog};

/// A refused webhook request, as received.
#[derive(Debug, Clone)]
pub struct RejectedWebhook {
    /// Provider named in the URL.
    pub provider: String,
    /// The tenant, when the token was valid.
    pub tenant_id: Option<Uuid>,
    /// Why it was refused, in a sentence.
    pub reason: String,
    /// The error code answered (`invalid_signature`, …).
    pub code: String,
    /// The HTTP status answered.
    pub status_code: u16,
    /// Request headers, secrets already removed.
    pub headers: serde_json::Value,
    /// The body bytes exactly as received (possibly truncated at the body limit).
    pub body: Vec<u8>,
}

/// A row of the rejected log, as `calltrail admin rejected` prints it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RejectedWebhookRow {
    /// When it arrived.
    pub received_at: DateTime<Utc>,
    /// Provider named in the URL.
    pub provider: String,
    /// Why it was refused.
    pub reason: String,
    /// The error code answered (`null` for rows kept before codes were).
    pub code: Option<String>,
    /// The HTTP status answered.
    pub status_code: i32,
    /// Size of the stored body in bytes.
    pub body_bytes: i64,
}

impl EventLog {
    /// Keeps a refused request.
    pub async fn record_rejected(&self, rejected: &RejectedWebhook) -> Result<(), Error> {
        sqlx::query(
            "INSERT INTO rejected_webhooks
                    (provider, tenant_id, reason, code, status_code, headers, body)
             VALUES ($1, $2, $3, $4, $5, $6, $7)",
        )
        .bind(&rejected.provider)
        .bind(rejected.tenant_id)
        .bind(&rejected.reason)
        .bind(&rejected.code)
        .bind(i32::from(rejected.status_code))
        .bind(&rejected.headers)
        .bind(&rejected.body)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// The most recent refused requests, newest first.
    pub async fn recent_rejected(&self, limit: i64) -> Result<Vec<RejectedWebhookRow>, Error> {
        let rows = sqlx::query(
            "SELECT received_at, provider, reason, code, status_code,
                    octet_length(body)::bigint AS body_bytes
               FROM rejected_webhooks ORDER BY received_at DESC, id DESC LIMIT $1",
        )
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RejectedWebhookRow {
                    received_at: row.try_get("received_at")?,
                    provider: row.try_get("provider")?,
                    reason: row.try_get("reason")?,
                    code: row.try_get("code")?,
                    status_code: row.try_get("status_code")?,
                    body_bytes: row.try_get("body_bytes")?,
                })
            })
            .collect()
    }
}
