//! The `transcripts` table: upserting changed transcripts and their analysis status. Prior
//! transcripts are loaded with their calls (`super::calls::load`).

use tokio_postgres::Transaction;

use crate::fold::Changes;
use crate::Error;

/// Upserts the transcripts of `changes`.
pub(super) async fn write(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.transcripts.is_empty() {
        return Ok(());
    }
    let mut user_id = Vec::new();
    let mut provider = Vec::new();
    let mut execution_id = Vec::new();
    let mut content = Vec::new();
    let mut created_at = Vec::new();
    let mut status = Vec::new();
    let mut error = Vec::new();
    for ((user, call_provider, execution), transcript) in &changes.transcripts {
        user_id.push(*user);
        provider.push(call_provider.as_str());
        execution_id.push(execution.as_str());
        content.push(transcript.content.as_str());
        created_at.push(transcript.created_at);
        status.push(transcript.analysis.status.as_str());
        error.push(transcript.analysis.error.as_deref());
    }
    // A changed transcript keeps its analysis state: a call gets exactly one analysis. Only an
    // analysis result (completed/failed) replaces the status of an existing row; `pending` and
    // the live-only `processing` are the job queue's to set there.
    let sql = format!(
        "INSERT INTO {schema}.transcripts AS t
                (user_id, execution_id, content, created_at, updated_at, analysis_status,
                 analysis_error, provider)
         SELECT u.user_id, u.execution_id, u.content, u.created_at, now(), u.status, u.error,
                u.provider
           FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                       $6::text[], $7::text[])
             AS u(user_id, execution_id, content, created_at, status, error, provider)
         ON CONFLICT (user_id, execution_id, provider) DO UPDATE SET
                content = EXCLUDED.content, updated_at = EXCLUDED.updated_at,
                analysis_status = CASE WHEN EXCLUDED.analysis_status IN ('completed', 'failed')
                                       THEN EXCLUDED.analysis_status ELSE t.analysis_status END,
                analysis_error = CASE WHEN EXCLUDED.analysis_status IN ('completed', 'failed')
                                      THEN EXCLUDED.analysis_error ELSE t.analysis_error END"
    );
    tx.execute(
        &sql,
        &[
            &user_id,
            &execution_id,
            &content,
            &created_at,
            &status,
            &error,
            &provider,
        ],
    )
    .await?;
    Ok(())
}
