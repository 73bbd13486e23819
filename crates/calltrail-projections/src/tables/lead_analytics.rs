//! The `lead_analytics` table: one row per call (`individual`) and per contact (`complete`),
//! upserted from the `analysis.*` events, a row only ever replaced by a later event.

use tokio_postgres::Transaction;

use crate::fold::{Changes, LeadAnalyticsRow};
use crate::Error;

/// Upserts the batch's `lead_analytics` rows; a row is only replaced by a later event.
pub(super) async fn write(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.lead_analytics.is_empty() {
        return Ok(());
    }
    let rows: Vec<&LeadAnalyticsRow> = changes.lead_analytics.values().collect();
    let rows = serde_json::to_value(rows).map_err(|source| Error::Encode {
        what: "lead analytics rows",
        source,
    })?;
    // Every column but the key (`user_id`, `analysis_type`, `key`, `provider`).
    let updated = crate::analytics::LEAD_COLUMNS
        .into_iter()
        .filter(|c| !matches!(*c, "user_id" | "analysis_type"))
        .chain(["position"]);
    let set = updated
        .map(|c| format!("{c} = EXCLUDED.{c}"))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "INSERT INTO {schema}.lead_analytics AS t
         SELECT * FROM jsonb_populate_recordset(NULL::{schema}.lead_analytics, $1::jsonb)
         ON CONFLICT (user_id, analysis_type, key, provider) DO UPDATE SET {set}
          WHERE t.position < EXCLUDED.position"
    );
    tx.execute(&sql, &[&rows]).await?;
    Ok(())
}
