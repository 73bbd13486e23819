//! `DATABASE_URL` with several hosts: the log uses the one that answers and accepts writes.

use std::time::Duration;

use calltrail_eventlog::{AppendOutcome, ConnectOptions, EventLog};
use calltrail_testkit::TestDb;
use uuid::Uuid;

use crate::support::{config, event};

/// `url` with a host that refuses connections (port 1) listed before its own, and
/// `target_session_attrs=read-write`.
fn with_dead_host_first(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("a URL");
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let (userinfo, host) = match authority.rsplit_once('@') {
        Some((userinfo, host)) => (format!("{userinfo}@"), host),
        None => (String::new(), authority),
    };
    let separator = if path.contains('?') { '&' } else { '?' };
    format!(
        "{scheme}://{userinfo}127.0.0.1:1,{host}{path}{separator}target_session_attrs=read-write"
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_host_that_is_down_is_skipped_for_the_next_one() {
    let db = TestDb::new().await;
    let url = with_dead_host_first(db.url());
    let log = EventLog::connect(
        &url,
        &ConnectOptions {
            max_connections: 4,
            acquire_timeout: Duration::from_secs(10),
        },
    )
    .unwrap();
    let appender = log.appender(config());
    let outcome = appender
        .append(event(Uuid::new_v4(), "multi-host", "ringing", "{}"))
        .await
        .expect("appended through the second host");
    assert!(matches!(outcome, AppendOutcome::Appended { .. }));
    log.ping().await.unwrap();
    appender.shutdown().await;
    log.close().await;
}
