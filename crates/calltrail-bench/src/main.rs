//! calltrail-bench — the benchmark behind `scripts/bench`. Prints a table and writes
//! `target/bench/report.json` (or `$CALLTRAIL_BENCH_DIR/report.json`). Numbers, never a verdict:
//! it does not fail because the machine is slow.
//!
//! Scenarios:
//! - `append`: N events from C concurrent tasks straight through the group-commit appender.
//! - `raw`: the same events inserted by plain SQL, one row per transaction and 100-row
//!   batches: the ceiling PostgreSQL itself sustains here.

mod append;
mod report;

use std::time::Duration;

use anyhow::Context;

/// Parsed `--key value` arguments.
struct Args {
    scenarios: Vec<String>,
    events: usize,
    concurrency: Vec<usize>,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args { scenarios: vec!["append".into(), "raw".into()], events: 20_000, concurrency: vec![1, 16, 64] };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().with_context(|| format!("{flag} needs a value"));
        match flag.as_str() {
            "--scenario" => args.scenarios = value()?.split(',').map(str::to_owned).collect(),
            "--events" => args.events = value()?.parse().context("--events takes a number")?,
            "--concurrency" => {
                args.concurrency = value()?
                    .split(',')
                    .map(|c| c.parse().context("--concurrency takes numbers like 1,16,64"))
                    .collect::<anyhow::Result<_>>()?;
            }
            "--help" | "-h" => {
                println!("calltrail-bench [--scenario append,raw] [--events N] [--concurrency 1,16,64]");
                std::process::exit(0);
            }
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    Ok(args)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let mut report = report::Report::default();
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
            }
            other => anyhow::bail!("unknown scenario {other} (known: append, raw)"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    report.print();
    report.write()?;
    Ok(())
}
