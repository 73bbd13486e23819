//! Results: a readable table on stdout and `report.json`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::Context;
use serde::Serialize;

/// One measured run.
#[derive(Debug, Serialize)]
pub struct Row {
    /// Scenario name.
    pub scenario: String,
    /// Parameters, e.g. `c=16`.
    pub params: String,
    /// Operations completed.
    pub operations: usize,
    /// Wall time.
    pub seconds: f64,
    /// Operations per second.
    pub per_second: f64,
    /// Latency percentiles in milliseconds, when measured per operation.
    pub p50_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// Maximum.
    pub max_ms: Option<f64>,
    /// This row's rate as a fraction of PostgreSQL's own batched ceiling (`raw`, lifecycle rows,
    /// 100 rows a transaction), where that comparison means something.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratio: Option<f64>,
    /// Scenario-specific measurements (CPU seconds, peak RSS, verification counts, …).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub details: BTreeMap<String, serde_json::Value>,
}

impl Row {
    /// A row from a count, the wall time, and optional per-operation latencies.
    pub fn new(
        scenario: &str,
        params: String,
        operations: usize,
        wall: Duration,
        mut latencies: Vec<Duration>,
    ) -> Self {
        latencies.sort_unstable();
        let pick = |q: f64| -> Option<f64> {
            if latencies.is_empty() {
                return None;
            }
            let last = latencies.len() - 1;
            #[allow(clippy::as_conversions)]
            // an index within 0..=last; precision loss is irrelevant here
            let index = ((last as f64) * q).round() as usize;
            latencies
                .get(index.min(last))
                .map(|d| d.as_secs_f64() * 1000.0)
        };
        let seconds = wall.as_secs_f64();
        #[allow(clippy::as_conversions)] // a count converted for a rate
        let per_second = if seconds > 0.0 {
            operations as f64 / seconds
        } else {
            0.0
        };
        Self {
            scenario: scenario.to_owned(),
            params,
            operations,
            seconds,
            per_second,
            p50_ms: pick(0.50),
            p99_ms: pick(0.99),
            max_ms: pick(1.0),
            ratio: None,
            details: BTreeMap::new(),
        }
    }

    /// Adds a scenario-specific measurement.
    pub fn detail(mut self, key: &str, value: impl Into<serde_json::Value>) -> Self {
        self.details.insert(key.to_owned(), value.into());
        self
    }
}

/// Where results go: `$CALLTRAIL_BENCH_DIR`, default `target/bench`.
pub fn bench_dir() -> anyhow::Result<PathBuf> {
    let dir = std::env::var_os("CALLTRAIL_BENCH_DIR")
        .map_or_else(|| PathBuf::from("target/bench"), PathBuf::from);
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// Rounds for display and JSON (three decimals).
pub fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}

/// All rows of one run.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    rows: Vec<Row>,
}

impl Report {
    /// Adds a row and prints it right away.
    pub fn push(&mut self, row: Row) {
        eprintln!(
            "{:<10} {:<24} {:>10.0}/s",
            row.scenario, row.params, row.per_second
        );
        self.rows.push(row);
    }

    /// The rows so far.
    pub fn rows(&self) -> &[Row] {
        &self.rows
    }

    /// The rows so far, to fill in ratios once the ceiling is known.
    pub fn rows_mut(&mut self) -> &mut [Row] {
        &mut self.rows
    }

    /// The table.
    pub fn print(&self) {
        println!(
            "{:<10} {:<24} {:>8} {:>8} {:>12} {:>8} {:>8} {:>8} {:>6}",
            "scenario", "params", "ops", "seconds", "ops/s", "p50 ms", "p99 ms", "max ms", "ratio"
        );
        let ms = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
        for r in &self.rows {
            println!(
                "{:<10} {:<24} {:>8} {:>8.2} {:>12.0} {:>8} {:>8} {:>8} {:>6}",
                r.scenario,
                r.params,
                r.operations,
                r.seconds,
                r.per_second,
                ms(r.p50_ms),
                ms(r.p99_ms),
                ms(r.max_ms),
                ms(r.ratio)
            );
            if !r.details.is_empty() {
                let details: Vec<String> =
                    r.details.iter().map(|(k, v)| format!("{k}={v}")).collect();
                println!("{:<10} {}", "", details.join(" "));
            }
        }
    }

    /// Writes `report.json` into `$CALLTRAIL_BENCH_DIR` (default `target/bench`).
    pub fn write(&self) -> anyhow::Result<()> {
        let dir = bench_dir()?;
        let path = dir.join("report.json");
        let body = serde_json::json!({
            "generated_at": chrono::Utc::now(),
            "machine": { "cores": std::thread::available_parallelism().map_or(0, usize::from) },
            "rows": self.rows,
        });
        std::fs::write(&path, serde_json::to_vec_pretty(&body)?)
            .with_context(|| format!("cannot write {}", path.display()))?;
        eprintln!("report written to {}", path.display());
        Ok(())
    }
}
