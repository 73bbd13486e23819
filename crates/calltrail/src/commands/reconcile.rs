//! `calltrail reconcile`: one reconciliation run now (CONTRACT §6), under the same lease as
//! serve's periodic task, printing `{"checked","appended","unchanged","errors"}` and then one
//! line per provider `{"provider",…}`.

use std::time::Duration;

use anyhow::Context;
use calltrail_eventlog::{AppenderConfig, ConnectOptions, EventLog};
use calltrail_projections::ReadStore;
use calltrail_reconcile::{Reconciler, RunOptions};
use serde_json::json;

use crate::cli::ReconcileArgs;
use crate::commands::print_json;
use crate::config::secrets_key;
use crate::reconcile::{self, DbReconcileStore, Skipped};

/// Runs `calltrail reconcile`.
pub async fn run(url: &str, args: ReconcileArgs) -> anyhow::Result<()> {
    let log = EventLog::connect(
        url,
        &ConnectOptions {
            max_connections: 2,
            ..ConnectOptions::default()
        },
    )?;
    let store = ReadStore::connect(url, 2)?;
    let key = secrets_key()?;
    if key.is_none() {
        let keyed = store
            .keyed_tenants(args.provider.map(|p| p.as_str()))
            .await
            .context("cannot read the stored API keys")?;
        anyhow::ensure!(
            keyed.is_empty(),
            "CALLTRAIL_SECRETS_KEY is not set, and {} provider API key(s) are stored encrypted with it: set it to reconcile",
            keyed.len()
        );
    }
    let appender = log.appender(AppenderConfig {
        linger: Duration::ZERO,
        ..AppenderConfig::default()
    });
    let db = DbReconcileStore::new(
        log.clone(),
        store,
        appender.clone(),
        key,
        reconcile::owner(),
    );
    let reconciler = Reconciler::new(db, reconcile::client(args.api.rate)?);
    let options = RunOptions {
        older_than: args.older_than,
        provider: args.provider,
    };
    let outcome = reconcile::run_once(&reconciler, options, None).await;
    appender.shutdown().await;
    log.close().await;
    let summary = match outcome.context("reconciliation failed")? {
        Ok(summary) => summary,
        Err(Skipped::Held | Skipped::NotDue) => anyhow::bail!(
            "another process is reconciling right now (serve's periodic task or another `calltrail reconcile`); try again when it is done"
        ),
    };
    reconcile::log_summary(&summary);
    let t = &summary.total;
    print_json(&json!({
        "checked": t.checked,
        "appended": t.appended,
        "unchanged": t.unchanged,
        "errors": t.errors,
    }));
    for (provider, c) in &summary.providers {
        print_json(&json!({
            "provider": provider,
            "checked": c.checked,
            "appended": c.appended,
            "unchanged": c.unchanged,
            "errors": c.errors,
        }));
    }
    Ok(())
}
