//! The `dead_letters` table: events the fold could not read, kept with the reason.

use tokio_postgres::Transaction;

use crate::fold::Changes;
use crate::Error;

/// Dead letters always go to `public.dead_letters` (replay does not swap it), once per event.
pub(super) async fn write(
    tx: &Transaction<'_>,
    projector: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.dead_letters.is_empty() {
        return Ok(());
    }
    for dead in &changes.dead_letters {
        tracing::warn!(
            projector,
            position = dead.position,
            event_type = %dead.event_type,
            execution_id = %dead.stream_id,
            error = %dead.error,
            "event cannot be folded; recorded as a dead letter"
        );
    }
    let position: Vec<i64> = changes.dead_letters.iter().map(|d| d.position).collect();
    let txid: Vec<i64> = changes.dead_letters.iter().map(|d| d.txid).collect();
    let event_type: Vec<&str> = changes
        .dead_letters
        .iter()
        .map(|d| d.event_type.as_str())
        .collect();
    let stream_id: Vec<&str> = changes
        .dead_letters
        .iter()
        .map(|d| d.stream_id.as_str())
        .collect();
    let error: Vec<&str> = changes
        .dead_letters
        .iter()
        .map(|d| d.error.as_str())
        .collect();
    tx.execute(
        "INSERT INTO public.dead_letters (projector, position, txid, event_type, stream_id, error)
         SELECT $1::text, * FROM unnest($2::int8[], $3::int8[], $4::text[], $5::text[], $6::text[])
         ON CONFLICT (projector, position) DO NOTHING",
        &[
            &projector,
            &position,
            &txid,
            &event_type,
            &stream_id,
            &error,
        ],
    )
    .await?;
    Ok(())
}
