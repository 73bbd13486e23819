//! Database down: appends fail promptly with an "unavailable" error and recover by themselves.

use std::time::{Duration, Instant};

use calltrail_eventlog::{AppendOutcome, AppenderConfig, ConnectOptions, EventLog};
use calltrail_testkit::{DbProxy, TestDb};
use uuid::Uuid;

use crate::support::event;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_promptly_while_the_database_is_down_and_recover_after() {
    let db = TestDb::new().await;
    let proxy = DbProxy::start(db.url()).await;
    let url = proxy.url(db.url());

    let options = ConnectOptions {
        max_connections: 4,
        acquire_timeout: Duration::from_secs(1),
    };
    let log = EventLog::connect(&url, &options).unwrap();
    let appender = log.appender(AppenderConfig {
        batch_timeout: Duration::from_secs(2),
        ..AppenderConfig::default()
    });
    let tenant = Uuid::new_v4();
    assert!(matches!(
        appender.append(event(tenant, "up", "ringing", "{}")).await,
        Ok(AppendOutcome::Appended { .. })
    ));

    proxy.cut().await;
    let started = Instant::now();
    let down = appender
        .append(event(tenant, "down", "ringing", "{}"))
        .await;
    let took = started.elapsed();
    let error = down.expect_err("nothing can be committed while the database is unreachable");
    assert!(
        error.is_unavailable(),
        "a retryable error (HTTP 503): {error}"
    );
    assert!(
        took < Duration::from_secs(5),
        "no hang past the timeout: took {took:?}"
    );
    assert!(log.ping().await.is_err());

    proxy.restore().await;
    let recovered = crate::support::eventually(Duration::from_secs(10), || {
        let appender = appender.clone();
        async move {
            appender
                .append(event(tenant, "back", "ringing", "{}"))
                .await
                .ok()
        }
    })
    .await;
    assert!(
        matches!(recovered, Some(AppendOutcome::Appended { .. })),
        "{recovered:?}"
    );
    assert!(log.ping().await.is_ok());
}
