//! [`MockProviderApi`]: a real local HTTP/1.1 server standing in for a provider's call API
//! (Bolna, Vapi, Retell, Twilio, ElevenLabs) in the reconciliation tests — the paid API is the
//! one thing the tests fake. It reuses [`MockResponses`](crate::MockResponses)' request reader.
//!
//! ```ignore
//! let api = MockProviderApi::start().await;
//! api.set("/executions/abc", Reply::json(200, json!({"id": "abc", "status": "completed"})));
//! api.push("/executions/abc", Reply::json(429, json!({})).header("retry-after", "1"));
//! // … point a credential's base URL at api.base_url(), run, then inspect api.requests()
//! ```
//!
//! A path answers its queued replies first (each once), then the reply [`MockProviderApi::set`]
//! gave it, else a JSON 404. Every request is recorded with the moment it arrived.

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use serde_json::Value;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

use crate::responses::{accept_loop, lock, read_request};

/// One answer.
#[derive(Debug, Clone)]
pub struct Reply {
    /// HTTP status.
    pub status: u16,
    /// Extra headers.
    pub headers: Vec<(String, String)>,
    /// The body as sent.
    pub body: String,
    /// Wait this long before answering (a hang, for timeouts).
    pub delay: Duration,
}

impl Reply {
    /// This status with a JSON body.
    pub fn json(status: u16, body: Value) -> Self {
        Self::text(status, &body.to_string())
    }

    /// This status with this body, verbatim (garbage included).
    pub fn text(status: u16, body: &str) -> Self {
        Reply {
            status,
            headers: Vec::new(),
            body: body.to_owned(),
            delay: Duration::ZERO,
        }
    }

    /// The same, with one more header.
    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same, answered only after `delay`.
    pub fn after(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// One request the server received.
#[derive(Debug, Clone)]
pub struct ProviderRequest {
    /// HTTP method.
    pub method: String,
    /// Request target.
    pub path: String,
    /// Headers, names lowercased.
    pub headers: Vec<(String, String)>,
    /// When it arrived.
    pub at: Instant,
}

impl ProviderRequest {
    /// The first header of this (case-insensitive) name.
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Default)]
struct State {
    replies: HashMap<String, Reply>,
    queued: HashMap<String, VecDeque<Reply>>,
    requests: Vec<ProviderRequest>,
}

/// The running server; dropping it stops it.
pub struct MockProviderApi {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
    task: JoinHandle<()>,
}

impl MockProviderApi {
    /// Starts a server on 127.0.0.1:0 that knows no call yet.
    pub async fn start() -> Self {
        let listener = match TcpListener::bind("127.0.0.1:0").await {
            Ok(listener) => listener,
            Err(e) => panic!("cannot bind the fake provider API on 127.0.0.1: {e}"),
        };
        let addr = listener
            .local_addr()
            .expect("a bound listener has an address");
        let state = Arc::new(Mutex::new(State::default()));
        let shared = Arc::clone(&state);
        let task = tokio::spawn(accept_loop(listener, move |stream, id| {
            serve_connection(stream, id, Arc::clone(&shared))
        }));
        MockProviderApi { addr, state, task }
    }

    /// `http://127.0.0.1:PORT`, a credential's `--base-url`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// How `path` answers (after its queued replies).
    pub fn set(&self, path: &str, reply: Reply) {
        self.lock().replies.insert(path.to_owned(), reply);
    }

    /// Queues a one-time answer for `path`.
    pub fn push(&self, path: &str, reply: Reply) {
        self.lock()
            .queued
            .entry(path.to_owned())
            .or_default()
            .push_back(reply);
    }

    /// Every request so far, in order.
    pub fn requests(&self) -> Vec<ProviderRequest> {
        self.lock().requests.clone()
    }

    /// Requests to `path` so far.
    pub fn count(&self, path: &str) -> usize {
        self.lock()
            .requests
            .iter()
            .filter(|r| r.path == path)
            .count()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        lock(&self.state)
    }
}

impl Drop for MockProviderApi {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve_connection(mut stream: TcpStream, connection: usize, state: Arc<Mutex<State>>) {
    let mut buf = Vec::new();
    while let Some(request) = read_request(&mut stream, &mut buf, connection).await {
        let reply = {
            let mut s = lock(&state);
            s.requests.push(ProviderRequest {
                method: request.method.clone(),
                path: request.path.clone(),
                headers: request.headers.clone(),
                at: Instant::now(),
            });
            let queued = s
                .queued
                .get_mut(&request.path)
                .and_then(VecDeque::pop_front);
            queued
                .or_else(|| s.replies.get(&request.path).cloned())
                .unwrap_or_else(|| Reply::text(404, r#"{"message":"Not Found"}"#))
        };
        tokio::time::sleep(reply.delay).await;
        let mut out = format!(
            "HTTP/1.1 {} Fake\r\ncontent-type: application/json\r\ncontent-length: {}\r\n",
            reply.status,
            reply.body.len()
        );
        for (name, value) in &reply.headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        out.push_str(&reply.body);
        if stream.write_all(out.as_bytes()).await.is_err() {
            return;
        }
    }
}
