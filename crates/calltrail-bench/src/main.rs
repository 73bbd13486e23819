//! calltrail-bench — the benchmark behind `scripts/bench`. Prints a table and writes
//! `target/bench/report.json` (or `$CALLTRAIL_BENCH_DIR/report.json`). Numbers, never a verdict:
//! it does not fail because the machine is slow.
//!
//! Scenarios (all by default, in this order; pick with `--scenario a,b`):
//! - `append`: N events from C concurrent tasks straight through the group-commit appender.
//! - `raw`: the same events inserted by plain SQL, one row per transaction and 100-row
//!   batches: the ceiling PostgreSQL itself sustains here; plus the same for the lifecycle rows
//!   ingest writes (`lifecycle batch=…`), the ceiling the `ratio` column divides by; and those
//!   rows in 100-row batches from 4, 8 and 16 connections at once (`connections=…`), whose best
//!   is the concurrent ceiling ingest's `ratio_concurrent` detail divides by.
//! - `sync`: ingest at 64 connections against a primary with a streaming standby on this
//!   machine (two clusters `scripts/bench` starts): standby asynchronous, synchronous with
//!   `synchronous_commit = on`, and with `remote_apply` — what a 2xx on two machines costs.
//! - `analysis`: answered calls analysed by the workers against a local Responses API server
//!   with 200 ms latency, at 4 and 16 workers: analyses/s and drain time.
//! - `ingest`: webhooks over HTTP into the release `calltrail serve` (child process) from the
//!   load generator (`calltrail-bench loadgen`, another child process), at 16, 64 and 256
//!   connections without the projector, then 64 with it; every acknowledged webhook checked.
//! - `mixed`: ingest at 64 connections (no projector) of Bolna's calls alone, then of all five
//!   providers' calls in equal shares, every one but Bolna's signed: webhooks/s of both and their
//!   ratio (what checking signatures and parsing the other providers costs), CPU per webhook
//!   of the server and of PostgreSQL for each.
//! - `replay`: a log of 1,000,000 events written with binary COPY, rebuilt by `calltrail replay`.
//! - `console`: the web console's pages (calls list, sorted and filtered, dashboard) with
//!   100,000 calls in one tenant, one request at a time: render time per page.
//! - `logs` (not in the default set): ingest at 64 connections with the server's `RUST_LOG` at
//!   `info` (one line per webhook) and at `warn` (`--log-levels`), alternating, two rounds
//!   each: the best rate of each and what the info lines cost (`first_level_cost_percent`).
//! - `export` (not in the default set: it writes a million calls): `GET /v1/calls.csv` of one
//!   tenant's 200,000 and 1,000,000 calls (`--export-calls`), the server's peak RSS for each,
//!   so a flat memory shows.
//!
//! Beside the scenarios' modules: [`workload`] (the call lifecycles every scenario sends, one
//! provider or all five), [`server`] (the `calltrail` binary as a child process), [`loadgen`]
//! (the load generator, a process of its own), [`proc`] (CPU time and memory from `/proc`) and
//! [`report`] (the table and `report.json`).

mod analysis;
mod append;
mod console;
mod export;
mod ingest;
mod loadgen;
mod proc;
mod replay;
mod report;
mod server;
mod sync;
mod workload;

use std::time::Duration;

use anyhow::Context;

use crate::loadgen::ClientKind;

/// Connections of the concurrent `raw` ceiling (100-row batches): PostgreSQL's best of these is
/// what `ratio_concurrent` divides by.
const RAW_CONNECTIONS: [usize; 3] = [4, 8, 16];

/// Connections of the ingest run with the projector live.
const PROJECTOR_CONNECTIONS: usize = 64;

/// Connections of both `mixed` runs.
const MIXED_CONNECTIONS: usize = 64;

/// Parsed `--key value` arguments.
struct Args {
    scenarios: Vec<String>,
    events: usize,
    concurrency: Vec<usize>,
    webhooks: usize,
    connections: Vec<usize>,
    replay_events: usize,
    analysis_calls: usize,
    console_calls: usize,
    console_requests: usize,
    export_calls: Vec<usize>,
    client: ClientKind,
    log_levels: Vec<&'static str>,
}

const USAGE: &str = "\
calltrail-bench [--scenario append,raw,ingest,mixed,sync,replay,analysis,console,export,logs] [--events N] [--concurrency 1,16,64]
                [--webhooks N] [--connections 16,64,256] [--client raw|reqwest] [--replay-events N]
                [--analysis-calls N] [--console-calls N] [--console-requests N]
                [--export-calls 200000,1000000] [--log-levels info,warn]
calltrail-bench loadgen …   (the load generator; started by the ingest scenario)";

fn numbers(flag: &str, value: &str) -> anyhow::Result<Vec<usize>> {
    value
        .split(',')
        .map(|c| {
            c.trim()
                .parse()
                .with_context(|| format!("{flag} takes numbers like 16,64"))
        })
        .collect()
}

/// `--log-levels`: `RUST_LOG` levels, the first the one measured against the others.
fn log_levels(value: &str) -> anyhow::Result<Vec<&'static str>> {
    const KNOWN: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];
    value
        .split(',')
        .map(|level| {
            KNOWN
                .iter()
                .copied()
                .find(|known| *known == level.trim())
                .with_context(|| {
                    format!("--log-levels takes levels like info,warn (not `{level}`)")
                })
        })
        .collect()
}

fn parse_args(mut it: impl Iterator<Item = String>) -> anyhow::Result<Args> {
    let mut args = Args {
        scenarios: [
            "append", "raw", "ingest", "mixed", "sync", "replay", "analysis", "console",
        ]
        .map(str::to_owned)
        .to_vec(),
        events: 20_000,
        concurrency: vec![1, 16, 64],
        webhooks: 30_000,
        connections: vec![16, 64, 256],
        replay_events: 1_000_000,
        analysis_calls: 2_000,
        console_calls: 100_000,
        console_requests: 300,
        export_calls: vec![200_000, 1_000_000],
        client: ClientKind::Raw,
        log_levels: vec!["info", "warn"],
    };
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenario" => args.scenarios = value()?.split(',').map(str::to_owned).collect(),
            "--events" => args.events = value()?.parse().context("--events takes a number")?,
            "--concurrency" => args.concurrency = numbers(&flag, &value()?)?,
            "--webhooks" => {
                args.webhooks = value()?.parse().context("--webhooks takes a number")?
            }
            "--connections" => args.connections = numbers(&flag, &value()?)?,
            "--replay-events" => {
                args.replay_events = value()?.parse().context("--replay-events takes a number")?
            }
            "--analysis-calls" => {
                args.analysis_calls = value()?
                    .parse()
                    .context("--analysis-calls takes a number")?
            }
            "--console-calls" => {
                args.console_calls = value()?.parse().context("--console-calls takes a number")?
            }
            "--console-requests" => {
                args.console_requests = value()?
                    .parse()
                    .context("--console-requests takes a number")?
            }
            "--export-calls" => args.export_calls = numbers(&flag, &value()?)?,
            "--client" => args.client = value()?.parse()?,
            "--log-levels" => args.log_levels = log_levels(&value()?)?,
            "--help" | "-h" => {
                println!("{USAGE}");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}\n{USAGE}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut argv = std::env::args().skip(1).peekable();
    if argv.peek().map(String::as_str) == Some("loadgen") {
        argv.next();
        return loadgen::run(loadgen::LoadgenArgs::parse(argv)?).await;
    }
    let args = parse_args(argv)?;
    let mut report = report::Report::default();
    let needs_ceiling = args
        .scenarios
        .iter()
        .any(|s| s == "ingest" || s == "sync" || s == "replay");
    if needs_ceiling && !args.scenarios.iter().any(|s| s == "raw") {
        // The ratios need PostgreSQL's batched ceiling measured in the same run.
        report.push(append::raw_lifecycle(args.events, 100).await?);
    }
    for scenario in &args.scenarios {
        match scenario.as_str() {
            "append" => {
                for &c in &args.concurrency {
                    report.push(append::appender(args.events, c).await?);
                }
            }
            "raw" => {
                report.push(append::raw(args.events.min(10_000), 1).await?);
                report.push(append::raw(args.events, 100).await?);
                report.push(append::raw_lifecycle(args.events.min(10_000), 1).await?);
                report.push(append::raw_lifecycle(args.events, 100).await?);
                for connections in RAW_CONNECTIONS {
                    report.push(
                        append::raw_lifecycle_concurrent(args.events, 100, connections).await?,
                    );
                }
            }
            "ingest" => {
                let level = |connections, projector| ingest::Level {
                    connections,
                    webhooks: args.webhooks,
                    projector,
                    client: args.client,
                    mix: workload::Mix::Bolna,
                    log_level: None,
                };
                for &c in &args.connections {
                    report.push(ingest::level(level(c, false)).await?);
                    tokio::time::sleep(Duration::from_secs(1)).await;
                }
                report.push(ingest::level(level(PROJECTOR_CONNECTIONS, true)).await?);
            }
            "mixed" => {
                for row in mixed(&args).await? {
                    report.push(row);
                }
            }
            "sync" => sync::run(args.webhooks, args.client, &mut report).await?,
            "replay" => replay::run(args.replay_events, &mut report).await?,
            "analysis" => {
                for workers in [4, 16] {
                    report.push(
                        analysis::run(args.analysis_calls, workers, Duration::from_millis(200))
                            .await?,
                    );
                }
            }
            "console" => {
                console::run(args.console_calls, args.console_requests, &mut report).await?
            }
            "export" => export::run(&args.export_calls, &mut report).await?,
            "logs" => {
                for row in logs(&args).await? {
                    report.push(row);
                }
            }
            other => anyhow::bail!(
                "unknown scenario {other} (known: append, raw, ingest, mixed, sync, replay, analysis, console, export, logs)"
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    set_ratios(&mut report);
    report.print();
    report.write()?;
    Ok(())
}

/// The `mixed` scenario's two rows: Bolna alone, then all five providers; the second with its
/// rate as a fraction of the first (`ratio_to_bolna`).
async fn mixed(args: &Args) -> anyhow::Result<[report::Row; 2]> {
    let level = |mix| ingest::Level {
        connections: MIXED_CONNECTIONS,
        webhooks: args.webhooks,
        projector: false,
        client: args.client,
        mix,
        log_level: None,
    };
    let mut bolna = ingest::level(level(workload::Mix::Bolna)).await?;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut mixed = ingest::level(level(workload::Mix::Mixed)).await?;
    bolna.scenario = "mixed".to_owned();
    bolna.params = format!("c={MIXED_CONNECTIONS} bolna only");
    mixed.scenario = "mixed".to_owned();
    mixed.params = format!("c={MIXED_CONNECTIONS} five providers");
    if bolna.per_second > 0.0 {
        let ratio = report::round3(mixed.per_second / bolna.per_second);
        mixed = mixed.detail("ratio_to_bolna", ratio);
    }
    Ok([bolna, mixed])
}

/// The `logs` scenario: ingest at 64 connections (no projector) with the server's `RUST_LOG`
/// at each of `--log-levels` (`info`, one line per webhook, then `warn`, none), in
/// [`LOG_ROUNDS`] alternating rounds so that neither level always runs on a warmer machine.
/// One row per level, its best round; every row after the first has the first's rate as a
/// fraction of its own (`ratio_first_to_this`: below 1 is what the first level costs) and that
/// cost in percent (`first_level_cost_percent`).
async fn logs(args: &Args) -> anyhow::Result<Vec<report::Row>> {
    let level = |log_level| ingest::Level {
        connections: MIXED_CONNECTIONS,
        webhooks: args.webhooks,
        projector: false,
        client: args.client,
        mix: workload::Mix::Bolna,
        log_level: Some(log_level),
    };
    let mut best: Vec<Option<report::Row>> = args.log_levels.iter().map(|_| None).collect();
    let mut rates: Vec<Vec<f64>> = args.log_levels.iter().map(|_| Vec::new()).collect();
    for round in 1..=LOG_ROUNDS {
        for ((slot, rates), &log_level) in best.iter_mut().zip(&mut rates).zip(&args.log_levels) {
            let mut row = ingest::level(level(log_level)).await?;
            eprintln!(
                "logs round {round}: RUST_LOG={log_level} {:.0} webhooks/s",
                row.per_second
            );
            row.scenario = "logs".to_owned();
            row.params = format!("c={MIXED_CONNECTIONS} RUST_LOG={log_level}");
            rates.push(report::round3(row.per_second));
            if slot.as_ref().is_none_or(|b| row.per_second > b.per_second) {
                *slot = Some(row);
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
    for (slot, rates) in best.iter_mut().zip(rates) {
        if let Some(row) = slot.as_mut() {
            row.details
                .insert("rounds_per_second".to_owned(), rates.into());
        }
    }
    let mut rows: Vec<report::Row> = best.into_iter().flatten().collect();
    let first = rows.first().map(|r| r.per_second).unwrap_or(0.0);
    for row in rows.iter_mut().skip(1) {
        if row.per_second > 0.0 {
            let ratio = report::round3(first / row.per_second);
            row.details
                .insert("ratio_first_to_this".to_owned(), ratio.into());
            row.details.insert(
                "first_level_cost_percent".to_owned(),
                report::round3((1.0 - ratio) * 100.0).into(),
            );
        }
    }
    Ok(rows)
}

/// Rounds of the `logs` scenario (each level once a round).
const LOG_ROUNDS: usize = 2;

/// Ingest and replay rates as a fraction of PostgreSQL's own batched insert rate of the same
/// rows (`raw`, `lifecycle batch=100`).
fn set_ratios(report: &mut report::Report) {
    let ceiling = report
        .rows()
        .iter()
        .find(|r| r.scenario == "raw" && r.params == "lifecycle batch=100")
        .map(|r| r.per_second);
    let Some(ceiling) = ceiling.filter(|c| *c > 0.0) else {
        return;
    };
    let concurrent = report
        .rows()
        .iter()
        .filter(|r| r.scenario == "raw" && r.params.starts_with("lifecycle batch=100 connections="))
        .map(|r| r.per_second)
        .fold(0.0_f64, f64::max);
    for row in report.rows_mut() {
        let measured = row.scenario == "ingest"
            || row.scenario == "sync"
            || (row.scenario == "replay" && row.params.starts_with("events="));
        if measured {
            row.ratio = Some(report::round3(row.per_second / ceiling));
        }
        if (row.scenario == "ingest" || row.scenario == "sync") && concurrent > 0.0 {
            let ratio = report::round3(row.per_second / concurrent);
            row.details
                .insert("ratio_concurrent".to_owned(), ratio.into());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parsed(args: &[&str]) -> anyhow::Result<Args> {
        parse_args(args.iter().map(|a| (*a).to_owned()))
    }

    #[test]
    fn log_levels_are_info_then_warn_unless_given() {
        let defaults = parsed(&["--scenario", "logs"]).ok().map(|a| a.log_levels);
        assert_eq!(defaults, Some(vec!["info", "warn"]));
        let given = parsed(&["--log-levels", "debug, info"])
            .ok()
            .map(|a| a.log_levels);
        assert_eq!(given, Some(vec!["debug", "info"]));
        let wrong = parsed(&["--log-levels", "info,loud"])
            .err()
            .map(|e| e.to_string());
        assert!(
            wrong.as_deref().is_some_and(|e| e.contains("not `loud`")),
            "{wrong:?}"
        );
    }
}
