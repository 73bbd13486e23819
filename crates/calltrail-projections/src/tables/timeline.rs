//! The timeline table (`call_events`): one row per event of a known call, append-only.

use std::pin::pin;

use tokio_postgres::binary_copy::BinaryCopyInWriter;
use tokio_postgres::types::Type;
use tokio_postgres::Transaction;

use crate::fold::Changes;
use crate::Error;

/// Timeline rows go in by binary `COPY`: the cheapest way into PostgreSQL, and one event's
/// row is one row, so there is nothing to upsert.
pub(super) async fn write(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.timeline.is_empty() {
        return Ok(());
    }
    let sink = tx
        .copy_in(&format!(
            "COPY {schema}.call_events
                  (user_id, provider, execution_id, event_type, occurred_at, recorded_at,
                   position)
             FROM STDIN (FORMAT binary)"
        ))
        .await?;
    let types = [
        Type::UUID,
        Type::TEXT,
        Type::TEXT,
        Type::TEXT,
        Type::TIMESTAMPTZ,
        Type::TIMESTAMPTZ,
        Type::INT8,
    ];
    let mut writer = pin!(BinaryCopyInWriter::new(sink, &types));
    for row in &changes.timeline {
        writer
            .as_mut()
            .write(&[
                &row.user_id,
                &row.provider,
                &row.execution_id,
                &row.event_type,
                &row.occurred_at,
                &row.recorded_at,
                &row.position,
            ])
            .await?;
    }
    writer.finish().await?;
    Ok(())
}
