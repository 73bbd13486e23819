use std::collections::HashMap;

use calltrail_eventlog::AppendOutcome;
use calltrail_testkit::TestDb;
use uuid::Uuid;

use crate::support::{config, count, event, log};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_key_twice_is_one_row_and_a_duplicate() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    let tenant = Uuid::new_v4();

    let first = appender
        .append(event(tenant, "exec-1", "ringing", r#"{"a":1}"#))
        .await
        .unwrap();
    let AppendOutcome::Appended { position } = first else {
        panic!("expected Appended, got {first:?}")
    };
    let again = appender
        .append(event(tenant, "exec-1", "ringing", r#"{"a":1}"#))
        .await
        .unwrap();
    assert_eq!(
        again,
        AppendOutcome::Duplicate {
            position,
            conflict: false
        }
    );

    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 1);
    assert_eq!(count(&db, "SELECT count(*) FROM event_conflicts").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_different_body_under_the_same_key_is_a_conflicting_duplicate() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    let tenant = Uuid::new_v4();

    let first = appender
        .append(event(tenant, "exec-1", "completed", r#"{"v":1}"#))
        .await
        .unwrap();
    let AppendOutcome::Appended { position } = first else {
        panic!("expected Appended")
    };
    let other = appender
        .append(event(tenant, "exec-1", "completed", r#"{"v":2}"#))
        .await
        .unwrap();
    assert_eq!(
        other,
        AppendOutcome::Duplicate {
            position,
            conflict: true
        }
    );

    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 1);
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM event_conflicts WHERE payload = '{\"v\":2}'::jsonb"
        )
        .await,
        1,
        "the conflicting body is kept for review"
    );
    assert_eq!(
        count(
            &db,
            "SELECT count(*) FROM events WHERE payload = '{\"v\":1}'::jsonb"
        )
        .await,
        1,
        "the original is untouched"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_execution_and_status_under_two_tenants_are_two_events() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    for tenant in [Uuid::new_v4(), Uuid::new_v4()] {
        let outcome = appender
            .append(event(tenant, "exec-1", "busy", "{}"))
            .await
            .unwrap();
        assert!(
            matches!(outcome, AppendOutcome::Appended { .. }),
            "{outcome:?}"
        );
    }
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_inside_one_batch_are_answered_from_the_first() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    // A long linger puts all of these in one batch.
    let appender = log.appender(calltrail_eventlog::AppenderConfig {
        linger: std::time::Duration::from_millis(50),
        ..config()
    });
    let tenant = Uuid::new_v4();
    let bodies = [r#"{"n":1}"#, r#"{"n":1}"#, r#"{"n":2}"#];
    let outcomes = futures_join(bodies.iter().map(|body| {
        let appender = appender.clone();
        let event = event(tenant, "exec-9", "in-progress", body);
        async move { appender.append(event).await.unwrap() }
    }))
    .await;
    let appended: Vec<_> = outcomes
        .iter()
        .filter(|o| matches!(o, AppendOutcome::Appended { .. }))
        .collect();
    assert_eq!(appended.len(), 1, "{outcomes:?}");
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 1);
}

async fn futures_join<F: std::future::Future + Send + 'static>(
    futures: impl Iterator<Item = F>,
) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let handles: Vec<_> = futures.map(tokio::spawn).collect();
    let mut out = Vec::new();
    for handle in handles {
        out.push(handle.await.unwrap());
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_appends_with_repeats_record_every_key_once_and_answer_every_caller() {
    const TASKS: usize = 16;
    const PER_TASK: usize = 500;
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    let tenant = Uuid::new_v4();

    // 20% of appends repeat a key another task (or the same one) also appends.
    let mut handles = Vec::new();
    for task in 0..TASKS {
        let appender = appender.clone();
        handles.push(tokio::spawn(async move {
            let mut answers = Vec::with_capacity(PER_TASK);
            for i in 0..PER_TASK {
                let key = if i % 5 == 0 {
                    format!("shared-{}", i % 50)
                } else {
                    format!("t{task}-{i}")
                };
                let outcome = appender
                    .append(event(tenant, &key, "completed", "{}"))
                    .await
                    .unwrap();
                answers.push((key, outcome));
            }
            answers
        }));
    }
    let mut by_key: HashMap<String, Vec<AppendOutcome>> = HashMap::new();
    for handle in handles {
        for (key, outcome) in handle.await.unwrap() {
            by_key.entry(key).or_default().push(outcome);
        }
    }

    let rows: Vec<(String, i64)> = {
        let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
        let rows = sqlx::query_as("SELECT stream_id, position FROM events")
            .fetch_all(&pool)
            .await
            .unwrap();
        pool.close().await;
        rows
    };
    let stored: HashMap<String, i64> = rows.iter().cloned().collect();
    assert_eq!(
        rows.len(),
        by_key.len(),
        "every distinct key is stored exactly once"
    );
    for (key, outcomes) in &by_key {
        let position = stored[key];
        let appended = outcomes
            .iter()
            .filter(|o| **o == AppendOutcome::Appended { position })
            .count();
        assert_eq!(
            appended, 1,
            "exactly one caller of {key} was told Appended at its position"
        );
        for outcome in outcomes {
            assert!(
                *outcome == AppendOutcome::Appended { position }
                    || *outcome
                        == AppendOutcome::Duplicate {
                            position,
                            conflict: false
                        },
                "{key}: {outcome:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_database_refuses_fails_alone() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(calltrail_eventlog::AppenderConfig {
        linger: std::time::Duration::from_millis(50),
        ..config()
    });
    let tenant = Uuid::new_v4();
    // jsonb cannot store \u0000; the good events batched with it must still be appended.
    let bad = appender.clone();
    let bad = tokio::spawn(async move {
        bad.append(event(tenant, "bad", "completed", r#"{"t":"\u0000"}"#))
            .await
    });
    let good = appender.clone();
    let good =
        tokio::spawn(async move { good.append(event(tenant, "good", "completed", "{}")).await });
    let bad = bad.await.unwrap();
    assert!(
        matches!(bad, Err(calltrail_eventlog::Error::InvalidEvent(_))),
        "{bad:?}"
    );
    assert!(matches!(
        good.await.unwrap(),
        Ok(AppendOutcome::Appended { .. })
    ));
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_too_large_for_the_index_is_refused_as_content_not_as_an_outage() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    // Random text barely compresses, so the index entry stays far over a btree page.
    let huge: String = (0..12_000)
        .map(|_| Uuid::new_v4().simple().to_string())
        .collect();
    let refused = appender
        .append(event(Uuid::new_v4(), &huge, "completed", "{}"))
        .await;
    assert!(
        matches!(refused, Err(calltrail_eventlog::Error::InvalidEvent(_))),
        "{refused:?}"
    );
    assert_eq!(count(&db, "SELECT count(*) FROM events").await, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shutdown_writes_what_was_queued() {
    let db = TestDb::new().await;
    let log = log(&db).await;
    let appender = log.appender(config());
    let tenant = Uuid::new_v4();
    let pending: Vec<_> = (0..50)
        .map(|i| {
            let appender = appender.clone();
            tokio::spawn(async move {
                appender
                    .append(event(tenant, &format!("s{i}"), "queued", "{}"))
                    .await
            })
        })
        .collect();
    tokio::task::yield_now().await;
    appender.shutdown().await;
    let mut appended = 0;
    for task in pending {
        match task.await.unwrap() {
            Ok(AppendOutcome::Appended { .. }) => appended += 1,
            Ok(other) => panic!("{other:?}"),
            Err(calltrail_eventlog::Error::AppenderClosed) => {}
            Err(other) => panic!("{other:?}"),
        }
    }
    assert_eq!(
        count(&db, "SELECT count(*) FROM events").await,
        appended,
        "every Appended answer is committed"
    );
    let late = appender.append(event(tenant, "late", "queued", "{}")).await;
    assert!(
        matches!(late, Err(calltrail_eventlog::Error::AppenderClosed)),
        "{late:?}"
    );
}
