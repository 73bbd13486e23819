//! The `console` scenario: page render time of the web console with 100,000 calls in one
//! tenant. The calls are generated like the replay scenario's log (binary COPY) and rebuilt
//! into the read tables by `calltrail replay`; then the release `calltrail serve` is signed in
//! to as a browser would and each page is requested one request at a time over loopback, so a
//! latency is the server's time plus a loopback round trip (no queueing).

use std::time::{Duration, Instant};

use anyhow::Context;
use calltrail_testkit::TestDb;
use reqwest::header::{COOKIE, SET_COOKIE};
use sqlx::{Connection, PgConnection};
use uuid::Uuid;

use crate::replay;
use crate::report::{bench_dir, Report, Row};
use crate::server::{self, Server};

/// Average events of a generated call (the replay scenario's mix).
const EVENTS_PER_CALL_X10: usize = 44;
/// Requests before measuring (connection set-up, statement caches, the database's own cache).
const WARM_UP: usize = 20;

/// Generates about `calls` calls, serves them and times `requests` requests of each page.
pub async fn run(calls: usize, requests: usize, report: &mut Report) -> anyhow::Result<()> {
    let db = TestDb::new().await;
    let tenant = server::create_user(db.url()).await?;
    let run = Uuid::new_v4().simple().to_string()[..8].to_owned();
    let generated = replay::generate(
        db.url(),
        tenant.user_id,
        &run,
        calls * EVENTS_PER_CALL_X10 / 10,
    )
    .await?;
    replay::run_replay(db.url(), db.name()).await?;
    let mut conn = PgConnection::connect(db.url()).await?;
    sqlx::query("VACUUM (ANALYZE)").execute(&mut conn).await?;
    // The range that holds every call, as a user would pick it (UTC dates, end inclusive).
    let (first, last): (String, String) = sqlx::query_as(
        "SELECT to_char(min(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD'),
                to_char(max(created_at) AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM calls",
    )
    .fetch_one(&mut conn)
    .await?;
    conn.close().await?;

    let log = bench_dir()?.join("console-serve.log");
    let server = Server::start(db.url(), false, &log).await?;
    let base = format!("http://{}", server.addr());
    let client = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(30))
        .build()?;
    let session = sign_in(&client, &base, &tenant.api_key).await?;
    let range = format!("from={first}&to={last}");
    let pages = [
        ("calls", format!("/calls?{range}")),
        ("calls sort=longest", format!("/calls?{range}&sort=longest")),
        (
            "calls status=completed",
            format!("/calls?{range}&status=completed"),
        ),
        ("dashboard", format!("/?{range}")),
    ];
    for (name, path) in pages {
        let url = format!("{base}{path}");
        let mut latencies = Vec::with_capacity(requests);
        let mut bytes = 0;
        for i in 0..WARM_UP + requests {
            let started = Instant::now();
            let response = client
                .get(&url)
                .header(COOKIE, format!("calltrail_session={session}"))
                .send()
                .await?;
            anyhow::ensure!(
                response.status().is_success(),
                "GET {path} answered {}",
                response.status()
            );
            bytes = response.bytes().await?.len();
            if i >= WARM_UP {
                latencies.push(started.elapsed());
            }
        }
        let wall = latencies.iter().sum();
        report.push(
            Row::new(
                "console",
                format!("page={name} calls={}", generated.calls),
                requests,
                wall,
                latencies,
            )
            .detail("html_bytes", bytes),
        );
    }
    server.stop().await
}

/// Signs in as a browser does: the form's token and cookie, then the key. Returns the session id.
async fn sign_in(client: &reqwest::Client, base: &str, key: &str) -> anyhow::Result<String> {
    let form = client.get(format!("{base}/signin")).send().await?;
    let form_cookie = cookie(&form, "calltrail_signin").context("no sign-in cookie")?;
    let html = form.text().await?;
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).context("no CSRF field")? + marker.len();
    let csrf = html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned();
    let signed_in = client
        .post(format!("{base}/signin"))
        .header(COOKIE, format!("calltrail_signin={form_cookie}"))
        .form(&[("api_key", key), ("csrf", csrf.as_str())])
        .send()
        .await?;
    cookie(&signed_in, "calltrail_session").context("sign-in started no session")
}

fn cookie(response: &reqwest::Response, name: &str) -> Option<String> {
    response
        .headers()
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find_map(|v| v.strip_prefix(&format!("{name}=")))
        .map(|rest| rest.split(';').next().unwrap_or_default().to_owned())
        .filter(|v| !v.is_empty())
}
