//! [`MockResponses`]: a real local HTTP/1.1 server speaking OpenAI's Responses API, the one fake
//! the tests allow for a paid API (used by the analysis tests, the binary's tests and the
//! benchmark).
//!
//! ```ignore
//! let mock = MockResponses::start().await;
//! mock.push(Behaviour::RateLimited { retry_after_secs: Some(1) });
//! mock.push(Behaviour::fixture());
//! let client = OpenAiClient::new(mock.openai_config())?;
//! // … run the client, then inspect mock.requests()
//! ```
//!
//! It binds 127.0.0.1:0, keeps connections alive like OpenAI does, answers `POST /v1/responses`
//! with the behaviour of the first [`MockResponses::respond_when`] rule its input matches, else
//! the next queued [`Behaviour`] (or the default one when the queue is empty) after the
//! configured latency, answers any other path with an OpenAI-shaped 404 without touching the
//! queue, and records every request. It stops when dropped.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use calltrail_analysis::{ApiKey, Backoff, OpenAiConfig};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::{JoinHandle, JoinSet};

/// The model's answer in `fixtures/openai/response-completed.json` (a Hot lead, Acme Logistics).
pub const FIXTURE_OUTPUT_TEXT: &str = r#"{"total_score":82,"intent_level":"high","intent_score":4,"urgency_level":"medium","urgency_score":3,"budget_constraint":"not_discussed","budget_score":2,"fit_alignment":"strong","fit_score":4,"engagement_health":"high","engagement_score":4,"lead_status_tag":"Hot","reasoning":{"intent":"Prospect confirmed an active CRM evaluation to replace spreadsheets.","urgency":"Pain is current but no hard deadline was stated; demo accepted for this week.","budget":"Budget was not discussed; prospect asked for pricing, which suggests cost sensitivity but no stated limit.","fit":"Twelve-rep outbound sales team matches the mid-market target profile.","engagement":"Short, cooperative answers; volunteered team size and email without prompting.","cta_behavior":"Requested pricing by email and accepted a Thursday 3 PM demo slot."},"extraction":{"company_name":"Acme Logistics","name":"Rohan Mehta","email_address":"rohan@acme-logistics.example","smartnotification":"Hot lead: Acme Logistics (12 reps) booked a demo for Thu 15:00 and wants pricing emailed today."},"cta_pricing_clicked":true,"cta_demo_clicked":true,"cta_followup_clicked":false,"cta_sample_clicked":false,"cta_escalated_to_human":false,"demo_scheduled_at":"2025-10-09T15:00:00-07:00"}"#;
/// `usage.total_tokens` of the fixture response.
pub const FIXTURE_TOTAL_TOKENS: i64 = 2185;
/// The `model` the mock reports.
pub const MOCK_MODEL: &str = "gpt-4o-mini-2024-07-18";
/// The API key [`MockResponses::openai_config`] sends.
pub const TEST_API_KEY: &str = "sk-test-0123456789";

/// A client configuration for `base_url` with test timings: [`TEST_API_KEY`], 2 s per request,
/// the default 3 retries 10 → 50 ms apart, server hints honoured up to 2 s.
pub fn openai_config(base_url: &str) -> OpenAiConfig {
    let mut config = OpenAiConfig::new(ApiKey::new(TEST_API_KEY));
    config.base_url = base_url.to_owned();
    config.timeout = Duration::from_secs(2);
    config.backoff = Backoff::new(Duration::from_millis(10), Duration::from_millis(50));
    config.max_retry_after = Duration::from_secs(2);
    config
}

/// What the server does with one `POST /v1/responses`.
#[derive(Debug, Clone)]
pub enum Behaviour {
    /// 200, a completed response whose single `output_text` part is `output_text`.
    Success {
        /// The model's text.
        output_text: String,
        /// `usage.total_tokens`.
        total_tokens: i64,
    },
    /// 429 `rate_limit_exceeded`, with `Retry-After` seconds when given.
    RateLimited {
        /// The `Retry-After` header.
        retry_after_secs: Option<u64>,
    },
    /// 429 `insufficient_quota` (final).
    InsufficientQuota,
    /// 500 `server_error`.
    ServerError,
    /// Waits this long, then answers like [`Behaviour::fixture`] (usually to a client gone by then).
    Hang(Duration),
    /// 200, a completed response whose text is prose, not JSON.
    NotJson,
    /// 404 "prompt not found".
    PromptNotFound,
    /// This status and JSON body.
    Status(u16, String),
    /// Full control: status, extra headers, body.
    Respond {
        /// HTTP status.
        status: u16,
        /// Extra headers.
        headers: Vec<(String, String)>,
        /// Body (sent as `application/json`).
        body: String,
    },
}

impl Behaviour {
    /// A success carrying the fixture's answer and token count.
    pub fn fixture() -> Self {
        Behaviour::Success {
            output_text: FIXTURE_OUTPUT_TEXT.to_owned(),
            total_tokens: FIXTURE_TOTAL_TOKENS,
        }
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct RecordedRequest {
    /// HTTP method.
    pub method: String,
    /// Request target, e.g. `/v1/responses`.
    pub path: String,
    /// Headers, names lowercased, in order (test keys only: the server never logs them).
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON (`Null` if it is not JSON).
    pub body: Value,
    /// Which TCP connection carried it (0, 1, …), to check connection reuse.
    pub connection: usize,
}

impl RecordedRequest {
    /// The first header of this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// `prompt.id` of the body.
    pub fn prompt_id(&self) -> Option<&str> {
        self.body.pointer("/prompt/id").and_then(Value::as_str)
    }

    /// The `content` strings of the body's `input` messages, joined by newlines.
    pub fn input_text(&self) -> String {
        let items = self.body.get("input").and_then(Value::as_array);
        items
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("content").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

struct State {
    rules: Vec<(String, Behaviour)>,
    queue: VecDeque<Behaviour>,
    default: Behaviour,
    latency: Duration,
    requests: Vec<RecordedRequest>,
}

/// The running server; dropping it stops it.
pub struct MockResponses {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl MockResponses {
    /// Starts a server on 127.0.0.1:0 whose default behaviour is [`Behaviour::fixture`].
    pub async fn start() -> Self {
        match Self::try_start().await {
            Ok(mock) => mock,
            Err(e) => panic!("cannot bind the mock Responses API server on 127.0.0.1: {e}"),
        }
    }

    /// Like [`MockResponses::start`], returning the bind error.
    pub async fn try_start() -> std::io::Result<Self> {
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let state = Arc::new(Mutex::new(State {
            rules: Vec::new(),
            queue: VecDeque::new(),
            default: Behaviour::fixture(),
            latency: Duration::ZERO,
            requests: Vec::new(),
        }));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(accept_loop(listener, move |stream, id| {
            serve_connection(stream, id, Arc::clone(&shared))
        }));
        Ok(MockResponses { addr, state, task })
    }

    /// `http://127.0.0.1:PORT/v1`, to use as `OPENAI_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// [`openai_config`] for this server.
    pub fn openai_config(&self) -> OpenAiConfig {
        openai_config(&self.base_url())
    }

    /// Queues a behaviour for the next unanswered request.
    pub fn push(&self, behaviour: Behaviour) {
        self.lock().queue.push_back(behaviour);
    }

    /// Answers every request whose input text contains `needle` with `behaviour`, ahead of
    /// the queue (e.g. to make one call's analyses fail while others succeed).
    pub fn respond_when(&self, needle: &str, behaviour: Behaviour) {
        self.lock().rules.push((needle.to_owned(), behaviour));
    }

    /// Sets what to do when the queue is empty.
    pub fn set_default(&self, behaviour: Behaviour) {
        self.lock().default = behaviour;
    }

    /// Sets a delay before every answer.
    pub fn set_latency(&self, latency: Duration) {
        self.lock().latency = latency;
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.lock().requests.clone()
    }

    /// How many requests were received.
    pub fn request_count(&self) -> usize {
        self.lock().requests.len()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for MockResponses {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A fake's shared state, even after a panicking test thread poisoned it.
pub(crate) fn lock<T>(state: &Mutex<T>) -> MutexGuard<'_, T> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// A fake server's accept loop: each connection served by `serve(stream, its number)`. The
/// connections are owned here, so aborting this task aborts every connection too.
pub(crate) async fn accept_loop<F, Fut>(listener: TcpListener, serve: F)
where
    F: Fn(TcpStream, usize) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let mut connections = JoinSet::new();
    let mut next_id = 0usize;
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => {
                    connections.spawn(serve(stream, next_id));
                    next_id = next_id.wrapping_add(1);
                }
                Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
            },
            Some(_) = connections.join_next(), if !connections.is_empty() => {}
        }
    }
}

async fn serve_connection(mut stream: TcpStream, connection: usize, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buf, connection).await {
        let is_responses = request.method == "POST" && request.path == "/v1/responses";
        let text = request.input_text();
        let (behaviour, latency, number) = {
            let mut s = lock(&state);
            s.requests.push(request);
            let rule = s
                .rules
                .iter()
                .find(|(needle, _)| text.contains(needle.as_str()))
                .map(|(_, b)| b.clone());
            let behaviour = if let (true, Some(rule)) = (is_responses, rule) {
                rule
            } else if is_responses {
                s.queue.pop_front().unwrap_or_else(|| s.default.clone())
            } else {
                Behaviour::Status(
                    404,
                    error_body(
                        "Invalid URL: this mock serves POST /v1/responses",
                        "invalid_request_error",
                        None,
                    ),
                )
            };
            (behaviour, s.latency, s.requests.len())
        };
        tokio::time::sleep(latency).await;
        let bytes = render(behaviour, number).await;
        if stream.write_all(&bytes).await.is_err() {
            return;
        }
    }
}

/// Reads one request; `None` on EOF or anything unreadable (the connection is then closed).
pub(crate) async fn read_request(
    stream: &mut TcpStream,
    buf: &mut Vec<u8>,
    connection: usize,
) -> Option<RecordedRequest> {
    const MAX: usize = 16 * 1024 * 1024;
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i;
        }
        if buf.len() > MAX || !read_more(stream, buf).await {
            return None;
        }
    };
    let head = String::from_utf8_lossy(buf.get(..head_end)?).into_owned();
    let mut lines = head.split("\r\n");
    let mut first = lines.next()?.split(' ');
    let (method, path) = (first.next()?.to_owned(), first.next()?.to_owned());
    let headers: Vec<(String, String)> = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .iter()
        .find(|(n, _)| n == "content-length")
        .and_then(|(_, v)| v.parse().ok())
        .unwrap_or(0);
    let total = head_end.checked_add(4)?.checked_add(length)?;
    while buf.len() < total {
        if total > MAX || !read_more(stream, buf).await {
            return None;
        }
    }
    let body = serde_json::from_slice(buf.get(head_end + 4..total)?).unwrap_or(Value::Null);
    buf.drain(..total);
    Some(RecordedRequest {
        method,
        path,
        headers,
        body,
        connection,
    })
}

async fn read_more(stream: &mut TcpStream, buf: &mut Vec<u8>) -> bool {
    let mut chunk = [0u8; 8192];
    match stream.read(&mut chunk).await {
        Ok(0) | Err(_) => false,
        Ok(n) => {
            buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
            true
        }
    }
}

async fn render(behaviour: Behaviour, number: usize) -> Vec<u8> {
    let request_id = format!("req_mock_{number}");
    let (status, mut headers, body) = match behaviour {
        Behaviour::Success {
            output_text,
            total_tokens,
        } => (200, vec![], response_body(number, &output_text, total_tokens)),
        Behaviour::NotJson => (
            200,
            vec![],
            response_body(number, "Sure! This lead sounds hot: they want a demo on Thursday.", 321),
        ),
        Behaviour::Hang(wait) => {
            tokio::time::sleep(wait).await;
            (200, vec![], response_body(number, FIXTURE_OUTPUT_TEXT, FIXTURE_TOTAL_TOKENS))
        }
        Behaviour::RateLimited { retry_after_secs } => (
            429,
            retry_after_secs
                .map(|s| vec![("retry-after".to_owned(), s.to_string())])
                .unwrap_or_default(),
            error_body(
                "Rate limit reached for gpt-4o-mini on tokens per min (TPM). Please try again later.",
                "tokens",
                Some("rate_limit_exceeded"),
            ),
        ),
        Behaviour::InsufficientQuota => (
            429,
            vec![],
            error_body(
                "You exceeded your current quota, please check your plan and billing details.",
                "insufficient_quota",
                Some("insufficient_quota"),
            ),
        ),
        Behaviour::ServerError => (
            500,
            vec![],
            error_body("The server had an error while processing your request.", "server_error", None),
        ),
        Behaviour::PromptNotFound => (
            404,
            vec![],
            error_body("Prompt not found.", "invalid_request_error", None),
        ),
        Behaviour::Status(status, body) => (status, vec![], body),
        Behaviour::Respond {
            status,
            headers,
            body,
        } => (status, headers, body),
    };
    headers.push(("x-request-id".to_owned(), request_id));
    let mut out = format!(
        "HTTP/1.1 {status} Mock\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
        body.len()
    );
    for (name, value) in headers {
        out.push_str(&format!("{name}: {value}\r\n"));
    }
    out.push_str("\r\n");
    out.push_str(&body);
    out.into_bytes()
}

/// A completed Response object shaped like the fixture.
fn response_body(number: usize, output_text: &str, total_tokens: i64) -> String {
    json!({
        "id": format!("resp_mock_{number}"),
        "object": "response",
        "created_at": 1_759_914_939,
        "status": "completed",
        "error": null,
        "incomplete_details": null,
        "model": MOCK_MODEL,
        "output": [{
            "id": format!("msg_mock_{number}"),
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [{ "type": "output_text", "text": output_text, "annotations": [], "logprobs": [] }],
        }],
        "store": false,
        "usage": {
            "input_tokens": total_tokens / 2,
            "output_tokens": total_tokens - total_tokens / 2,
            "total_tokens": total_tokens,
        },
    })
    .to_string()
}

fn error_body(message: &str, kind: &str, code: Option<&str>) -> String {
    json!({ "error": { "message": message, "type": kind, "param": null, "code": code } })
        .to_string()
}
