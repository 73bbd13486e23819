//! `calltrail-bench loadgen`: the load generator, run by the `ingest` scenario as a process of
//! its own so that its CPU time is told apart from the server's.
//!
//! It builds realistic Bolna lifecycles (5 webhooks per answered call, 3 per missed call, ids
//! unique to the run, order shuffled within each call, ~3 % sent twice), then posts them over
//! C keep-alive connections, each connection taking the next webhook as soon as its previous
//! one is answered. Webhooks of one call are therefore in flight on several connections at
//! once, as when a provider retries. It writes the keys answered 202 to `--acked` (one
//! `stream_id<TAB>event_type` a line) and prints a [`Summary`] as one JSON line on stdout.
//!
//! Two clients: `raw` (default), a minimal HTTP/1.1 client over a tokio `TcpStream` (requests
//! built before the clock starts, responses parsed by `Content-Length`), and `reqwest` (one
//! client, hence one keep-alive connection, per worker).

use std::collections::HashMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::Context;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::workload::{call_id, phone, CallKind, Rng, Workload};

/// The load generator gives up on posting new webhooks after this long.
const DEADLINE: Duration = Duration::from_secs(900);
/// Transport errors tolerated (across all connections) before giving up.
const MAX_ERRORS: usize = 1_000;
/// Error messages kept for the summary.
const MAX_ERROR_SAMPLES: usize = 5;

/// Which HTTP client posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ClientKind {
    /// Minimal HTTP/1.1 over `TcpStream`.
    Raw,
    /// reqwest with a keep-alive connection per worker.
    Reqwest,
}

impl std::str::FromStr for ClientKind {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "raw" => Ok(ClientKind::Raw),
            "reqwest" => Ok(ClientKind::Reqwest),
            other => anyhow::bail!("unknown client {other} (raw or reqwest)"),
        }
    }
}

impl ClientKind {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            ClientKind::Raw => "raw",
            ClientKind::Reqwest => "reqwest",
        }
    }
}

/// `calltrail-bench loadgen` arguments.
#[derive(Debug, Clone)]
pub struct LoadgenArgs {
    /// Server address (loopback).
    pub addr: SocketAddr,
    /// Request path, e.g. `/v1/webhooks/bolna/<token>`.
    pub path: String,
    /// Concurrent keep-alive connections.
    pub connections: usize,
    /// Webhooks to post (duplicates included).
    pub webhooks: usize,
    /// Share of webhooks sent a second time, in per mille.
    pub duplicates_per_mille: u64,
    /// Seed of the lifecycle order and duplicates.
    pub seed: u64,
    /// Execution ids are `bench-<run>-<n>`.
    pub run: String,
    /// Where to write the keys answered 202.
    pub acked: PathBuf,
    /// Which client.
    pub client: ClientKind,
}

impl LoadgenArgs {
    /// The arguments as the parent passes them on the command line.
    pub fn to_args(&self) -> Vec<String> {
        vec![
            "loadgen".into(),
            "--addr".into(),
            self.addr.to_string(),
            "--path".into(),
            self.path.clone(),
            "--connections".into(),
            self.connections.to_string(),
            "--webhooks".into(),
            self.webhooks.to_string(),
            "--duplicates-per-mille".into(),
            self.duplicates_per_mille.to_string(),
            "--seed".into(),
            self.seed.to_string(),
            "--run".into(),
            self.run.clone(),
            "--acked".into(),
            self.acked.display().to_string(),
            "--client".into(),
            self.client.as_str().into(),
        ]
    }

    /// Parses what [`LoadgenArgs::to_args`] wrote (after `loadgen`).
    pub fn parse(mut it: impl Iterator<Item = String>) -> anyhow::Result<LoadgenArgs> {
        let mut addr = None;
        let mut path = None;
        let mut acked = None;
        let mut args = LoadgenArgs {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            path: String::new(),
            connections: 64,
            webhooks: 30_000,
            duplicates_per_mille: 30,
            seed: 1,
            run: "run".into(),
            acked: PathBuf::new(),
            client: ClientKind::Raw,
        };
        while let Some(flag) = it.next() {
            let value = it
                .next()
                .with_context(|| format!("loadgen: {flag} needs a value"))?;
            let number = || {
                value
                    .parse::<usize>()
                    .with_context(|| format!("loadgen: {flag} takes a number"))
            };
            match flag.as_str() {
                "--addr" => addr = Some(value.parse().context("loadgen: --addr takes host:port")?),
                "--path" => path = Some(value),
                "--connections" => args.connections = number()?.max(1),
                "--webhooks" => args.webhooks = number()?,
                "--duplicates-per-mille" => {
                    args.duplicates_per_mille = value.parse().context("loadgen: per mille")?
                }
                "--seed" => args.seed = value.parse().context("loadgen: --seed takes a number")?,
                "--run" => args.run = value,
                "--acked" => acked = Some(PathBuf::from(value)),
                "--client" => args.client = value.parse()?,
                other => anyhow::bail!("loadgen: unknown argument {other}"),
            }
        }
        args.addr = addr.context("loadgen: --addr is required")?;
        anyhow::ensure!(
            args.addr.ip().is_loopback(),
            "loadgen: only posts to a loopback address"
        );
        args.path = path.context("loadgen: --path is required")?;
        args.acked = acked.context("loadgen: --acked is required")?;
        Ok(args)
    }
}

/// What the load generator reports (one JSON line on stdout).
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Summary {
    /// `raw` or `reqwest`.
    pub client: ClientKind,
    /// Connections used.
    pub connections: usize,
    /// Webhooks posted.
    pub sent: usize,
    /// Distinct `(execution id, status)` keys among them.
    pub unique_keys: usize,
    /// Answered 202 (a new event, committed).
    pub accepted: usize,
    /// Answered 200 (already recorded).
    pub duplicates: usize,
    /// Any other answer or a transport error.
    pub errors: usize,
    /// A few of those errors.
    pub error_samples: Vec<String>,
    /// Keys answered 202 more than once (must be 0: a duplicate answered as new).
    pub acked_twice: usize,
    /// From the first request to the last answer.
    pub seconds: f64,
    /// CPU seconds of the load generator itself while posting (from `/proc/<pid>/stat`).
    pub cpu_seconds: f64,
    /// Every request's latency, in microseconds.
    pub latencies_us: Vec<u64>,
}

/// One webhook to post.
#[derive(Debug)]
struct Post {
    /// Index into the distinct keys.
    key: usize,
    /// The request body.
    body: Vec<u8>,
    /// The whole HTTP/1.1 request (for the raw client).
    request: Vec<u8>,
}

/// The webhooks of a run, in posting order, and their distinct keys.
#[derive(Debug)]
struct Plan {
    posts: Vec<Post>,
    keys: Vec<(String, String)>,
}

impl Plan {
    fn build(args: &LoadgenArgs) -> anyhow::Result<Plan> {
        let workload = Workload::new()?;
        let host = args.addr.to_string();
        let mut rng = Rng::new(args.seed);
        let mut posts = Vec::with_capacity(args.webhooks);
        let mut keys = Vec::new();
        let mut call = 0_u64;
        while posts.len() < args.webhooks {
            let steps = workload.steps(CallKind::of_call(call));
            let (id, number) = (call_id(&args.run, call), phone(call));
            let first_key = keys.len();
            keys.extend(steps.iter().map(|s| (id.clone(), s.status.clone())));
            // Each webhook once, some twice, in shuffled order.
            let mut order: Vec<usize> = (0..steps.len()).collect();
            for i in 0..steps.len() {
                if rng.per_mille(args.duplicates_per_mille) {
                    order.push(i);
                }
            }
            rng.shuffle(&mut order);
            for i in order {
                let Some(step) = steps.get(i) else { continue };
                let body = step.payload.render(&id, &number).into_bytes();
                let mut request = Vec::with_capacity(body.len() + 200);
                write!(
                    request,
                    "POST {} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\nUser-Agent: calltrail-bench\r\nContent-Length: {}\r\n\r\n",
                    args.path,
                    body.len()
                )?;
                request.extend_from_slice(&body);
                posts.push(Post {
                    key: first_key + i,
                    body,
                    request,
                });
            }
            call += 1;
        }
        posts.truncate(args.webhooks);
        Ok(Plan { posts, keys })
    }
}

/// One answered (or failed) request: post index, HTTP status (0 for a transport error), latency.
type Outcome = (usize, u16, Duration);

/// Runs the load generator: builds the plan, posts it, writes the acknowledged keys and prints
/// the summary.
pub async fn run(args: LoadgenArgs) -> anyhow::Result<()> {
    let plan = Arc::new(Plan::build(&args)?);
    let next = Arc::new(AtomicUsize::new(0));
    let errors = Arc::new(AtomicUsize::new(0));
    let cpu_before = crate::proc::cpu_seconds(std::process::id()).unwrap_or(0.0);
    let started = Instant::now();
    let mut workers = Vec::new();
    for _ in 0..args.connections {
        let (plan, next, errors, args) = (plan.clone(), next.clone(), errors.clone(), args.clone());
        workers.push(tokio::spawn(async move {
            worker(&args, &plan, &next, &errors, started).await
        }));
    }
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(plan.posts.len());
    let mut error_samples = Vec::new();
    for worker in workers {
        let (done, samples) = worker.await.context("a loadgen worker panicked")?;
        outcomes.extend(done);
        error_samples.extend(samples);
    }
    let seconds = started.elapsed().as_secs_f64();
    let cpu_seconds = crate::proc::cpu_seconds(std::process::id()).unwrap_or(0.0) - cpu_before;
    error_samples.truncate(MAX_ERROR_SAMPLES);

    let mut acked: HashMap<usize, usize> = HashMap::new();
    let (mut accepted, mut duplicates, mut failed) = (0, 0, 0);
    for &(index, status, _) in &outcomes {
        match status {
            202 => {
                accepted += 1;
                if let Some(post) = plan.posts.get(index) {
                    *acked.entry(post.key).or_default() += 1;
                }
            }
            200 => duplicates += 1,
            _ => failed += 1,
        }
    }
    let mut file = std::io::BufWriter::new(
        std::fs::File::create(&args.acked)
            .with_context(|| format!("cannot create {}", args.acked.display()))?,
    );
    for key in acked.keys() {
        if let Some((stream_id, event_type)) = plan.keys.get(*key) {
            writeln!(file, "{stream_id}\t{event_type}")?;
        }
    }
    file.flush()?;
    let unique_keys = plan
        .posts
        .iter()
        .map(|p| p.key)
        .collect::<std::collections::HashSet<_>>()
        .len();
    let summary = Summary {
        client: args.client,
        connections: args.connections,
        sent: outcomes.len(),
        unique_keys,
        accepted,
        duplicates,
        errors: failed,
        error_samples,
        acked_twice: acked.values().filter(|&&n| n > 1).count(),
        seconds,
        cpu_seconds,
        latencies_us: outcomes
            .iter()
            .map(|o| u64::try_from(o.2.as_micros()).unwrap_or(u64::MAX))
            .collect(),
    };
    println!("{}", serde_json::to_string(&summary)?);
    Ok(())
}

/// One connection's loop: take the next webhook, post it, record the answer.
async fn worker(
    args: &LoadgenArgs,
    plan: &Plan,
    next: &AtomicUsize,
    errors: &AtomicUsize,
    started: Instant,
) -> (Vec<Outcome>, Vec<String>) {
    let mut outcomes = Vec::new();
    let mut samples = Vec::new();
    let mut client = Client::new(args);
    loop {
        if started.elapsed() > DEADLINE || errors.load(Ordering::Relaxed) > MAX_ERRORS {
            break;
        }
        let index = next.fetch_add(1, Ordering::Relaxed);
        let Some(post) = plan.posts.get(index) else {
            break;
        };
        let sent = Instant::now();
        let status = match client.post(args, post).await {
            Ok(status) => status,
            Err(error) => {
                errors.fetch_add(1, Ordering::Relaxed);
                if samples.len() < MAX_ERROR_SAMPLES {
                    samples.push(format!("{error:#}"));
                }
                0
            }
        };
        outcomes.push((index, status, sent.elapsed()));
    }
    (outcomes, samples)
}

/// Either client, connected lazily.
enum Client {
    Raw(Option<RawConnection>),
    Reqwest(Option<reqwest::Client>, String),
}

impl Client {
    fn new(args: &LoadgenArgs) -> Client {
        match args.client {
            ClientKind::Raw => Client::Raw(None),
            ClientKind::Reqwest => {
                Client::Reqwest(None, format!("http://{}{}", args.addr, args.path))
            }
        }
    }

    /// Posts one webhook and returns the HTTP status. A failed connection is dropped and the
    /// next post opens a new one.
    async fn post(&mut self, args: &LoadgenArgs, post: &Post) -> anyhow::Result<u16> {
        match self {
            Client::Raw(slot) => {
                let connection = match slot {
                    Some(connection) => connection,
                    None => slot.insert(RawConnection::connect(args.addr).await?),
                };
                let result = connection.exchange(&post.request).await;
                if !matches!(result, Ok((_, true))) {
                    *slot = None;
                }
                result.map(|(status, _)| status)
            }
            Client::Reqwest(slot, url) => {
                let client = match slot {
                    Some(client) => client,
                    None => slot.insert(
                        reqwest::Client::builder()
                            .http1_only()
                            .tcp_nodelay(true)
                            .pool_max_idle_per_host(1)
                            .timeout(Duration::from_secs(60))
                            .build()?,
                    ),
                };
                let response = client
                    .post(url.as_str())
                    .header("content-type", "application/json")
                    .header("user-agent", "calltrail-bench")
                    .body(post.body.clone())
                    .send()
                    .await?;
                let status = response.status().as_u16();
                response.bytes().await?;
                Ok(status)
            }
        }
    }
}

/// A keep-alive HTTP/1.1 connection that sends whole requests and reads `Content-Length`
/// responses.
struct RawConnection {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl RawConnection {
    async fn connect(addr: SocketAddr) -> anyhow::Result<RawConnection> {
        let stream = tokio::time::timeout(Duration::from_secs(10), TcpStream::connect(addr))
            .await
            .context("connect timed out")?
            .with_context(|| format!("cannot connect to {addr}"))?;
        // The request goes out in one write; no Nagle delay on either side.
        stream.set_nodelay(true)?;
        Ok(RawConnection {
            stream,
            buffer: Vec::with_capacity(4096),
        })
    }

    /// Sends one request, reads its response: `(status, keep_alive)`.
    async fn exchange(&mut self, request: &[u8]) -> anyhow::Result<(u16, bool)> {
        tokio::time::timeout(Duration::from_secs(60), self.exchange_inner(request))
            .await
            .context("no answer within 60 s")?
    }

    async fn exchange_inner(&mut self, request: &[u8]) -> anyhow::Result<(u16, bool)> {
        self.stream
            .write_all(request)
            .await
            .context("cannot send the request")?;
        self.buffer.clear();
        let mut chunk = [0_u8; 4096];
        let head_end = loop {
            if let Some(at) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at;
            }
            anyhow::ensure!(
                self.buffer.len() < 64 * 1024,
                "response head larger than 64 KiB"
            );
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .context("cannot read the response")?;
            anyhow::ensure!(n > 0, "the server closed the connection");
            self.buffer
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        };
        let head = std::str::from_utf8(self.buffer.get(..head_end).unwrap_or_default())
            .context("response head is not UTF-8")?;
        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or_default();
        let status: u16 = status_line
            .split_whitespace()
            .nth(1)
            .and_then(|code| code.parse().ok())
            .with_context(|| format!("bad status line {status_line:?}"))?;
        let mut length = 0_usize;
        let mut keep_alive = status_line.starts_with("HTTP/1.1");
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                length = value.parse().context("bad Content-Length")?;
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                anyhow::bail!("Transfer-Encoding {value} is not supported by the raw client");
            } else if name.eq_ignore_ascii_case("connection") {
                keep_alive = !value.eq_ignore_ascii_case("close");
            }
        }
        let total = head_end + 4 + length;
        while self.buffer.len() < total {
            let n = self
                .stream
                .read(&mut chunk)
                .await
                .context("cannot read the response body")?;
            anyhow::ensure!(n > 0, "the server closed the connection mid-body");
            self.buffer
                .extend_from_slice(chunk.get(..n).unwrap_or_default());
        }
        anyhow::ensure!(
            self.buffer.len() == total,
            "unexpected bytes after the response"
        );
        Ok((status, keep_alive))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn args(webhooks: usize) -> LoadgenArgs {
        LoadgenArgs::parse(
            [
                "--addr",
                "127.0.0.1:9",
                "--path",
                "/p",
                "--webhooks",
                &webhooks.to_string(),
                "--acked",
                "/dev/null",
            ]
            .into_iter()
            .map(str::to_owned),
        )
        .unwrap()
    }

    #[test]
    fn a_plan_has_the_count_asked_and_about_three_percent_duplicates() {
        let plan = Plan::build(&args(20_000)).unwrap();
        assert_eq!(plan.posts.len(), 20_000);
        let unique = plan
            .posts
            .iter()
            .map(|p| p.key)
            .collect::<std::collections::HashSet<_>>()
            .len();
        let duplicates = 20_000 - unique;
        assert!((400..=800).contains(&duplicates), "{duplicates} duplicates");
        let first = plan.posts.first().unwrap();
        assert!(first.request.starts_with(b"POST /p HTTP/1.1\r\n"));
        assert!(first.request.ends_with(&first.body));
    }

    #[test]
    fn arguments_round_trip() {
        let a = args(5);
        let b = LoadgenArgs::parse(a.to_args().into_iter().skip(1)).unwrap();
        assert_eq!(
            (b.addr, b.path, b.webhooks, b.client),
            (a.addr, a.path, a.webhooks, a.client)
        );
    }
}
