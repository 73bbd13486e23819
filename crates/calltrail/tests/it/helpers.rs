//! `spawn_app` and a client that reads like a provider and a user.

use std::time::Duration;

use calltrail::startup::{Application, Settings};
use calltrail_projections::ReadStore;
use calltrail_testkit::TestDb;
pub use calltrail_testkit::{fixtures, Tenant};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

/// The Bolna fixtures' agent id.
pub const AGENT: &str = "9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18";
pub const SUCCESS: &str = "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7";
pub const NO_ANSWER: &str = "d7a9e3b2-1f64-4c8a-b5e0-6a2f9c81d437";
pub const BUSY: &str = "5c0e8f17-a2d3-4b96-8e41-f7b3d2a90c65";

pub struct TestApp {
    pub address: String,
    pub db: TestDb,
    pub store: ReadStore,
    pub client: reqwest::Client,
    shutdown: CancellationToken,
    server: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(|_| {}).await
}

pub async fn spawn_app_with(configure: impl FnOnce(&mut Settings)) -> TestApp {
    spawn_app_on(TestDb::new().await, configure).await
}

/// The app on a database the caller made (e.g. to route it through a [`calltrail_testkit::DbProxy`]).
pub async fn spawn_app_on(db: TestDb, configure: impl FnOnce(&mut Settings)) -> TestApp {
    let mut settings = Settings::for_tests(db.url());
    configure(&mut settings);
    let app = Application::build(settings)
        .await
        .expect("the application builds");
    let address = format!("http://127.0.0.1:{}", app.port());
    let shutdown = app.shutdown_token();
    let server = tokio::spawn(app.run_until_stopped());
    let store = ReadStore::connect(db.url(), 4).unwrap();
    TestApp {
        address,
        db,
        store,
        client: reqwest::Client::new(),
        shutdown,
        server: Some(server),
    }
}

/// A fixture payload with its execution id (and optionally other fields) replaced.
pub fn with_fields(body: &[u8], fields: &[(&str, Value)]) -> Vec<u8> {
    let mut value: Value = serde_json::from_slice(body).unwrap();
    for (key, field) in fields {
        value[*key] = field.clone();
    }
    serde_json::to_vec(&value).unwrap()
}

/// Runs `calltrail` with `args` on the database at `url` (panicking with its stderr when it
/// fails) and reads the JSON objects it printed, one a line.
pub fn calltrail_json_lines(url: &str, args: &[&str]) -> Vec<Value> {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "calltrail {args:?}: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// A metric's value in a `/metrics` text: the sample line named exactly `name`.
pub fn metric_value(text: &str, name: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.split(' ').next() == Some(name))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

impl TestApp {
    /// The text `/metrics` answers.
    pub async fn metrics(&self) -> String {
        self.client
            .get(format!("{}/metrics", self.address))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// A new tenant with a unique e-mail.
    pub async fn create_tenant(&self) -> Tenant {
        calltrail_testkit::create_tenant(&self.store, |_| {}).await
    }

    pub async fn add_agent(&self, tenant: &Tenant, agent: &str) {
        self.store
            .tenancy()
            .add_agent(tenant.user_id, "bolna", agent, None)
            .await
            .unwrap();
    }

    pub async fn post_bolna(&self, token: &str, body: &[u8]) -> reqwest::Response {
        self.client
            .post(format!("{}/v1/webhooks/bolna/{token}", self.address))
            .header("content-type", "application/json")
            .body(body.to_vec())
            .send()
            .await
            .expect("the server answers")
    }

    /// Posts and returns (status, JSON body).
    pub async fn post_bolna_json(&self, token: &str, body: &[u8]) -> (u16, Value) {
        let response = self.post_bolna(token, body).await;
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    pub async fn get(&self, tenant: &Tenant, path: &str) -> (u16, Value) {
        let response = self
            .client
            .get(format!("{}{path}", self.address))
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    /// Polls `GET path` until `ready` holds for its body, or fails after 15 s.
    pub async fn wait_for(
        &self,
        tenant: &Tenant,
        path: &str,
        ready: impl Fn(u16, &Value) -> bool,
    ) -> Value {
        self.wait_for_within(Duration::from_secs(15), tenant, path, ready)
            .await
    }

    /// Polls `GET path` until `ready` holds for its body, or fails after `limit`.
    pub async fn wait_for_within(
        &self,
        limit: Duration,
        tenant: &Tenant,
        path: &str,
        ready: impl Fn(u16, &Value) -> bool,
    ) -> Value {
        let deadline = tokio::time::Instant::now() + limit;
        loop {
            let (status, body) = self.get(tenant, path).await;
            if ready(status, &body) {
                return body;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting on {path}: last {status} {body}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// Waits until the projector has applied every event in the log.
    pub async fn wait_until_projected(&self) {
        let pool = sqlx::PgPool::connect(self.db.url()).await.unwrap();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
        loop {
            let pending: i64 = sqlx::query_scalar(
                "SELECT count(*) FROM events e WHERE NOT EXISTS (
                   SELECT 1 FROM projector_checkpoints c
                    WHERE (e.txid::text::bigint, e.position) <= (c.txid, c.position))",
            )
            .fetch_one(&pool)
            .await
            .unwrap();
            if pending == 0 {
                break;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "{pending} events still unprojected"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        pool.close().await;
    }

    pub async fn call(&self, tenant: &Tenant, id: &str) -> Value {
        let (status, body) = self.get(tenant, &format!("/v1/calls/{id}")).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    pub async fn sql_count(&self, sql: &str) -> i64 {
        let pool = sqlx::PgPool::connect(self.db.url()).await.unwrap();
        let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
        pool.close().await;
        n
    }

    /// Shuts the application down gracefully (the database stays for inspection).
    pub async fn stop(&mut self) {
        self.shutdown.cancel();
        if let Some(server) = self.server.take() {
            server.await.unwrap().unwrap();
        }
    }
}

impl Drop for TestApp {
    fn drop(&mut self) {
        self.shutdown.cancel();
    }
}

/// A free local port (for a child `calltrail serve`).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A child `calltrail` process that is killed when dropped, so a failed test leaves no server
/// behind retrying a dropped database. Derefs to the [`std::process::Child`].
pub struct Server(pub std::process::Child);

impl Server {
    /// Spawns `command`.
    pub fn spawn(command: &mut std::process::Command) -> Self {
        Self(command.spawn().expect("calltrail starts"))
    }
}

impl std::ops::Deref for Server {
    type Target = std::process::Child;
    fn deref(&self) -> &Self::Target {
        &self.0
    }
}

impl std::ops::DerefMut for Server {
    fn deref_mut(&mut self) -> &mut Self::Target {
        &mut self.0
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

/// `calltrail serve --no-worker` as a child process on `port` (analysis workers would keep
/// appending analysis events while a drill compares read tables).
pub fn serve(url: &str, port: u16) -> Server {
    Server::spawn(&mut serve_command(url, port))
}

/// The command behind [`serve`], to add flags or environment before spawning it.
pub fn serve_command(url: &str, port: u16) -> std::process::Command {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"));
    configure_serve(&mut command, url, port);
    command
}

/// [`serve_command`] started with a soft open-files limit of `soft` (through `sh -c ulimit`),
/// as under a default login shell or service manager; the child's pid is the server's.
pub fn serve_command_with_open_files(url: &str, port: u16, soft: u64) -> std::process::Command {
    let mut command = std::process::Command::new("sh");
    command
        .arg("-c")
        .arg(format!(
            r#"ulimit -S -n {soft} 2>/dev/null; exec "$0" "$@""#
        ))
        .arg(env!("CARGO_BIN_EXE_calltrail"));
    configure_serve(&mut command, url, port);
    command
}

fn configure_serve(command: &mut std::process::Command, url: &str, port: u16) {
    command
        .args(["serve", "--no-worker"])
        .env("DATABASE_URL", url)
        .env("CALLTRAIL_BIND", format!("127.0.0.1:{port}"))
        .env("RUST_LOG", "warn")
        .env_remove("FAILPOINTS")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null());
}

/// Polls a child server's `/readyz` until it answers 200, or fails after 20 s.
pub async fn wait_ready(client: &reqwest::Client, port: u16) {
    wait_ready_within(client, port, Duration::from_secs(20)).await;
}

/// Polls a child server's `/readyz` until it answers 200, or fails after `limit`.
pub async fn wait_ready_within(client: &reqwest::Client, port: u16, limit: Duration) {
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        if let Ok(response) = client
            .get(format!("http://127.0.0.1:{port}/readyz"))
            .send()
            .await
        {
            if response.status().is_success() {
                return;
            }
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the server on port {port} did not become ready within {limit:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Every read table as comparable text, in a stable order, without the processing-time columns
/// (`updated_at`) that a replay does not reproduce.
const READ_TABLES: &str = "SELECT ARRAY[
    (SELECT string_agg(concat_ws('|', user_id, execution_id, agent_id, contact_id, phone_number,
            call_lifecycle_status, status, duration_seconds, credits_used, hangup_by, hangup_reason,
            call_answered_at, completed_at, created_at, not_connected_counted, last_position,
            batch_id, campaign_id, attribution, outcome, cost, cost_unit),
            ',' ORDER BY user_id, execution_id) FROM calls),
    (SELECT string_agg(concat_ws('|', id, phone_number, name, email, company, not_connected,
            auto_created_from_call_id, created_at), ',' ORDER BY id) FROM contacts),
    (SELECT string_agg(concat_ws('|', user_id, execution_id, md5(content), analysis_status,
            analysis_error, created_at), ',' ORDER BY user_id, execution_id) FROM transcripts),
    (SELECT string_agg(concat_ws('|', user_id, balance), ',' ORDER BY user_id) FROM credit_balances),
    (SELECT string_agg(concat_ws('|', kind, amount, balance_after, call_id, created_at, position),
            ',' ORDER BY position) FROM credit_transactions),
    (SELECT string_agg(concat_ws('|', execution_id, event_type, occurred_at, position),
            ',' ORDER BY position) FROM call_events),
    (SELECT string_agg(concat_ws('|', analysis_type, key, execution_id, position, total_score,
            lead_status_tag), ',' ORDER BY user_id, analysis_type, key) FROM lead_analytics),
    (SELECT string_agg(concat_ws('|', user_id, campaign_id, name, created_at, name_position),
            ',' ORDER BY user_id, campaign_id) FROM campaigns),
    (SELECT string_agg(concat_ws('|', user_id, campaign_id, phone_number, name, position),
            ',' ORDER BY user_id, campaign_id, phone_number) FROM campaign_recipients),
    (SELECT string_agg(concat_ws('|', user_id, provider, execution_id, campaign_id, position),
            ',' ORDER BY user_id, provider, execution_id) FROM call_attributions)]";
const READ_TABLE_NAMES: [&str; 10] = [
    "calls",
    "contacts",
    "transcripts",
    "credit_balances",
    "credit_transactions",
    "call_events",
    "lead_analytics",
    "campaigns",
    "campaign_recipients",
    "call_attributions",
];

/// Takes the read tables as the live projector left them, runs `calltrail replay`, and fails
/// with the first differing row unless the rebuilt tables are identical. Stop every projector
/// on the database first. Returns the number of calls compared.
pub async fn assert_read_tables_equal_replay(url: &str, what: &str) -> usize {
    let pool = sqlx::PgPool::connect(url).await.unwrap();
    let live: Vec<Option<String>> = sqlx::query_scalar(READ_TABLES)
        .fetch_one(&pool)
        .await
        .unwrap();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .arg("replay")
        .env("DATABASE_URL", url)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "replay failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    let replayed: Vec<Option<String>> = sqlx::query_scalar(READ_TABLES)
        .fetch_one(&pool)
        .await
        .unwrap();
    let calls: i64 = sqlx::query_scalar("SELECT count(*) FROM calls")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    for (table, (live, replayed)) in READ_TABLE_NAMES.iter().zip(live.iter().zip(&replayed)) {
        if live != replayed {
            let (live, replayed) = (
                live.as_deref().unwrap_or(""),
                replayed.as_deref().unwrap_or(""),
            );
            let first = live
                .split(',')
                .zip(replayed.split(','))
                .find(|(a, b)| a != b);
            panic!(
                "{table} {what} differs from a full replay ({} vs {} rows): first difference {first:?}",
                live.split(',').count(),
                replayed.split(',').count()
            );
        }
    }
    usize::try_from(calls).unwrap()
}
