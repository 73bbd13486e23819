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
//! With `--mix mixed` the calls are of all five providers ([`MixedWorkload`]): `--path` holds
//! `{provider}`, and every webhook but Bolna's carries its provider's signature, made with
//! [`bench_secret`] (and for Twilio over `--public-url` + path) when the plan is built, before
//! the clock starts: a run must end within the 5-minute window of Vapi's and Retell's.
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

use calltrail_testkit::signing;

use crate::workload::{bench_secret, call_id, phone, CallKind, Mix, Rng, Workload};

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
    /// Request path, e.g. `/v1/webhooks/bolna/<token>` (`{provider}` in it for `mixed`).
    pub path: String,
    /// Which calls.
    pub mix: Mix,
    /// The base URL Twilio's signatures cover (`CALLTRAIL_PUBLIC_URL` of the server).
    pub public_url: String,
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
            "--mix".into(),
            self.mix.as_str().into(),
            "--public-url".into(),
            self.public_url.clone(),
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
            mix: Mix::Bolna,
            public_url: String::new(),
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
                "--mix" => args.mix = value.parse()?,
                "--public-url" => args.public_url = value,
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
    /// The request path.
    path: String,
    /// Its headers besides `Host` and `Content-Length` (content type, signature, user agent).
    headers: Vec<signing::Header>,
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
        match args.mix {
            Mix::Bolna => Self::build_bolna(args),
            Mix::Mixed => Self::build_mixed(args),
        }
    }

    fn build_bolna(args: &LoadgenArgs) -> anyhow::Result<Plan> {
        let workload = Workload::new()?;
        let mut rng = Rng::new(args.seed);
        let mut plan = Plan {
            posts: Vec::with_capacity(args.webhooks),
            keys: Vec::new(),
        };
        let headers = vec![("content-type", "application/json".to_owned())];
        let mut call = 0_u64;
        while plan.posts.len() < args.webhooks {
            let steps = workload.steps(CallKind::of_call(call));
            let (id, number) = (call_id(&args.run, call), phone(call));
            let first_key = plan.keys.len();
            plan.keys
                .extend(steps.iter().map(|s| (id.clone(), s.status.clone())));
            for i in call_order(&mut rng, steps.len(), args.duplicates_per_mille) {
                let Some(step) = steps.get(i) else { continue };
                let body = step.payload.render(&id, &number).into_bytes();
                plan.push(
                    args,
                    first_key + i,
                    args.path.clone(),
                    headers.clone(),
                    body,
                )?;
            }
            call += 1;
        }
        plan.posts.truncate(args.webhooks);
        Ok(plan)
    }

    fn build_mixed(args: &LoadgenArgs) -> anyhow::Result<Plan> {
        let workload = crate::workload::MixedWorkload::new()?;
        let mut rng = Rng::new(args.seed);
        let mut plan = Plan {
            posts: Vec::with_capacity(args.webhooks),
            keys: Vec::new(),
        };
        let signed_at = signing::now_millis();
        let mut call = 0_u64;
        while plan.posts.len() < args.webhooks {
            let (provider, steps) = workload.call(call);
            let (id, number) = (call_id(&args.run, call), phone(call));
            let path = args.path.replace("{provider}", provider.as_str());
            let url = format!("{}{path}", args.public_url);
            let secret = bench_secret(provider);
            let first_key = plan.keys.len();
            plan.keys
                .extend(steps.iter().map(|s| (id.clone(), s.event_type.clone())));
            for i in call_order(&mut rng, steps.len(), args.duplicates_per_mille) {
                let Some(step) = steps.get(i) else { continue };
                let body = step.render(&id, &number);
                let headers = signing::sign(provider.as_str(), &secret, signed_at, &url, &body);
                plan.push(args, first_key + i, path.clone(), headers, body)?;
            }
            call += 1;
        }
        plan.posts.truncate(args.webhooks);
        Ok(plan)
    }

    /// Adds one post, its whole HTTP/1.1 request built now.
    fn push(
        &mut self,
        args: &LoadgenArgs,
        key: usize,
        path: String,
        headers: Vec<signing::Header>,
        body: Vec<u8>,
    ) -> anyhow::Result<()> {
        let mut request = Vec::with_capacity(body.len() + 300);
        write!(request, "POST {path} HTTP/1.1\r\nHost: {}\r\n", args.addr)?;
        for (name, value) in &headers {
            write!(request, "{name}: {value}\r\n")?;
        }
        write!(
            request,
            "User-Agent: calltrail-bench\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        request.extend_from_slice(&body);
        self.posts.push(Post {
            key,
            path,
            headers,
            body,
            request,
        });
        Ok(())
    }
}

/// The order one call's `n` webhooks are posted in: each once, some twice, shuffled.
fn call_order(rng: &mut Rng, n: usize, duplicates_per_mille: u64) -> Vec<usize> {
    let mut order: Vec<usize> = (0..n).collect();
    for i in 0..n {
        if rng.per_mille(duplicates_per_mille) {
            order.push(i);
        }
    }
    rng.shuffle(&mut order);
    order
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
    Reqwest(Option<reqwest::Client>),
}

impl Client {
    fn new(args: &LoadgenArgs) -> Client {
        match args.client {
            ClientKind::Raw => Client::Raw(None),
            ClientKind::Reqwest => Client::Reqwest(None),
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
            Client::Reqwest(slot) => {
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
                let mut request = client
                    .post(format!("http://{}{}", args.addr, post.path))
                    .header("user-agent", "calltrail-bench");
                for (name, value) in &post.headers {
                    request = request.header(*name, value);
                }
                let response = request.body(post.body.clone()).send().await?;
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
    fn a_mixed_plan_signs_every_provider_but_bolna_on_its_own_path() {
        let mut args = args(2_000);
        args.mix = Mix::Mixed;
        args.path = "/v1/webhooks/{provider}/tok".to_owned();
        args.public_url = "http://127.0.0.1:9".to_owned();
        let plan = Plan::build(&args).unwrap();
        assert_eq!(plan.posts.len(), 2_000);
        let mut providers = std::collections::BTreeSet::new();
        for post in &plan.posts {
            let provider = post.path.split('/').nth(3).unwrap().to_owned();
            let signed = post.headers.iter().any(|(n, _)| n.contains("signature"));
            assert_eq!(signed, provider != "bolna", "{provider}");
            let head =
                String::from_utf8_lossy(&post.request[..post.request.len() - post.body.len()])
                    .into_owned();
            assert!(
                head.starts_with(&format!("POST {} HTTP/1.1\r\n", post.path)),
                "{head}"
            );
            providers.insert(provider);
        }
        assert_eq!(providers.len(), 5, "{providers:?}");
    }

    #[test]
    fn arguments_round_trip() {
        let a = args(5);
        let b = LoadgenArgs::parse(a.to_args().into_iter().skip(1)).unwrap();
        assert_eq!(
            (b.addr, b.path, b.webhooks, b.client, b.mix),
            (a.addr, a.path, a.webhooks, a.client, a.mix)
        );
    }
}
