//! `calltrail replay`: rebuild read models from the log, with a progress bar on a terminal
//! and a JSON summary as the last line of stdout.

use std::io::IsTerminal;

use anyhow::Context;
use calltrail_eventlog::{ConnectOptions, EventLog};
use calltrail_projections::replay::{replay, ReplayOptions};
use calltrail_projections::{ReadStore, ReplaySummary};
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
    let on_terminal = !bar.is_hidden();
    let result = replay(&log, &store, options, progress).await;
    bar.finish_and_clear();
    crate::telemetry::log_above(None);
    log.close().await;
    let summary = result.context("replay failed")?;
    if on_terminal {
        eprint!("{}", human_summary(&summary));
    }
    println!("{}", json_summary(&summary));
    Ok(())
}

/// The summary line: `{"events","seconds","events_per_second","tables":{"calls":N,…}}`.
fn json_summary(summary: &ReplaySummary) -> serde_json::Value {
    let tables: serde_json::Map<String, serde_json::Value> = summary
        .tables
        .iter()
        .map(|t| (t.table.to_owned(), t.rows.into()))
        .collect();
    serde_json::json!({
        "events": summary.events,
        "seconds": summary.seconds,
        "events_per_second": summary.events_per_second,
        "tables": tables,
    })
}

/// The summary for a person: the events and time, then each rebuilt table's rows.
fn human_summary(summary: &ReplaySummary) -> String {
    let mut text = format!(
        "replayed {} events in {:.1} s ({:.0} events/s)\n",
        summary.events, summary.seconds, summary.events_per_second
    );
    let width = summary
        .tables
        .iter()
        .map(|t| t.table.len())
        .max()
        .unwrap_or(0);
    for table in &summary.tables {
        text.push_str(&format!(
            "  {:<width$}  {:>10} rows\n",
            table.table, table.rows
        ));
    }
    text
}

#[cfg(test)]
mod tests {
    use calltrail_projections::TableRows;

    use super::*;

    fn summary() -> ReplaySummary {
        ReplaySummary {
            events: 12,
            seconds: 0.5,
            events_per_second: 24.0,
            tables: vec![
                TableRows {
                    table: "calls",
                    rows: 3,
                },
                TableRows {
                    table: "lead_analytics",
                    rows: 1,
                },
            ],
        }
    }

    #[test]
    fn the_summary_names_each_table_s_rows() {
        assert_eq!(
            json_summary(&summary()).to_string(),
            r#"{"events":12,"events_per_second":24.0,"seconds":0.5,"tables":{"calls":3,"lead_analytics":1}}"#
        );
        assert_eq!(
            human_summary(&summary()),
            "replayed 12 events in 0.5 s (24 events/s)\n  \
             calls                    3 rows\n  \
             lead_analytics           1 rows\n"
        );
    }
}
