//! The reads the web console added beside the API's: calls sorted by duration and status with
//! keyset cursors, calls per UTC day, contacts' lead standings and score history, console
//! sessions, and raw payloads from the event log.

use std::collections::HashSet;

use calltrail_core::analysis::AnalysisRecorded;
use calltrail_core::{AnalysisKind, AnalysisMeta, Analyzer, LeadAnalysis, LeadStatusTag};
use calltrail_projections::{CallFilter, CallSort, Error};
use chrono::{NaiveDate, TimeDelta};
use serde_json::Map;
use sha2::{Digest, Sha256};
use uuid::Uuid;

use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_eventlog::NewEvent;

use crate::support::{at, fixture_as, fixture_bytes, TestApp};

const ANSWERED: [&str; 5] = [
    "01-initiated",
    "02-ringing",
    "03-in-progress",
    "04-call-disconnected",
    "05-completed",
];

/// An answered call of `seconds` created at `created`.
async fn answered(app: &TestApp, tenant: Uuid, id: &str, phone: &str, created: &str, seconds: f64) {
    for name in ANSWERED {
        let mut event = fixture_as("success", name, id, Some(phone));
        event.call_created_at = Some(at(created));
        if event.conversation_seconds.is_some() {
            event.conversation_seconds = Some(seconds);
        }
        app.append_call(tenant, &event).await;
    }
}

/// A busy call created at `created`.
async fn busy(app: &TestApp, tenant: Uuid, id: &str, created: &str) {
    let mut event = fixture_as("busy", "03-busy", id, Some("+14155550199"));
    event.call_created_at = Some(at(created));
    app.append_call(tenant, &event).await;
}

async fn all_pages(app: &TestApp, tenant: Uuid, sort: CallSort) -> Vec<String> {
    let filter = CallFilter {
        sort,
        ..CallFilter::default()
    };
    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .list_calls(tenant, &filter, cursor.as_deref(), 3)
            .await
            .unwrap();
        seen.extend(page.items.into_iter().map(|c| c.execution_id));
        cursor = page.next_cursor;
        if cursor.is_none() {
            return seen;
        }
    }
}

#[tokio::test]
async fn every_sort_pages_through_every_call_once_in_its_order() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    // Equal durations and equal creation times, so the tie-breakers matter.
    let calls = [
        ("a", "2025-10-01T10:00:00", 30.0),
        ("b", "2025-10-01T10:00:00", 30.0),
        ("c", "2025-10-02T10:00:00", 90.0),
        ("d", "2025-10-03T10:00:00", 5.0),
        ("e", "2025-10-03T10:00:00", 90.0),
    ];
    for (id, created, seconds) in calls {
        answered(&app, tenant, id, "+14155550132", created, seconds).await;
    }
    for (id, created) in [("f", "2025-10-02T10:00:00"), ("g", "2025-10-04T10:00:00")] {
        busy(&app, tenant, id, created).await;
    }
    app.project(&app.projector(500)).await;

    let order = |ids: &str| ids.split(' ').map(str::to_owned).collect::<Vec<_>>();
    assert_eq!(
        all_pages(&app, tenant, CallSort::Newest).await,
        order("g e d f c b a")
    );
    assert_eq!(
        all_pages(&app, tenant, CallSort::Oldest).await,
        order("a b c f d e g")
    );
    // Longest: duration desc, then newest first; the busy calls last (0 s).
    assert_eq!(
        all_pages(&app, tenant, CallSort::Longest).await,
        order("e c b a d g f")
    );
    assert_eq!(
        all_pages(&app, tenant, CallSort::Shortest).await,
        order("f g d a b c e")
    );
    // Status: completed before failed, newest first within each.
    assert_eq!(
        all_pages(&app, tenant, CallSort::Status).await,
        order("e d c b a g f")
    );

    // A cursor belongs to its order.
    let longest = CallFilter {
        sort: CallSort::Longest,
        ..CallFilter::default()
    };
    let page = app
        .store
        .list_calls(tenant, &longest, None, 2)
        .await
        .unwrap();
    let cursor = page.next_cursor.unwrap();
    let err = app
        .store
        .list_calls(tenant, &CallFilter::default(), Some(&cursor), 2)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::InvalidCursor), "{err:?}");
}

#[tokio::test]
async fn calls_per_day_splits_the_kpis_by_utc_day_and_fills_empty_days() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let other = app.user("b@example.com").await;
    answered(
        &app,
        tenant,
        "late",
        "+14155550132",
        "2025-10-01T23:59:59",
        20.0,
    )
    .await;
    answered(
        &app,
        tenant,
        "early",
        "+14155550133",
        "2025-10-02T00:00:00",
        20.0,
    )
    .await;
    busy(&app, tenant, "missed", "2025-10-02T12:00:00").await;
    busy(&app, tenant, "outside", "2025-10-04T00:00:00").await;
    busy(&app, other, "theirs", "2025-10-02T12:00:00").await;
    app.project(&app.projector(500)).await;

    let day = |d: u32| NaiveDate::from_ymd_opt(2025, 10, d).unwrap();
    let days = app
        .store
        .calls_per_day(tenant, day(1), day(3))
        .await
        .unwrap();
    let counts: Vec<_> = days
        .iter()
        .map(|d| (d.date, d.total_calls, d.connected_calls, d.missed_calls))
        .collect();
    assert_eq!(
        counts,
        [(day(1), 1, 1, 0), (day(2), 2, 1, 1), (day(3), 0, 0, 0)]
    );
    // The same window as the KPIs': the days add up to them.
    let from = at("2025-10-01T00:00:00");
    let kpis = app
        .store
        .kpis(tenant, Some(from), Some(from + TimeDelta::days(3)))
        .await
        .unwrap();
    assert_eq!(
        kpis.total_calls,
        days.iter().map(|d| d.total_calls).sum::<i64>()
    );
    assert_eq!(
        kpis.connected_calls,
        days.iter().map(|d| d.connected_calls).sum::<i64>()
    );
    assert_eq!(
        kpis.missed_calls,
        days.iter().map(|d| d.missed_calls).sum::<i64>()
    );

    for (first, last) in [(day(3), day(1)), (day(1), day(1) + TimeDelta::days(366))] {
        let err = app
            .store
            .calls_per_day(tenant, first, last)
            .await
            .unwrap_err();
        assert!(
            matches!(err, Error::InvalidInput(_)),
            "{first}..{last}: {err:?}"
        );
    }
}

fn recorded(kind: AnalysisKind, id: &str, phone: &str, at_text: &str, score: i32) -> String {
    let data = AnalysisRecorded {
        kind,
        execution_id: id.to_owned(),
        phone_number: Some(phone.to_owned()),
        previous_calls_analyzed: if kind == AnalysisKind::Complete { 2 } else { 0 },
        analysis_timestamp: at(at_text),
        analysis: LeadAnalysis {
            total_score: score,
            intent_level: None,
            intent_score: 3,
            urgency_level: None,
            urgency_score: 3,
            budget_constraint: None,
            budget_score: 3,
            fit_alignment: None,
            fit_score: 3,
            engagement_health: None,
            engagement_score: 3,
            lead_status_tag: if score >= 70 {
                LeadStatusTag::Hot
            } else {
                LeadStatusTag::Cold
            },
            reasoning: Map::new(),
            company_name: None,
            extracted_name: None,
            extracted_email: None,
            smart_notification: None,
            cta_pricing_clicked: false,
            cta_demo_clicked: false,
            cta_followup_clicked: false,
            cta_sample_clicked: false,
            cta_escalated_to_human: false,
            demo_book_datetime: None,
        },
        meta: AnalysisMeta {
            analyzer: Analyzer::Local,
            model: None,
            response_id: None,
            tokens_used: None,
        },
    };
    serde_json::to_string(&data).unwrap()
}

#[tokio::test]
async fn a_contact_s_score_history_is_its_analysed_calls_oldest_first() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let stranger = app.user("b@example.com").await;
    let phone = "+14155550132";
    answered(&app, tenant, "first", phone, "2025-10-01T10:00:00", 20.0).await;
    answered(&app, tenant, "second", phone, "2025-10-05T10:00:00", 20.0).await;
    answered(
        &app,
        tenant,
        "elsewhere",
        "+14155550177",
        "2025-10-05T10:00:00",
        20.0,
    )
    .await;
    for (kind, id, when, score) in [
        (
            AnalysisKind::Individual,
            "second",
            "2025-10-05T10:30:00",
            80,
        ),
        (AnalysisKind::Individual, "first", "2025-10-01T10:30:00", 40),
        (
            AnalysisKind::Individual,
            "elsewhere",
            "2025-10-05T10:30:00",
            10,
        ),
        (AnalysisKind::Complete, "second", "2025-10-05T10:31:00", 75),
    ] {
        let data = recorded(kind, id, phone, when, score);
        let event_type = calltrail_core::analysis::recorded_event_type(kind);
        app.append_raw(tenant, "bolna", id, event_type, 1, &data)
            .await;
    }
    app.project(&app.projector(500)).await;

    let history = app.store.score_history(tenant, phone).await.unwrap();
    let points: Vec<_> = history
        .iter()
        .map(|p| {
            (
                p.execution_id.as_str(),
                p.total_score,
                p.lead_status_tag.as_str(),
            )
        })
        .collect();
    assert_eq!(points, [("first", 40, "Cold"), ("second", 80, "Hot")]);
    assert!(app
        .store
        .score_history(stranger, phone)
        .await
        .unwrap()
        .is_empty());

    let phones = [
        phone.to_owned(),
        "+14155550177".to_owned(),
        "+19999999999".to_owned(),
    ];
    let standings = app.store.lead_standings(tenant, &phones).await.unwrap();
    assert_eq!(
        standings.len(),
        1,
        "only complete analyses count: {standings:?}"
    );
    let standing = &standings[phone];
    assert_eq!(
        (standing.lead_status_tag.as_str(), standing.total_score),
        ("Hot", 75)
    );
    assert!(app
        .store
        .lead_standings(stranger, &phones)
        .await
        .unwrap()
        .is_empty());

    let contact = app.store.contact_by_phone(tenant, phone).await.unwrap();
    assert_eq!(
        contact.map(|c| c.auto_created_from_call_id),
        Some(Some("first".to_owned()))
    );
    assert!(app
        .store
        .contact_by_phone(stranger, phone)
        .await
        .unwrap()
        .is_none());
}

#[tokio::test]
async fn sessions_expire_are_revoked_and_are_stored_only_hashed() {
    let app = TestApp::new().await;
    let user = app.user("a@example.com").await;
    let session = app
        .store
        .tenancy()
        .start_console_session(user, TimeDelta::hours(1))
        .await
        .unwrap();
    assert!(session.id.starts_with("cts_") && session.id.len() == 4 + 64);
    assert_eq!(
        app.store
            .tenancy()
            .console_session_user(&session.id)
            .await
            .unwrap(),
        Some(user)
    );
    assert_eq!(
        app.store
            .tenancy()
            .console_session_user("cts_unknown")
            .await
            .unwrap(),
        None
    );
    assert!(!format!("{session:?}").contains(&session.id));

    let expired = app
        .store
        .tenancy()
        .start_console_session(user, TimeDelta::seconds(-1))
        .await
        .unwrap();
    assert_eq!(
        app.store
            .tenancy()
            .console_session_user(&expired.id)
            .await
            .unwrap(),
        None
    );

    assert!(app
        .store
        .tenancy()
        .revoke_console_session(&session.id)
        .await
        .unwrap());
    assert!(
        !app.store
            .tenancy()
            .revoke_console_session(&session.id)
            .await
            .unwrap(),
        "once"
    );
    assert_eq!(
        app.store
            .tenancy()
            .console_session_user(&session.id)
            .await
            .unwrap(),
        None
    );

    // Starting a session prunes those that ended more than a week ago.
    let ancient = app
        .store
        .tenancy()
        .start_console_session(user, TimeDelta::days(-8))
        .await
        .unwrap();
    let newest = app
        .store
        .tenancy()
        .start_console_session(user, TimeDelta::hours(1))
        .await
        .unwrap();
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query("SELECT encode(hash, 'hex') FROM console_sessions", &[])
        .await
        .unwrap();
    let stored: HashSet<String> = rows.iter().map(|r| r.get(0)).collect();
    let hashed = |id: &str| hex::encode(Sha256::digest(id.as_bytes()));
    let expected: HashSet<String> = [&session.id, &expired.id, &newest.id]
        .map(|id| hashed(id))
        .into();
    assert_eq!(
        stored, expected,
        "the ancient one is gone; ids are stored only hashed"
    );
    assert!(!stored.contains(&hashed(&ancient.id)));
}

#[tokio::test]
async fn raw_payloads_are_read_by_position_for_their_tenant_only() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let stranger = app.user("b@example.com").await;
    // As the webhook endpoint appends: the normalized event and the payload as received.
    for name in ANSWERED {
        let event = fixture_as("success", name, "c1", None);
        let mut payload: serde_json::Value =
            serde_json::from_slice(&fixture_bytes("success", name)).unwrap();
        payload["id"] = "c1".into();
        app.appender
            .append(NewEvent {
                tenant_id: tenant,
                provider: "bolna".to_owned(),
                stream_id: "c1".to_owned(),
                event_type: event.status.as_str().to_owned(),
                schema_version: CALL_EVENT_SCHEMA_VERSION,
                occurred_at: event.occurred_at,
                data: serde_json::to_string(&event).unwrap(),
                payload: Some(payload.to_string()),
                metadata: "{}".to_owned(),
            })
            .await
            .unwrap();
    }
    app.project(&app.projector(500)).await;
    let call = app.call(tenant, "c1").await;
    let positions: Vec<i64> = call.events.iter().map(|e| e.position).collect();
    assert_eq!(positions.len(), 5);

    let payloads = app.log.payloads(tenant, &positions).await.unwrap();
    let types: Vec<_> = payloads.iter().map(|p| p.event_type.as_str()).collect();
    assert_eq!(types, ANSWERED.map(|n| &n[3..]));
    let first = payloads[0].payload.as_deref().unwrap_or_default();
    assert!(first.contains('\n'), "indented for reading: {first}");
    let value: serde_json::Value = serde_json::from_str(first).unwrap();
    assert_eq!(
        (&value["id"], &value["status"]),
        (&"c1".into(), &"initiated".into())
    );
    assert!(app
        .log
        .payloads(stranger, &positions)
        .await
        .unwrap()
        .is_empty());
}
