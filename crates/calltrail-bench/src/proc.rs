//! CPU time and memory of processes, from `/proc` (Linux only; elsewhere the numbers are absent).

use std::collections::HashMap;
use std::sync::OnceLock;
use std::time::Duration;

use anyhow::Context;

/// Clock ticks per second (`getconf CLK_TCK`; 100 on every Linux this runs on).
fn ticks_per_second() -> f64 {
    static TICKS: OnceLock<f64> = OnceLock::new();
    *TICKS.get_or_init(|| {
        std::process::Command::new("getconf")
            .arg("CLK_TCK")
            .output()
            .ok()
            .and_then(|out| String::from_utf8(out.stdout).ok())
            .and_then(|text| text.trim().parse::<u32>().ok())
            .filter(|&t| t > 0)
            .map_or(100.0, f64::from)
    })
}

/// Ticks to seconds.
fn seconds(ticks: u64) -> f64 {
    // Tick counts stay far below 2^52: exact as f64.
    #[allow(clippy::as_conversions)]
    let ticks = ticks as f64;
    ticks / ticks_per_second()
}

/// `(comm, utime + stime in ticks)` of a process from its `/proc/<pid>/stat`.
fn stat(pid: u32) -> anyhow::Result<(String, u64)> {
    let path = format!("/proc/{pid}/stat");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // `pid (comm) state ppid …`: comm may hold spaces and parentheses, so cut at the last ')'.
    let open = text.find('(').context("no '(' in /proc/<pid>/stat")?;
    let close = text.rfind(')').context("no ')' in /proc/<pid>/stat")?;
    let comm = text.get(open + 1..close).unwrap_or_default().to_owned();
    let fields: Vec<&str> = text
        .get(close + 1..)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    // After the comm, field 3 (state) is index 0: utime (14) is index 11, stime (15) index 12.
    let field = |i: usize| -> anyhow::Result<u64> {
        fields
            .get(i)
            .context("/proc/<pid>/stat is too short")?
            .parse()
            .context("a /proc/<pid>/stat field is not a number")
    };
    Ok((comm, field(11)? + field(12)?))
}

/// CPU seconds (user + system, all threads) a process has used so far.
pub fn cpu_seconds(pid: u32) -> anyhow::Result<f64> {
    Ok(seconds(stat(pid)?.1))
}

/// A `kB` value from `/proc/<pid>/status` (e.g. `VmHWM`, `VmRSS`), in MiB.
fn status_mib(pid: u32, key: &str) -> anyhow::Result<f64> {
    let path = format!("/proc/{pid}/status");
    let text = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    let line = text
        .lines()
        .find_map(|line| {
            line.strip_prefix(key)
                .and_then(|rest| rest.strip_prefix(':'))
        })
        .with_context(|| format!("no {key} in {path}"))?;
    let kib: u32 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .with_context(|| format!("{key} is not a number"))?;
    Ok(f64::from(kib) / 1024.0)
}

/// Peak resident memory of a process so far (`VmHWM`), in MiB.
pub fn peak_rss_mib(pid: u32) -> anyhow::Result<f64> {
    status_mib(pid, "VmHWM")
}

/// Which PostgreSQL process a reading belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum PgProcess {
    /// A backend of the benchmark's database, or a process serving every database (WAL
    /// writer, checkpointer, autovacuum launcher, parallel workers, …).
    Ours,
    /// A backend of another database on the same server (someone else's tests).
    Other,
}

/// `pid → (whose, CPU ticks)` of every process named `postgres` now. A backend's process title
/// (`postgres: user database host(port) state`) names its database; `database` picks ours.
fn postgres_ticks(database: Option<&str>) -> HashMap<u32, (PgProcess, u64)> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return HashMap::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|entry| {
            entry
                .file_name()
                .to_str()
                .and_then(|name| name.parse::<u32>().ok())
        })
        .filter_map(|pid| stat(pid).ok().map(|(comm, ticks)| (pid, comm, ticks)))
        .filter(|(_, comm, _)| comm == "postgres")
        .map(|(pid, _, ticks)| {
            let title = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let title = String::from_utf8_lossy(&title).replace('\0', " ");
            let backend = title.contains("(") || title.contains("[local]");
            let ours = match database {
                Some(db) => !backend || title.split_whitespace().any(|word| word == db),
                None => true,
            };
            (
                pid,
                (
                    if ours {
                        PgProcess::Ours
                    } else {
                        PgProcess::Other
                    },
                    ticks,
                ),
            )
        })
        .collect()
}

/// What a [`Sampler`] saw between its start and its finish.
#[derive(Debug, Clone, Copy, Default)]
pub struct Samples {
    /// CPU seconds of PostgreSQL for the benchmark: the backends of its database and the
    /// processes that serve every database (WAL writer, checkpointer, …; other databases'
    /// share of those counts too). A backend that exits loses its last 100 ms.
    pub postgres_cpu_s: f64,
    /// CPU seconds of every `postgres` process, other databases' backends included.
    pub postgres_all_cpu_s: f64,
    /// CPU seconds of the watched process, as of its last sample.
    pub cpu_s: f64,
    /// Peak RSS of the watched process (`VmHWM`), as of its last sample.
    pub peak_rss_mib: f64,
    /// Cores busy on average, whole machine.
    pub machine_cores_busy: f64,
}

/// Samples PostgreSQL's CPU time (and optionally one process's CPU time and peak RSS) every
/// 100 ms until finished, so that processes that exit in between are still counted.
#[derive(Debug)]
pub struct Sampler {
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<Samples>,
}

impl Sampler {
    /// Starts sampling; `pid` is the process to watch, if any, and `database` the benchmark's
    /// database (`None`: count every PostgreSQL process as ours).
    pub fn start(pid: Option<u32>, database: Option<String>) -> Sampler {
        let (stop, mut stopped) = tokio::sync::oneshot::channel::<()>();
        let baseline = postgres_ticks(database.as_deref());
        let machine = MachineCpu::now();
        let pid_baseline = pid.and_then(|p| stat(p).ok()).map_or(0, |(_, ticks)| ticks);
        let task = tokio::spawn(async move {
            let mut last = baseline.clone();
            let mut samples = Samples::default();
            let mut pid_ticks = pid_baseline;
            let mut tick = tokio::time::interval(Duration::from_millis(100));
            loop {
                let done = tokio::select! {
                    _ = &mut stopped => true,
                    _ = tick.tick() => false,
                };
                last.extend(postgres_ticks(database.as_deref()));
                if let Some(pid) = pid {
                    if let Ok((_, ticks)) = stat(pid) {
                        pid_ticks = ticks;
                    }
                    if let Ok(rss) = peak_rss_mib(pid) {
                        samples.peak_rss_mib = rss;
                    }
                }
                if done {
                    break;
                }
            }
            let (mut ours, mut all) = (0, 0);
            for (pid, (whose, ticks)) in &last {
                let used = ticks.saturating_sub(baseline.get(pid).map_or(0, |b| b.1));
                all += used;
                if *whose == PgProcess::Ours {
                    ours += used;
                }
            }
            samples.postgres_cpu_s = seconds(ours);
            samples.postgres_all_cpu_s = seconds(all);
            samples.cpu_s = seconds(pid_ticks.saturating_sub(pid_baseline));
            samples.machine_cores_busy = MachineCpu::now().cores_busy_since(&machine);
            samples
        });
        Sampler { stop, task }
    }

    /// Takes a last sample and returns what was seen.
    pub async fn finish(self) -> Samples {
        // The task may be gone already only if it panicked; then there is nothing to report.
        let _ = self.stop.send(());
        self.task.await.unwrap_or_default()
    }
}

/// The whole machine's CPU time so far (`/proc/stat`), to tell how busy it was in between.
#[derive(Debug, Clone, Copy, Default)]
pub struct MachineCpu {
    busy: u64,
    total: u64,
}

impl MachineCpu {
    /// Now (zero when `/proc/stat` cannot be read).
    pub fn now() -> MachineCpu {
        let Ok(text) = std::fs::read_to_string("/proc/stat") else {
            return MachineCpu::default();
        };
        let Some(line) = text.lines().next() else {
            return MachineCpu::default();
        };
        // cpu user nice system idle iowait irq softirq steal …
        let values: Vec<u64> = line
            .split_whitespace()
            .skip(1)
            .take(8)
            .filter_map(|v| v.parse().ok())
            .collect();
        let total: u64 = values.iter().sum();
        let idle = values.get(3).copied().unwrap_or(0) + values.get(4).copied().unwrap_or(0);
        MachineCpu {
            busy: total.saturating_sub(idle),
            total,
        }
    }

    /// Cores busy on average since `earlier` (0 to the core count).
    pub fn cores_busy_since(&self, earlier: &MachineCpu) -> f64 {
        let busy = seconds(self.busy.saturating_sub(earlier.busy));
        let total = seconds(self.total.saturating_sub(earlier.total));
        let cores = std::thread::available_parallelism().map_or(1, usize::from);
        let cores = u32::try_from(cores).map_or(1.0, f64::from);
        if total > 0.0 {
            busy / total * cores
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn reads_this_process() {
        let pid = std::process::id();
        assert!(cpu_seconds(pid).unwrap() >= 0.0);
        assert!(peak_rss_mib(pid).unwrap() > 0.0);
    }
}
