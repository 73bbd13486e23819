//! `calltrail replay`: rebuild read models from the log, with a progress bar on a terminal
//! and a JSON summary as the last line of stdout.

use std::io::IsTerminal;

use anyhow::Context;
use calltrail_eventlog::{ConnectOptions, EventLog};
use calltrail_projections::replay::{replay, ReplayOptions};
use calltrail_projections::ReadStore;
use indicatif::{ProgressBar, ProgressStyle};

use crate::cli::ReplayArgs;

/// Runs a replay.
pub async fn run(url: &str, args: ReplayArgs) -> anyhow::Result<()> {
    let log = EventLog::connect(
        url,
        &ConnectOptions {
            max_connections: 4,
            ..ConnectOptions::default()
        },
    )?;
    let store = ReadStore::connect(url, 4)?;
    let bar = if std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} replay [{bar:40}] {pos}/{len} events ({per_sec}, eta {eta})",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        crate::telemetry::log_above(Some(bar.clone()));
        bar
    } else {
        ProgressBar::hidden()
    };
    let progress = {
        let bar = bar.clone();
        move |done: u64, total: u64| {
            bar.set_length(total);
            bar.set_position(done);
        }
    };
    let options = ReplayOptions {
        credits_per_minute: args.billing.credits_per_minute,
        bounds: args.billing.bounds(),
        projections: args.projections,
        ..ReplayOptions::default()
    };
    let result = replay(&log, &store, options, progress).await;
    bar.finish_and_clear();
    crate::telemetry::log_above(None);
    log.close().await;
    let summary = result.context("replay failed")?;
    println!(
        "{}",
        serde_json::json!({
            "events": summary.events,
            "seconds": summary.seconds,
            "events_per_second": summary.events_per_second,
        })
    );
    Ok(())
}
