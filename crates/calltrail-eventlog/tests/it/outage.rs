//! Database down: appends fail promptly with an "unavailable" error and recover by themselves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use calltrail_eventlog::{AppendOutcome, AppenderConfig, ConnectOptions, EventLog};
use calltrail_testkit::TestDb;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;
use tokio::task::JoinHandle;
use uuid::Uuid;

use crate::support::event;

/// A TCP forwarder to the real server that the test can cut and restore.
struct Proxy {
    port: u16,
    upstream: String,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Arc<Proxy> {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let proxy = Arc::new(Proxy {
            port,
            upstream,
            task: Mutex::new(None),
        });
        proxy.serve(listener).await;
        proxy
    }

    async fn serve(&self, listener: TcpListener) {
        let upstream = self.upstream.clone();
        let task = tokio::spawn(async move {
            let mut connections = tokio::task::JoinSet::new();
            while let Ok((mut client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                connections.spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
            }
        });
        *self.task.lock().await = Some(task);
    }

    /// Closes the listener and every open connection (the JoinSet aborts them on drop).
    async fn cut(&self) {
        if let Some(task) = self.task.lock().await.take() {
            task.abort();
            let _ = task.await;
        }
    }

    async fn restore(&self) {
        let listener = TcpListener::bind(("127.0.0.1", self.port)).await.unwrap();
        self.serve(listener).await;
    }
}

/// host:port of the test server, from its URL.
fn upstream(url: &str) -> (String, String) {
    let after_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    let (userinfo, rest) = after_scheme
        .rsplit_once('@')
        .map_or(("", after_scheme), |(u, r)| (u, r));
    let hostport = rest.split(['/', '?']).next().unwrap_or("127.0.0.1:5432");
    let hostport = if hostport.contains(':') {
        hostport.to_owned()
    } else {
        format!("{hostport}:5432")
    };
    (userinfo.to_owned(), hostport)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn appends_fail_promptly_while_the_database_is_down_and_recover_after() {
    let db = TestDb::new().await;
    let (userinfo, hostport) = upstream(db.url());
    let proxy = Proxy::start(hostport).await;
    let at = if userinfo.is_empty() {
        String::new()
    } else {
        format!("{userinfo}@")
    };
    let url = format!("postgres://{at}127.0.0.1:{}/{}", proxy.port, db.name());

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
