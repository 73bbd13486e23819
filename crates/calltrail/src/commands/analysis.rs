//! `calltrail analysis …`: the lead-analysis job queue. Each command prints one JSON object.

use anyhow::Context;
use calltrail_projections::ReadStore;
use serde_json::json;

use crate::cli::AnalysisCommand;
use crate::commands::print_json;

/// Runs one analysis command.
pub async fn run(url: &str, command: AnalysisCommand) -> anyhow::Result<()> {
    let store = ReadStore::connect(url, 2)?;
    match command {
        AnalysisCommand::Status { errors } => {
            let status = store
                .analysis_jobs()
                .status(errors)
                .await
                .context("could not read the analysis queue")?;
            print_json(&status);
        }
        AnalysisCommand::Retry { execution_id, all } => {
            let requeued = store
                .analysis_jobs()
                .requeue(execution_id.as_deref(), all)
                .await
                .context("could not re-queue the analyses")?;
            print_json(&json!({ "requeued": requeued }));
        }
    }
    Ok(())
}
