//! The live projector: contract semantics of calls, contacts, credits, timelines, dead letters.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use calltrail_projections::{CallFilter, ProjectorConfig, READ_MODELS};
use tokio_util::sync::CancellationToken;

use crate::support::{at, fixture, fixture_as, scenario, TestApp};

const SUCCESS: &str = "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7";
const NO_ANSWER: &str = "d7a9e3b2-1f64-4c8a-b5e0-6a2f9c81d437";
const BUSY: &str = "5c0e8f17-a2d3-4b96-8e41-f7b3d2a90c65";

#[tokio::test]
async fn success_scenario_gives_the_contract_call_fields() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    for event in scenario("success") {
        app.append_call(tenant, &event).await;
    }
    let outcome = app.project(&app.projector(500)).await;
    assert_eq!(outcome.events, 5);

    let detail = app.call(tenant, SUCCESS).await;
    let call = &detail.call;
    assert_eq!(call.user_id, tenant);
    assert_eq!(
        call.agent_id.as_deref(),
        Some("9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18")
    );
    assert_eq!(call.phone_number.as_deref(), Some("+14155550132"));
    assert_eq!(call.lead_type.as_deref(), Some("outbound"));
    assert_eq!(call.call_lifecycle_status, "completed");
    assert_eq!(call.status, "completed");
    assert_eq!(
        (
            call.duration_seconds,
            call.duration_minutes,
            call.credits_used
        ),
        (28, 1, 1)
    );
    assert_eq!(call.hangup_by.as_deref(), Some("Callee"));
    assert_eq!(
        call.hangup_reason.as_deref(),
        Some("Call recipient hung up")
    );
    assert_eq!(call.hangup_provider_code, Some(4000));
    assert!(call.recording_url.as_deref().unwrap().ends_with(".mp3"));
    assert_eq!(
        call.ringing_started_at,
        Some(at("2025-10-08T09:15:02.947016"))
    );
    assert_eq!(
        call.call_answered_at,
        Some(at("2025-10-08T09:15:08.306552"))
    );
    assert_eq!(
        call.call_disconnected_at,
        Some(at("2025-10-08T09:15:36.771340"))
    );
    assert_eq!(call.completed_at, Some(at("2025-10-08T09:28:12.540198")));
    assert_eq!(call.created_at, at("2025-10-08T09:14:58.412903"));
    assert!(call.contact_id.is_some());

    let types: Vec<&str> = detail
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        [
            "initiated",
            "ringing",
            "in-progress",
            "call-disconnected",
            "completed"
        ]
    );

    let transcript = app
        .store
        .get_transcript(tenant, None, SUCCESS)
        .await
        .unwrap()
        .found()
        .unwrap();
    assert!(transcript
        .content
        .starts_with("assistant: Hi, this is Maya"));
    assert_eq!(transcript.analysis_status, "pending");
    assert_eq!(transcript.analysis_error, None);

    let credits = app.store.credits(tenant).await.unwrap();
    assert_eq!(credits.balance, -1);
    assert_eq!(credits.transactions.len(), 1);
    let usage = &credits.transactions[0];
    assert_eq!(
        (usage.kind.as_str(), usage.amount, usage.balance_after),
        ("usage", -1, -1)
    );
    assert_eq!(usage.call_id.as_deref(), Some(SUCCESS));
    assert_eq!(usage.created_at, at("2025-10-08T09:15:36.771340"));

    let contacts = app
        .store
        .list_contacts(tenant, None, 50)
        .await
        .unwrap()
        .items;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].phone_number, "+14155550132");
    assert_eq!(contacts[0].name.as_deref(), Some("Rohan Mehta"));
    assert_eq!(contacts[0].company.as_deref(), Some("Acme Logistics"));
    assert_eq!(
        contacts[0].auto_created_from_call_id.as_deref(),
        Some(SUCCESS)
    );
    assert_eq!(contacts[0].not_connected, 0);
    assert_eq!(Some(contacts[0].id), call.contact_id);
}

#[tokio::test]
async fn charged_once_when_completed_precedes_call_disconnected() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let projector = app.projector(500);
    for name in ["01-initiated", "05-completed"] {
        app.append_call(tenant, &fixture("success", name)).await;
    }
    app.project(&projector).await;
    // Re-deliveries and the late call-disconnected in a later batch charge nothing more.
    for name in ["04-call-disconnected", "03-in-progress", "02-ringing"] {
        app.append_call(tenant, &fixture("success", name)).await;
    }
    app.project(&projector).await;

    let call = app.call(tenant, SUCCESS).await.call;
    assert_eq!(
        (
            call.duration_seconds,
            call.duration_minutes,
            call.credits_used
        ),
        (28, 1, 1)
    );
    assert_eq!(call.call_lifecycle_status, "completed");
    let credits = app.store.credits(tenant).await.unwrap();
    assert_eq!(credits.transactions.len(), 1, "{credits:?}");
    assert_eq!(
        credits.transactions[0].created_at,
        at("2025-10-08T09:28:12.540198")
    );
    assert_eq!(credits.balance, -1);
}

#[tokio::test]
async fn late_ringing_after_busy_stays_busy_and_counts_not_connected() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    for name in ["01-initiated", "03-busy", "02-ringing"] {
        app.append_call(tenant, &fixture("busy", name)).await;
    }
    for event in scenario("no-answer") {
        app.append_call(tenant, &event).await;
    }
    app.project(&app.projector(2)).await;

    let busy = app.call(tenant, BUSY).await.call;
    assert_eq!(busy.call_lifecycle_status, "busy");
    assert_eq!(busy.status, "failed");
    assert_eq!(
        busy.ringing_started_at,
        Some(at("2025-10-08T10:05:44.120470"))
    );
    assert_eq!((busy.duration_seconds, busy.credits_used), (0, 0));
    let no_answer = app.call(tenant, NO_ANSWER).await.call;
    assert_eq!(
        (
            no_answer.call_lifecycle_status.as_str(),
            no_answer.status.as_str()
        ),
        ("no-answer", "failed")
    );

    let contacts = app
        .store
        .list_contacts(tenant, None, 50)
        .await
        .unwrap()
        .items;
    assert_eq!(contacts.len(), 2);
    assert!(
        contacts.iter().all(|c| c.not_connected == 1),
        "{contacts:?}"
    );
    // No charge for calls that never connected.
    assert!(app
        .store
        .credits(tenant)
        .await
        .unwrap()
        .transactions
        .is_empty());
}

#[tokio::test]
async fn contacts_are_created_once_per_phone_and_count_each_missed_call() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let other = app.user("b@example.com").await;
    let phone = "+14155550199";
    for (i, scenario_name) in ["no-answer", "busy", "no-answer"].iter().enumerate() {
        let id = format!("call-{i}");
        let last = if *scenario_name == "busy" {
            "03-busy"
        } else {
            "03-no-answer"
        };
        for name in ["01-initiated", "02-ringing", last] {
            app.append_call(tenant, &fixture_as(scenario_name, name, &id, Some(phone)))
                .await;
        }
        // A duplicate terminal webhook never counts twice.
        app.append_call(tenant, &fixture_as(scenario_name, last, &id, Some(phone)))
            .await;
    }
    app.append_call(
        other,
        &fixture_as("busy", "03-busy", "other-call", Some(phone)),
    )
    .await;
    app.project(&app.projector(4)).await;

    let contacts = app
        .store
        .list_contacts(tenant, None, 50)
        .await
        .unwrap()
        .items;
    assert_eq!(contacts.len(), 1);
    assert_eq!(contacts[0].phone_number, phone);
    assert_eq!(contacts[0].not_connected, 3);
    assert_eq!(
        contacts[0].auto_created_from_call_id.as_deref(),
        Some("call-0")
    );
    let theirs = app
        .store
        .list_contacts(other, None, 50)
        .await
        .unwrap()
        .items;
    assert_eq!(theirs.len(), 1);
    assert_eq!(theirs[0].not_connected, 1);
    assert_ne!(theirs[0].id, contacts[0].id);
    for i in 0..3 {
        let call = app.call(tenant, &format!("call-{i}")).await.call;
        assert_eq!(call.contact_id, Some(contacts[0].id));
    }
}

#[tokio::test]
async fn grants_and_charges_carry_balance_after_in_log_order() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let other = app.user("b@example.com").await;
    app.grant(tenant, 10).await;
    app.grant(other, 3).await;
    for event in scenario("success") {
        app.append_call(tenant, &event).await;
    }
    let second = fixture_as("success", "04-call-disconnected", "second", None);
    let mut long = second.clone();
    long.conversation_seconds = Some(125.0);
    app.append_call(tenant, &long).await;
    let grant_position = app.grant(tenant, 5).await;
    app.project(&app.projector(3)).await;

    let credits = app.store.credits(tenant).await.unwrap();
    let rows: Vec<(&str, i64, i64, Option<&str>)> = credits
        .transactions
        .iter()
        .map(|t| {
            (
                t.kind.as_str(),
                t.amount,
                t.balance_after,
                t.call_id.as_deref(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("grant", 5, 11, None),
            ("usage", -3, 6, Some("second")),
            ("usage", -1, 9, Some(SUCCESS)),
            ("grant", 10, 10, None),
        ]
    );
    assert_eq!(credits.balance, 11);
    assert_eq!(app.store.balance(tenant).await.unwrap(), 11);
    assert_eq!(
        app.store
            .credit_balance_after(grant_position)
            .await
            .unwrap(),
        Some(11)
    );
    assert_eq!(app.store.balance(other).await.unwrap(), 3);
    assert_eq!(app.store.balance(uuid::Uuid::new_v4()).await.unwrap(), 0);
    let second = app.call(tenant, "second").await.call;
    assert_eq!(
        (
            second.duration_seconds,
            second.duration_minutes,
            second.credits_used
        ),
        (125, 3, 3)
    );
}

#[tokio::test]
async fn a_zero_length_call_costs_nothing_and_records_no_transaction() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let mut event = fixture("success", "05-completed");
    event.conversation_seconds = Some(0.0);
    app.append_call(tenant, &event).await;
    app.project(&app.projector(10)).await;
    let credits = app.store.credits(tenant).await.unwrap();
    assert!(credits.transactions.is_empty(), "{credits:?}");
    assert_eq!(credits.balance, 0);
    let call = app.call(tenant, &event.execution_id).await.call;
    assert_eq!((call.status.as_str(), call.credits_used), ("completed", 0));
}

#[tokio::test]
async fn undecodable_events_become_dead_letters_and_the_projector_continues() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    app.append_call(tenant, &fixture("success", "01-initiated"))
        .await;
    app.append_raw(
        tenant,
        "bolna",
        "weird",
        "ringing",
        1,
        r#"{"not":"a call event"}"#,
    )
    .await;
    app.append_raw(tenant, "bolna", "future", "ringing", 99, r#"{"v":99}"#)
        .await;
    app.append_raw(
        tenant,
        "calltrail",
        "g",
        "credits.granted",
        1,
        r#"{"amount":-5}"#,
    )
    .await;
    // Other events: on a known call (same provider and id) they join its timeline, otherwise
    // they are ignored.
    app.append_raw(
        tenant,
        "bolna",
        SUCCESS,
        "analysis.individual.completed",
        1,
        "{}",
    )
    .await;
    app.append_raw(
        tenant,
        "vapi",
        SUCCESS,
        "analysis.individual.completed",
        1,
        "{}",
    )
    .await;
    app.append_raw(
        tenant,
        "calltrail",
        "no-such-call",
        "analysis.individual.completed",
        1,
        "{}",
    )
    .await;
    app.append_call(tenant, &fixture("success", "02-ringing"))
        .await;

    let outcome = app.project(&app.projector(500)).await;
    assert_eq!((outcome.events, outcome.dead_letters), (8, 3));
    assert_eq!(app.store.dead_letter_count().await.unwrap(), 3);
    let detail = app.call(tenant, SUCCESS).await;
    assert_eq!(detail.call.call_lifecycle_status, "ringing");
    let types: Vec<&str> = detail
        .events
        .iter()
        .map(|e| e.event_type.as_str())
        .collect();
    assert_eq!(
        types,
        ["initiated", "ringing", "analysis.individual.completed"]
    );
    assert_eq!(app.store.call_count(tenant).await.unwrap(), 1);
    assert!(app
        .store
        .get_call(tenant, None, "no-such-call")
        .await
        .unwrap()
        .found()
        .is_none());
}

#[tokio::test]
async fn unknown_status_is_in_the_timeline_but_never_moves_the_status() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let mut odd = fixture("success", "02-ringing");
    odd.status = calltrail_core::LifecycleStatus::parse("voicemail-detected");
    app.append_call(tenant, &odd).await;
    app.project(&app.projector(10)).await;
    assert_eq!(
        app.call(tenant, SUCCESS).await.call.call_lifecycle_status,
        "voicemail-detected"
    );
    app.append_call(tenant, &fixture("success", "01-initiated"))
        .await;
    app.project(&app.projector(10)).await;
    let detail = app.call(tenant, SUCCESS).await;
    assert_eq!(detail.call.call_lifecycle_status, "initiated");
    assert_eq!(detail.events.len(), 2);
}

#[tokio::test]
async fn one_projector_holds_the_projection_and_another_takes_over() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    for event in scenario("success") {
        app.append_call(tenant, &event).await;
    }
    let with_lease = |lease_ms| {
        calltrail_projections::Projector::new(
            app.log.clone(),
            app.store.clone(),
            ProjectorConfig {
                batch_size: 2,
                lease: Duration::from_millis(lease_ms),
                ..ProjectorConfig::default()
            },
        )
    };
    // The second and third hold their lease long enough that a slow, busy machine never lets
    // it run out between two steps below (which would hand the projection over early), and
    // short enough that the crash at the end is over in a few seconds.
    let first = with_lease(60_000);
    let second = with_lease(3_000);
    let third = with_lease(3_000);
    assert!(settled(&first).await.events > 0);
    let before = app
        .store
        .projector_checkpoint(READ_MODELS)
        .await
        .unwrap()
        .unwrap();

    // Between batches the first keeps the projection: the second stands by.
    let outcome = second.run_once().await.unwrap();
    assert!(outcome.standby && outcome.events == 0, "{outcome:?}");
    assert!(second.metrics().standby.load(Ordering::Relaxed));

    // While the row is locked (a batch or a replay's swap), even the holder waits.
    let (mut client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let tx = client.transaction().await.unwrap();
    tx.query(
        "SELECT 1 FROM projector_checkpoints WHERE name = $1 FOR UPDATE",
        &[&READ_MODELS],
    )
    .await
    .unwrap();
    assert!(first.run_once().await.unwrap().standby);
    assert_eq!(
        app.store.projector_checkpoint(READ_MODELS).await.unwrap(),
        Some(before)
    );
    tx.rollback().await.unwrap();
    assert!(!first.run_once().await.unwrap().standby);

    // A release hands over at once.
    first.release().await.unwrap();
    assert!(!second.run_once().await.unwrap().standby);
    assert!(third.run_once().await.unwrap().standby);
    assert!(first.run_once().await.unwrap().standby);

    // A holder that stops renewing (a crash) loses the projection when its lease runs out.
    let deadline = Instant::now() + Duration::from_secs(30);
    while third.run_once().await.unwrap().standby {
        assert!(Instant::now() < deadline, "the lease never ran out");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(second.run_once().await.unwrap().standby);
    let folded_by_second = second.metrics().events.load(Ordering::Relaxed);
    app.append_call(tenant, &fixture("no-answer", "01-initiated"))
        .await;
    app.project(&third).await;
    assert_eq!(app.store.call_count(tenant).await.unwrap(), 2);
    assert_eq!(app.call(tenant, SUCCESS).await.events.len(), 5);
    assert!(second.run_once().await.unwrap().standby);
    assert_eq!(
        second.metrics().events.load(Ordering::Relaxed),
        folded_by_second
    );
}

/// Runs batches until one does something or stands by (an event just appended becomes readable
/// once no transaction anywhere on the server can still precede it).
async fn settled(
    projector: &calltrail_projections::Projector,
) -> calltrail_projections::BatchOutcome {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let outcome = projector.run_once().await.unwrap();
        if outcome.standby || outcome.events > 0 {
            return outcome;
        }
        assert!(Instant::now() < deadline, "nothing became readable");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn two_running_projectors_fold_every_event_exactly_once() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    app.grant(tenant, 100).await;
    let shutdown = CancellationToken::new();
    let config = ProjectorConfig {
        batch_size: 3,
        poll_interval: Duration::from_millis(20),
        ..ProjectorConfig::default()
    };
    let tasks: Vec<_> = (0..2)
        .map(|_| {
            let projector = calltrail_projections::Projector::new(
                app.log.clone(),
                app.store.clone(),
                config.clone(),
            );
            tokio::spawn(projector.run(shutdown.clone()))
        })
        .collect();
    for i in 0..20 {
        let id = format!("call-{i}");
        for name in [
            "01-initiated",
            "02-ringing",
            "03-in-progress",
            "04-call-disconnected",
            "05-completed",
        ] {
            app.append_call(tenant, &fixture_as("success", name, &id, None))
                .await;
        }
    }
    let deadline = Instant::now() + Duration::from_secs(30);
    while app
        .store
        .projector_lag(&app.log, READ_MODELS)
        .await
        .unwrap()
        > 0
    {
        assert!(Instant::now() < deadline, "projectors did not catch up");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    shutdown.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    assert_eq!(app.store.balance(tenant).await.unwrap(), 80);
    let credits = app.store.credits(tenant).await.unwrap();
    assert_eq!(credits.transactions.len(), 21);
    let page = app
        .store
        .list_calls(tenant, &CallFilter::default(), None, 100)
        .await
        .unwrap();
    assert_eq!(page.items.len(), 20);
    for call in &page.items {
        assert_eq!(app.call(tenant, &call.execution_id).await.events.len(), 5);
    }
}

#[tokio::test]
async fn run_follows_new_events_and_stops_on_shutdown() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let shutdown = CancellationToken::new();
    let task = tokio::spawn(app.projector(500).run(shutdown.clone()));
    app.append_call(tenant, &fixture("success", "05-completed"))
        .await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while app
        .store
        .get_call(tenant, None, SUCCESS)
        .await
        .unwrap()
        .found()
        .is_none()
    {
        assert!(
            Instant::now() < deadline,
            "the running projector never folded the event"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    shutdown.cancel();
    tokio::time::timeout(Duration::from_secs(5), task)
        .await
        .unwrap()
        .unwrap()
        .unwrap();
}

#[tokio::test]
async fn an_unreachable_database_is_unavailable_promptly() {
    let store =
        calltrail_projections::ReadStore::connect("postgres://postgres@127.0.0.1:1/postgres", 2)
            .unwrap();
    let started = Instant::now();
    let error = store.ping().await.unwrap_err();
    assert!(error.is_unavailable(), "{error:?}");
    assert!(matches!(
        error,
        calltrail_projections::Error::Unavailable(_)
    ));
    assert!(started.elapsed() < Duration::from_secs(8));
}
