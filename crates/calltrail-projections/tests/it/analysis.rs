//! Lead analysis on the read side: `analysis.*` events fold into `lead_analytics` and the
//! transcripts' status, the live projector enqueues jobs (replay never does), and the job
//! queue claims with leases, fences stale claims and serializes a contact's complete jobs.

use std::time::Duration;

use calltrail_core::analysis::{AnalysisFailed, AnalysisRecorded};
use calltrail_core::{AnalysisKind, AnalysisMeta, Analyzer, LeadAnalysis, LeadStatusTag};
use calltrail_projections::{replay, ReplayOptions};
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::support::{at, fixture_as, t0, TestApp};

const PHONE: &str = "+14155550132";
const SUCCESS: [&str; 5] = [
    "01-initiated",
    "02-ringing",
    "03-in-progress",
    "04-call-disconnected",
    "05-completed",
];

fn lead(score: i32) -> LeadAnalysis {
    LeadAnalysis {
        total_score: score,
        intent_level: Some("high".into()),
        intent_score: 4,
        urgency_level: None,
        urgency_score: 3,
        budget_constraint: None,
        budget_score: 2,
        fit_alignment: Some("strong".into()),
        fit_score: 4,
        engagement_health: None,
        engagement_score: 4,
        lead_status_tag: LeadStatusTag::Hot,
        reasoning: Map::from_iter([("intent".to_owned(), Value::from("wants a demo"))]),
        company_name: Some("Acme Logistics".into()),
        extracted_name: None,
        extracted_email: Some("rohan@acme-logistics.example".into()),
        smart_notification: None,
        cta_pricing_clicked: true,
        cta_demo_clicked: true,
        cta_followup_clicked: false,
        cta_sample_clicked: false,
        cta_escalated_to_human: false,
        demo_book_datetime: None,
    }
}

/// Posts an answered call (`created_at` overrides the call's creation time).
async fn answered(app: &TestApp, tenant: Uuid, id: &str, phone: &str, created_at: Option<&str>) {
    for name in SUCCESS {
        let mut event = fixture_as("success", name, id, Some(phone));
        if let Some(created) = created_at {
            event.call_created_at = Some(at(created));
        }
        app.append_call(tenant, &event).await;
    }
}

async fn analysed(app: &TestApp, tenant: Uuid, kind: AnalysisKind, id: &str, previous: i32) {
    let data = AnalysisRecorded {
        kind,
        execution_id: id.to_owned(),
        phone_number: Some(PHONE.to_owned()),
        previous_calls_analyzed: previous,
        analysis_timestamp: t0(),
        analysis: lead(60 + previous),
        meta: AnalysisMeta {
            analyzer: Analyzer::OpenAi,
            model: Some("gpt-test".into()),
            response_id: Some("resp_1".into()),
            tokens_used: Some(100),
        },
    };
    let event_type = calltrail_core::analysis::recorded_event_type(kind);
    let data = serde_json::to_string(&data).unwrap();
    app.append_raw(tenant, "bolna", id, event_type, 1, &data)
        .await;
}

async fn failed(app: &TestApp, tenant: Uuid, kind: AnalysisKind, id: &str, message: &str) {
    let data = AnalysisFailed {
        kind,
        execution_id: id.to_owned(),
        code: "server_error".into(),
        message: message.to_owned(),
        attempts: 5,
        failed_at: t0(),
    };
    let data = serde_json::to_string(&data).unwrap();
    app.append_raw(tenant, "bolna", id, "analysis.failed", 1, &data)
        .await;
}

async fn sql(app: &TestApp) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

async fn status(app: &TestApp, tenant: Uuid, id: &str) -> (String, Option<String>) {
    let t = app
        .store
        .get_transcript(tenant, None, id)
        .await
        .unwrap()
        .found()
        .unwrap();
    (t.analysis_status, t.analysis_error)
}

/// `kind:execution_id:state` of every job, in id order.
async fn jobs(app: &TestApp) -> Vec<String> {
    let rows = sql(app)
        .await
        .query(
            "SELECT kind || ':' || execution_id || ':' || state FROM analysis_jobs ORDER BY id",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| r.get(0)).collect()
}

#[tokio::test]
async fn analysis_events_fold_into_rows_statuses_and_jobs() {
    let app = TestApp::new().await;
    let tenant = app.user("lead@example.com").await;
    let projector = app.projector(50);
    answered(&app, tenant, "c1", PHONE, None).await;
    app.project(&projector).await;
    assert_eq!(jobs(&app).await, ["individual:c1:pending"]);
    assert_eq!(status(&app, tenant, "c1").await.0, "pending");

    analysed(&app, tenant, AnalysisKind::Individual, "c1", 0).await;
    analysed(&app, tenant, AnalysisKind::Complete, "c1", 1).await;
    app.project(&projector).await;
    let individual = app
        .store
        .call_analysis(tenant, "bolna", "c1")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            individual.execution_id.as_deref(),
            individual.analysis.total_score
        ),
        (Some("c1"), 60)
    );
    assert_eq!(individual.analyzer, Analyzer::OpenAi);
    assert_eq!(status(&app, tenant, "c1").await, ("completed".into(), None));
    assert_eq!(
        jobs(&app).await,
        ["individual:c1:pending", "complete:c1:pending"],
        "the individual result asks for the complete analysis"
    );
    let complete = app
        .store
        .contact_analysis(tenant, PHONE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(complete.latest_execution_id.as_deref(), Some("c1"));
    assert_eq!(complete.previous_calls_analyzed, 1);

    // A second call: failed first, then a retry succeeds; the complete row moves on.
    answered(&app, tenant, "c2", PHONE, Some("2025-10-09T10:00:00")).await;
    failed(
        &app,
        tenant,
        AnalysisKind::Individual,
        "c2",
        "OpenAI server error",
    )
    .await;
    app.project(&projector).await;
    assert_eq!(
        status(&app, tenant, "c2").await,
        ("failed".into(), Some("OpenAI server error".into()))
    );
    analysed(&app, tenant, AnalysisKind::Individual, "c2", 0).await;
    analysed(&app, tenant, AnalysisKind::Complete, "c2", 2).await;
    // A failure after a success changes nothing.
    failed(&app, tenant, AnalysisKind::Complete, "c1", "late").await;
    app.project(&projector).await;
    assert_eq!(status(&app, tenant, "c2").await, ("completed".into(), None));
    assert_eq!(status(&app, tenant, "c1").await, ("completed".into(), None));
    let complete = app
        .store
        .contact_analysis(tenant, PHONE)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(complete.latest_execution_id.as_deref(), Some("c2"));
    assert_eq!(
        (
            complete.previous_calls_analyzed,
            complete.analysis.total_score
        ),
        (2, 62)
    );

    // Results are in the call's timeline; another tenant sees nothing.
    let timeline: Vec<String> = app
        .call(tenant, "c1")
        .await
        .events
        .into_iter()
        .map(|e| e.event_type)
        .filter(|t| t.starts_with("analysis."))
        .collect();
    assert_eq!(timeline.len(), 3, "{timeline:?}");
    let stranger = app.user("stranger@example.com").await;
    assert!(app
        .store
        .call_analysis(stranger, "bolna", "c1")
        .await
        .unwrap()
        .is_none());
    assert!(app
        .store
        .contact_analysis(stranger, PHONE)
        .await
        .unwrap()
        .is_none());
}

/// `lead_analytics` rows and transcript statuses, as JSON text, in key order.
async fn analysis_rows(app: &TestApp) -> Vec<String> {
    let client = sql(app).await;
    let mut rows: Vec<String> = client
        .query(
            "SELECT to_jsonb(l)::text FROM lead_analytics l ORDER BY user_id, analysis_type, key",
            &[],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    rows.extend(
        client
            .query(
                "SELECT execution_id || ':' || analysis_status || ':' || coalesce(analysis_error, '-')
                   FROM transcripts ORDER BY user_id, execution_id",
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get::<_, String>(0)),
    );
    rows
}

#[tokio::test]
async fn replay_with_a_tiny_cache_rebuilds_the_analyses_and_enqueues_nothing() {
    let app = TestApp::new().await;
    let tenant = app.user("replay@example.com").await;
    for i in 0..8 {
        answered(&app, tenant, &format!("r{i}"), PHONE, None).await;
    }
    for i in 0..8 {
        let id = format!("r{i}");
        if i % 4 == 3 {
            failed(
                &app,
                tenant,
                AnalysisKind::Individual,
                &id,
                "model output is not JSON",
            )
            .await;
        } else {
            analysed(&app, tenant, AnalysisKind::Individual, &id, 0).await;
            analysed(&app, tenant, AnalysisKind::Complete, &id, i + 1).await;
        }
    }
    app.project(&app.projector(7)).await;
    let live = analysis_rows(&app).await;
    let jobs_before = jobs(&app).await;
    assert_eq!(live.len(), 6 + 1 + 8, "{live:?}");

    replay(
        &app.log,
        &app.store,
        ReplayOptions {
            batch_size: 3,
            cached_calls: 2,
            ..ReplayOptions::default()
        },
        |_, _| {},
    )
    .await
    .unwrap();
    assert_eq!(analysis_rows(&app).await, live);
    assert_eq!(
        jobs(&app).await,
        jobs_before,
        "replay never touches the queue"
    );
}

#[tokio::test]
async fn the_queue_leases_fences_and_runs_a_contact_s_complete_jobs_in_call_order() {
    let app = TestApp::new().await;
    let tenant = app.user("queue@example.com").await;
    let projector = app.projector(50);
    answered(&app, tenant, "early", PHONE, None).await;
    answered(&app, tenant, "late", PHONE, Some("2025-10-09T10:00:00")).await;
    app.project(&projector).await;
    let lease = Duration::from_secs(60);

    let first = app
        .store
        .analysis_jobs()
        .claim(lease)
        .await
        .unwrap()
        .unwrap();
    let second = app
        .store
        .analysis_jobs()
        .claim(lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((first.execution_id.as_str(), first.attempts), ("early", 1));
    assert_eq!(second.execution_id, "late");
    assert!(app
        .store
        .analysis_jobs()
        .claim(lease)
        .await
        .unwrap()
        .is_none());
    assert_eq!(status(&app, tenant, "early").await.0, "processing");
    assert!(app.store.analysis_jobs().complete(&first).await.unwrap());
    assert!(app.store.analysis_jobs().complete(&second).await.unwrap());

    // The later call's individual result lands first: its complete job still waits.
    analysed(&app, tenant, AnalysisKind::Individual, "late", 0).await;
    analysed(&app, tenant, AnalysisKind::Individual, "early", 0).await;
    app.project(&projector).await;
    let short = Duration::from_millis(50);
    let stale = app
        .store
        .analysis_jobs()
        .claim(short)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (stale.kind, stale.execution_id.as_str()),
        (AnalysisKind::Complete, "early")
    );
    assert!(
        app.store
            .analysis_jobs()
            .claim(lease)
            .await
            .unwrap()
            .is_none(),
        "one complete job of a contact at a time"
    );

    // The lease runs out: the job is claimed again and the stale claim can change nothing.
    tokio::time::sleep(Duration::from_millis(100)).await;
    let again = app
        .store
        .analysis_jobs()
        .claim(lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((again.execution_id.as_str(), again.attempts), ("early", 2));
    assert!(!app.store.analysis_jobs().complete(&stale).await.unwrap());
    assert!(app
        .store
        .analysis_jobs()
        .fail(&again, "boom")
        .await
        .unwrap());

    // A failed job no longer holds the contact's later one back.
    let later = app
        .store
        .analysis_jobs()
        .claim(lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(later.execution_id, "late");
    assert_eq!(
        app.store
            .analysis_jobs()
            .requeue(Some("early"), false)
            .await
            .unwrap(),
        1
    );
    assert!(
        app.store
            .analysis_jobs()
            .claim(lease)
            .await
            .unwrap()
            .is_none(),
        "the re-queued earlier job waits for the running one"
    );
    assert!(app.store.analysis_jobs().release(&later).await.unwrap());
    let rerun = app
        .store
        .analysis_jobs()
        .claim(lease)
        .await
        .unwrap()
        .unwrap();
    assert_eq!((rerun.execution_id.as_str(), rerun.attempts), ("early", 1));
    assert!(app
        .store
        .analysis_jobs()
        .retry_later(&rerun, Duration::from_secs(3600), "rate limited")
        .await
        .unwrap());

    let queue = app.store.analysis_jobs().status(5).await.unwrap();
    assert_eq!(queue.counts["completed"], 2);
    assert_eq!(queue.counts["pending"], 2);
    assert_eq!(queue.counts["failed"], 0);
    assert!(queue.oldest_pending_seconds.is_some());
    assert_eq!(queue.last_errors[0].error, "rate limited");
    assert_eq!(
        app.store.analysis_jobs().unfinished().await.unwrap()["pending"],
        2
    );
}
