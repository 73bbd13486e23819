use std::time::Duration;

use calltrail_eventlog::{AppenderConfig, ConnectOptions, EventLog, NewEvent};
use calltrail_testkit::TestDb;
use chrono::Utc;
use uuid::Uuid;

pub async fn log(db: &TestDb) -> EventLog {
    EventLog::connect(db.url(), &ConnectOptions::default()).unwrap()
}

pub fn config() -> AppenderConfig {
    AppenderConfig {
        linger: Duration::from_micros(200),
        ..AppenderConfig::default()
    }
}

pub fn event(tenant: Uuid, stream: &str, status: &str, body: &str) -> NewEvent {
    NewEvent {
        tenant_id: tenant,
        provider: "bolna".to_owned(),
        stream_id: stream.to_owned(),
        event_type: status.to_owned(),
        schema_version: 1,
        occurred_at: Utc::now(),
        data: format!(r#"{{"status":"{status}"}}"#),
        payload: Some(body.to_owned()),
        metadata: "{}".to_owned(),
    }
}

/// Waits until `check` returns Some, polling until the deadline.
pub async fn eventually<T, F, Fut>(deadline: Duration, mut check: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let until = tokio::time::Instant::now() + deadline;
    loop {
        if let Some(found) = check().await {
            return Some(found);
        }
        if tokio::time::Instant::now() >= until {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn count(log_db: &TestDb, sql: &str) -> i64 {
    let pool = sqlx::PgPool::connect(log_db.url()).await.unwrap();
    let n: i64 = sqlx::query_scalar(sql).fetch_one(&pool).await.unwrap();
    pool.close().await;
    n
}
