//! Replay: equals live, never shows a half-built table, one at a time.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calltrail_projections::{replay, CallFilter, Error, ReplayOptions, READ_MODELS};
use uuid::Uuid;

use crate::support::{fixture_as, TestApp};

/// A mixed log: answered, missed and busy calls out of order with duplicates, grants, an
/// analysis event, an unknown status and a dead letter, for two tenants.
pub async fn mixed_log(app: &TestApp, calls: usize) -> Vec<Uuid> {
    let tenants = vec![
        app.user("a@example.com").await,
        app.user("b@example.com").await,
    ];
    for (n, tenant) in tenants.iter().enumerate() {
        app.grant(*tenant, 50).await;
        for i in 0..calls {
            let id = format!("t{n}-call-{i}");
            let phone = format!("+1415555{:04}", i % 7);
            let names: &[(&str, &str)] = match i % 3 {
                0 => &[
                    ("success", "01-initiated"),
                    ("success", "05-completed"),
                    ("success", "02-ringing"),
                    ("success", "04-call-disconnected"),
                    ("success", "03-in-progress"),
                    ("success", "05-completed"),
                ],
                1 => &[
                    ("no-answer", "01-initiated"),
                    ("no-answer", "03-no-answer"),
                    ("no-answer", "02-ringing"),
                ],
                _ => &[("busy", "03-busy"), ("busy", "01-initiated")],
            };
            for (scenario, name) in names {
                app.append_call(*tenant, &fixture_as(scenario, name, &id, Some(&phone)))
                    .await;
            }
        }
        app.append_raw(
            *tenant,
            "bolna",
            &format!("t{n}-call-0"),
            "analysis.individual.completed",
            1,
            "{}",
        )
        .await;
        app.append_raw(
            *tenant,
            "bolna",
            "broken",
            "ringing",
            1,
            r#"{"broken":true}"#,
        )
        .await;
        app.grant(*tenant, 7).await;
    }
    tenants
}

#[tokio::test]
async fn replay_equals_live() {
    let app = TestApp::new().await;
    let tenants = mixed_log(&app, 12).await;
    app.project(&app.projector(7)).await;
    let live = app.snapshot(&tenants).await;
    assert!(live
        .iter()
        .all(|v| !v.calls.is_empty() && !v.contacts.is_empty()));
    let indexes_before = index_names(&app).await;
    let dead_before = app.store.dead_letter_count().await.unwrap();

    let calls = Arc::new(Mutex::new(Vec::new()));
    let seen = Arc::clone(&calls);
    let summary = replay(
        &app.log,
        &app.store,
        ReplayOptions {
            batch_size: 11,
            ..ReplayOptions::default()
        },
        move |done, total| seen.lock().unwrap().push((done, total)),
    )
    .await
    .unwrap();
    let total_events = app
        .log
        .count_after(calltrail_eventlog::Checkpoint::START)
        .await
        .unwrap();
    assert_eq!(i64::try_from(summary.events).unwrap(), total_events);
    let progress = calls.lock().unwrap().clone();
    assert_eq!(progress.first(), Some(&(0, summary.events)));
    assert_eq!(progress.last(), Some(&(summary.events, summary.events)));

    let replayed = app.snapshot(&tenants).await;
    assert_eq!(live, replayed);
    assert_eq!(index_names(&app).await, indexes_before);
    assert_eq!(app.store.dead_letter_count().await.unwrap(), dead_before);
    assert_eq!(
        app.store
            .projector_lag(&app.log, READ_MODELS)
            .await
            .unwrap(),
        0
    );

    // A tiny cache: rows are written back and evicted mid-replay, then loaded again.
    replay(
        &app.log,
        &app.store,
        ReplayOptions {
            batch_size: 5,
            cached_calls: 3,
            ..ReplayOptions::default()
        },
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(live, app.snapshot(&tenants).await);

    // The live projector continues from the horizon into the new tables.
    app.grant(tenants[0], 1).await;
    app.project(&app.projector(7)).await;
    assert_eq!(
        app.store.balance(tenants[0]).await.unwrap(),
        live[0].credits.balance + 1
    );
}

#[tokio::test]
async fn replay_of_an_empty_log_empties_nothing_it_should_not() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let summary = replay(&app.log, &app.store, ReplayOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(summary.events, 0);
    assert!(
        app.store.tenancy().user_exists(tenant).await.unwrap(),
        "tenancy tables are never touched"
    );
    let err = replay(
        &app.log,
        &app.store,
        ReplayOptions {
            projections: vec!["nope".into()],
            ..ReplayOptions::default()
        },
        |_, _| {},
    )
    .await
    .unwrap_err();
    assert!(
        matches!(&err, Error::UnknownProjection { name, .. } if name == "nope"),
        "{err:?}"
    );
    assert_eq!(
        err.to_string(),
        "unknown projection `nope` (known: read_models)"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn queries_during_replay_never_fail_nor_see_an_empty_table() {
    let app = Arc::new(TestApp::new().await);
    let tenants = mixed_log(&app, 60).await;
    app.project(&app.projector(500)).await;
    let expected_calls = app.store.call_count(tenants[0]).await.unwrap();

    let stop = Arc::new(AtomicBool::new(false));
    let queries = Arc::new(AtomicUsize::new(0));
    let reader = {
        let (app, stop, queries, tenant) = (
            Arc::clone(&app),
            Arc::clone(&stop),
            Arc::clone(&queries),
            tenants[0],
        );
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                let page = app
                    .store
                    .list_calls(tenant, &CallFilter::default(), None, 100)
                    .await
                    .unwrap();
                assert_eq!(i64::try_from(page.items.len()).unwrap(), expected_calls);
                let detail = app
                    .store
                    .get_call(tenant, None, &page.items[0].execution_id)
                    .await
                    .unwrap()
                    .found()
                    .unwrap();
                assert!(!detail.events.is_empty());
                assert!(!app
                    .store
                    .credits(tenant)
                    .await
                    .unwrap()
                    .transactions
                    .is_empty());
                assert!(!app
                    .store
                    .list_contacts(tenant, None, 10)
                    .await
                    .unwrap()
                    .items
                    .is_empty());
                queries.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // A live projector keeps running too.
    let shutdown = tokio_util::sync::CancellationToken::new();
    let live = tokio::spawn(app.projector(50).run(shutdown.clone()));

    let during = Arc::new(AtomicUsize::new(usize::MAX));
    let queries_at_start = queries.load(Ordering::Relaxed);
    let summary = replay(
        &app.log,
        &app.store,
        ReplayOptions {
            batch_size: 40,
            ..ReplayOptions::default()
        },
        {
            let (during, queries) = (Arc::clone(&during), Arc::clone(&queries));
            move |_, _| during.store(queries.load(Ordering::Relaxed), Ordering::Relaxed)
        },
    )
    .await
    .unwrap();
    assert!(summary.events > 400);
    // Let the reader run against the swapped tables as well.
    tokio::time::sleep(Duration::from_millis(200)).await;
    stop.store(true, Ordering::Relaxed);
    reader.await.unwrap();
    shutdown.cancel();
    live.await.unwrap().unwrap();
    assert!(
        during.load(Ordering::Relaxed) > queries_at_start,
        "no query ran during the replay"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_concurrent_replay_is_refused() {
    let app = Arc::new(TestApp::new().await);
    mixed_log(&app, 3).await;
    let (started_tx, started_rx) = tokio::sync::oneshot::channel::<()>();
    let (release_tx, release_rx) = std::sync::mpsc::channel::<()>();
    let started_tx = Mutex::new(Some(started_tx));
    let release_rx = Mutex::new(release_rx);
    let first = {
        let app = Arc::clone(&app);
        tokio::spawn(async move {
            replay(
                &app.log,
                &app.store,
                ReplayOptions::default(),
                move |_, _| {
                    if let Some(tx) = started_tx.lock().unwrap().take() {
                        tx.send(()).unwrap();
                        // Hold the first replay (and its lock) until the second one was refused.
                        // block_in_place: the worker's other tasks move to another thread meanwhile.
                        tokio::task::block_in_place(|| release_rx.lock().unwrap().recv().unwrap());
                    }
                },
            )
            .await
        })
    };
    started_rx.await.unwrap();
    let second = replay(&app.log, &app.store, ReplayOptions::default(), |_, _| {}).await;
    assert!(matches!(second, Err(Error::ReplayRunning)), "{second:?}");
    release_tx.send(()).unwrap();
    first.await.unwrap().unwrap();
    // Once the first is done, a replay runs again.
    replay(&app.log, &app.store, ReplayOptions::default(), |_, _| {})
        .await
        .unwrap();
}

async fn index_names(app: &TestApp) -> Vec<String> {
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
        .query(
            "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' ORDER BY 1",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect()
}
