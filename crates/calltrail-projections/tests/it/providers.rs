//! Calls are identified by (provider, call id) (CONTRACT §5): the same id from two providers is
//! two calls with their own timelines, transcripts, charges and analyses; a lookup without a
//! provider says which providers have it; lists filter by provider; and a replay after a run
//! of every provider's fixtures reproduces every read table exactly.

use std::collections::BTreeMap;

use calltrail_core::analysis::AnalysisRecorded;
use calltrail_core::event::CALL_EVENT_SCHEMA_VERSION;
use calltrail_core::providers::{Parsed, ProviderEvent};
use calltrail_core::{AnalysisKind, AnalysisMeta, Analyzer, LeadAnalysis, LeadStatusTag, Provider};
use calltrail_eventlog::NewEvent;
use calltrail_projections::{replay, CallFilter, Lookup, ReplayOptions};
use calltrail_testkit::fixtures;
use uuid::Uuid;

use crate::support::{t0, TestApp};

/// The fixture files of every provider, as (provider, files in delivery order).
fn provider_fixtures() -> Vec<(Provider, Vec<&'static str>)> {
    vec![
        (
            Provider::Bolna,
            vec![
                "bolna/success/01-initiated.json",
                "bolna/success/02-ringing.json",
                "bolna/success/03-in-progress.json",
                "bolna/success/04-call-disconnected.json",
                "bolna/success/05-completed.json",
            ],
        ),
        (
            Provider::Vapi,
            vec!["vapi/status-update.json", "vapi/end-of-call-report.json"],
        ),
        (
            Provider::ElevenLabs,
            vec!["elevenlabs/post_call_transcription.json"],
        ),
        (
            Provider::Twilio,
            vec![
                "twilio/01-ringing.form",
                "twilio/02-in-progress.form",
                "twilio/03-completed.form",
            ],
        ),
        (
            Provider::Retell,
            vec![
                "retell/answered/01-call_started.json",
                "retell/answered/02-call_ended.json",
                "retell/answered/03-call_analyzed.json",
            ],
        ),
    ]
}

/// The provider's fixture files parsed as its webhook endpoint parses them, with the call id
/// replaced by `id` when given.
fn events_of(provider: Provider, files: &[&str], id: Option<&str>) -> Vec<ProviderEvent> {
    files
        .iter()
        .map(
            |file| match provider.webhooks().parse(&fixtures::read(file), t0()) {
                Ok(Parsed::Event(event)) => {
                    let mut event = *event;
                    if let Some(id) = id {
                        id.clone_into(&mut event.event.execution_id);
                    }
                    event
                }
                other => panic!("{file} is not a call event: {other:?}"),
            },
        )
        .collect()
}

/// Appends a provider's event the way the webhook endpoint does (key type: the provider's own).
async fn append(app: &TestApp, tenant: Uuid, provider: Provider, event: &ProviderEvent) {
    app.appender
        .append(NewEvent {
            tenant_id: tenant,
            provider: provider.as_str().to_owned(),
            stream_id: event.event.execution_id.clone(),
            event_type: event.event_type.clone(),
            schema_version: CALL_EVENT_SCHEMA_VERSION,
            occurred_at: event.event.occurred_at,
            data: serde_json::to_string(&event.event).unwrap(),
            payload: Some(event.payload.clone()),
            metadata: "{}".to_owned(),
        })
        .await
        .unwrap();
}

/// Appends an `analysis.individual` result for `provider`'s call `id`, as the worker does.
async fn analysed(app: &TestApp, tenant: Uuid, provider: Provider, id: &str, score: i32) {
    let data = AnalysisRecorded {
        kind: AnalysisKind::Individual,
        execution_id: id.to_owned(),
        phone_number: None,
        previous_calls_analyzed: 0,
        analysis_timestamp: t0(),
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
            lead_status_tag: LeadStatusTag::Warm,
            reasoning: serde_json::Map::new(),
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
    let event_type = calltrail_core::analysis::recorded_event_type(AnalysisKind::Individual);
    app.append_raw(
        tenant,
        provider.as_str(),
        id,
        event_type,
        calltrail_core::analysis::ANALYSIS_EVENT_SCHEMA_VERSION,
        &serde_json::to_string(&data).unwrap(),
    )
    .await;
}

const SHARED: &str = "shared-call-id";

#[tokio::test]
async fn the_same_call_id_from_two_providers_is_two_calls() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let fixtures = provider_fixtures();
    for (provider, files) in fixtures
        .iter()
        .filter(|(p, _)| [Provider::Bolna, Provider::Vapi].contains(p))
    {
        for event in events_of(*provider, files, Some(SHARED)) {
            append(&app, tenant, *provider, &event).await;
        }
    }
    analysed(&app, tenant, Provider::Vapi, SHARED, 71).await;
    app.project(&app.projector(3)).await;

    // Two calls, one per provider.
    let page = app
        .store
        .list_calls(tenant, &CallFilter::default(), None, 100)
        .await
        .unwrap();
    let mut keys: Vec<(&str, &str)> = page
        .items
        .iter()
        .map(|c| (c.provider.as_str(), c.execution_id.as_str()))
        .collect();
    keys.sort_unstable();
    assert_eq!(keys, [("bolna", SHARED), ("vapi", SHARED)]);

    // Without a provider the id is ambiguous and the answer names both.
    assert_eq!(
        app.store.get_call(tenant, None, SHARED).await.unwrap(),
        Lookup::Ambiguous(vec!["bolna".to_owned(), "vapi".to_owned()])
    );
    assert_eq!(
        app.store
            .get_transcript(tenant, None, SHARED)
            .await
            .unwrap(),
        Lookup::Ambiguous(vec!["bolna".to_owned(), "vapi".to_owned()])
    );
    assert_eq!(
        app.store
            .get_call(tenant, Some("twilio"), SHARED)
            .await
            .unwrap(),
        Lookup::Missing
    );

    // Each provider's call has its own timeline, facts and transcript.
    let bolna = app
        .store
        .get_call(tenant, Some("bolna"), SHARED)
        .await
        .unwrap()
        .found()
        .unwrap();
    let vapi = app
        .store
        .get_call(tenant, Some("vapi"), SHARED)
        .await
        .unwrap()
        .found()
        .unwrap();
    let types = |d: &calltrail_projections::views::CallDetail| {
        d.events
            .iter()
            .map(|e| e.event_type.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        types(&bolna),
        [
            "initiated",
            "ringing",
            "in-progress",
            "call-disconnected",
            "completed"
        ]
    );
    assert_eq!(
        types(&vapi),
        ["in-progress", "end-of-call-report", "analysis.individual"]
    );
    assert_eq!(
        (bolna.call.provider.as_str(), vapi.call.provider.as_str()),
        ("bolna", "vapi")
    );
    assert_eq!(bolna.call.call_lifecycle_status, "completed");
    assert_eq!(vapi.call.call_lifecycle_status, "completed");
    assert_ne!(bolna.call.agent_id, vapi.call.agent_id);
    let bolna_transcript = app
        .store
        .get_transcript(tenant, Some("bolna"), SHARED)
        .await
        .unwrap()
        .found()
        .unwrap();
    let vapi_transcript = app
        .store
        .get_transcript(tenant, Some("vapi"), SHARED)
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_ne!(bolna_transcript.content, vapi_transcript.content);
    // The analysis belongs to the Vapi call only; its transcript shows it.
    assert_eq!(vapi_transcript.analysis_status, "completed");
    assert_ne!(bolna_transcript.analysis_status, "completed");
    let analysis = app
        .store
        .call_analysis(tenant, "vapi", SHARED)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (analysis.provider.as_deref(), analysis.analysis.total_score),
        (Some("vapi"), 71)
    );
    assert!(app
        .store
        .call_analysis(tenant, "bolna", SHARED)
        .await
        .unwrap()
        .is_none());

    // Both calls are charged, each once.
    let credits = app.store.credits(tenant).await.unwrap();
    let usages = credits
        .transactions
        .iter()
        .filter(|t| t.kind == "usage" && t.call_id.as_deref() == Some(SHARED))
        .count();
    assert_eq!(usages, 2);
    assert_eq!(
        -credits.balance,
        bolna.call.credits_used + vapi.call.credits_used
    );

    // Each gets its own analysis job.
    let client = sql(&app).await;
    let jobs: Vec<String> = client
        .query(
            "SELECT provider FROM analysis_jobs
              WHERE execution_id = $1 AND kind = 'individual' ORDER BY provider",
            &[&SHARED],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(jobs, ["bolna", "vapi"]);

    // The list filters by provider.
    let only = |provider: &str| CallFilter {
        provider: Some(provider.to_owned()),
        ..CallFilter::default()
    };
    let vapi_page = app
        .store
        .list_calls(tenant, &only("vapi"), None, 100)
        .await
        .unwrap();
    assert_eq!(vapi_page.items.len(), 1);
    assert_eq!(vapi_page.items[0].provider, "vapi");
    assert!(app
        .store
        .list_calls(tenant, &only("retell"), None, 100)
        .await
        .unwrap()
        .items
        .is_empty());

    // Pages of one call each still list both: the provider breaks the tie.
    let first = app
        .store
        .list_calls(tenant, &CallFilter::default(), None, 1)
        .await
        .unwrap();
    let second = app
        .store
        .list_calls(
            tenant,
            &CallFilter::default(),
            first.next_cursor.as_deref(),
            1,
        )
        .await
        .unwrap();
    assert_eq!(first.items.len() + second.items.len(), 2);
    assert_ne!(first.items[0].provider, second.items[0].provider);
    assert!(second.next_cursor.is_none());
}

#[tokio::test]
async fn replay_after_a_run_of_every_provider_reproduces_every_read_table() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    app.grant(tenant, 100).await;
    let fixtures = provider_fixtures();
    let mut appended = 0;
    // Each provider's call under its own id and under one id they all share; later events
    // first, and every event twice.
    for (provider, files) in &fixtures {
        for id in [None, Some(SHARED)] {
            let events = events_of(*provider, files, id);
            for event in events.iter().rev().chain(events.iter()) {
                append(&app, tenant, *provider, event).await;
                appended += 1;
            }
        }
        analysed(&app, tenant, *provider, SHARED, 50).await;
    }
    assert!(appended > 20);
    app.project(&app.projector(4)).await;

    let calls = app.store.call_count(tenant).await.unwrap();
    assert_eq!(calls, 10, "five providers, two calls each");
    let live = dump(&app).await;
    assert_eq!(
        live["lead_analytics"].len(),
        5,
        "one individual analysis per provider's shared call"
    );
    assert_eq!(
        live["transcripts"].len(),
        8,
        "every call but Twilio's (its callbacks carry no transcript)"
    );

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
    let replayed = dump(&app).await;
    for (table, rows) in &live {
        assert_eq!(rows, &replayed[table], "{table}");
    }
}

/// Every read table's rows as JSON text, sorted (`updated_at`, processing time, left out;
/// credit transactions without their generated id).
async fn dump(app: &TestApp) -> BTreeMap<&'static str, Vec<String>> {
    let client = sql(app).await;
    let mut tables = BTreeMap::new();
    for table in [
        "calls",
        "contacts",
        "transcripts",
        "credit_balances",
        "credit_transactions",
        "call_events",
        "lead_analytics",
        "campaigns",
        "campaign_batches",
        "campaign_recipients",
        "call_attributions",
    ] {
        let query = format!(
            "SELECT (to_jsonb(t) - 'updated_at' - CASE WHEN '{table}' = 'credit_transactions'
                     THEN 'id' ELSE '' END)::text AS row
               FROM {table} t ORDER BY 1"
        );
        let rows = client.query(&query, &[]).await.unwrap();
        tables.insert(table, rows.iter().map(|r| r.get("row")).collect());
    }
    tables
}

async fn sql(app: &TestApp) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

/// The migrations that existed when 0010 was written (a database migrated then may have any
/// of them, 0012 and later too), 0010 itself, and those written after it, which always apply
/// after 0010 (the migrator applies what a database lacks in version order): the SQL of each,
/// in file order.
fn migrations_around_0010() -> (Vec<String>, String, Vec<String>) {
    const BEFORE_0010: [&str; 3] = ["0012_", "0015_", "0020_"];
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let (mut before, mut this, mut after) = (Vec::new(), String::new(), Vec::new());
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&file).unwrap();
        if name.starts_with("0010_") {
            this = sql;
        } else if name.as_str() < "0010_" || BEFORE_0010.iter().any(|p| name.starts_with(p)) {
            before.push(sql);
        } else {
            after.push(sql);
        }
    }
    assert!(!this.is_empty(), "0010 is in migrations/");
    (before, this, after)
}

#[tokio::test]
async fn the_migration_keeps_existing_bolna_rows_readable_and_finds_other_providers_in_the_log() {
    let db = calltrail_testkit::TestDb::empty().await;
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let (before, this, after) = migrations_around_0010();
    for sql in &before {
        client.batch_execute(sql).await.unwrap();
    }
    // Rows as the projector wrote them before calls had a provider: a Bolna call with its
    // transcript, timeline, contact and analyses, and a call whose events are Vapi's.
    let tenant = Uuid::new_v4();
    client
        .batch_execute(&format!(
            "INSERT INTO calls (user_id, execution_id, call_lifecycle_status, status, created_at,
                                state, last_position, phone_number)
             VALUES ('{tenant}', 'old-bolna', 'completed', 'completed', '2025-10-08T09:00:00Z',
                     '{{}}', 2, '+14155550132'),
                    ('{tenant}', 'old-vapi', 'completed', 'completed', '2025-10-08T10:00:00Z',
                     '{{}}', 3, NULL);
             INSERT INTO transcripts (user_id, execution_id, content, created_at, analysis_status)
             VALUES ('{tenant}', 'old-bolna', 'agent: hello', '2025-10-08T09:00:00Z', 'completed');
             INSERT INTO call_events (user_id, execution_id, event_type, occurred_at, recorded_at, position)
             VALUES ('{tenant}', 'old-bolna', 'completed', '2025-10-08T09:01:00Z', '2025-10-08T09:01:00Z', 2),
                    ('{tenant}', 'old-vapi', 'end-of-call-report', '2025-10-08T10:01:00Z', '2025-10-08T10:01:00Z', 3);
             INSERT INTO contacts (id, user_id, phone_number, auto_created_from_call_id, created_at)
             VALUES (gen_random_uuid(), '{tenant}', '+14155550132', 'old-bolna', '2025-10-08T09:00:00Z');
             INSERT INTO lead_analytics (user_id, analysis_type, key, execution_id, phone_number,
                                         analysis_timestamp, lead_status_tag, analyzer, position)
             VALUES ('{tenant}', 'individual', 'old-bolna', 'old-bolna', '+14155550132',
                     '2025-10-08T09:02:00Z', 'Hot', 'local', 4),
                    ('{tenant}', 'complete', '+14155550132', 'old-bolna', '+14155550132',
                     '2025-10-08T09:02:00Z', 'Hot', 'local', 5);
             INSERT INTO events (tenant_id, provider, stream_id, event_type, schema_version,
                                 occurred_at, data, payload_hash)
             VALUES ('{tenant}', 'bolna', 'old-bolna', 'completed', 1, '2025-10-08T09:01:00Z', '{{}}', ''),
                    ('{tenant}', 'vapi', 'old-vapi', 'end-of-call-report', 1, '2025-10-08T10:01:00Z', '{{}}', '');"
        ))
        .await
        .unwrap();
    client.batch_execute(&this).await.unwrap();
    for sql in &after {
        client.batch_execute(sql).await.unwrap();
    }

    let store = calltrail_projections::ReadStore::connect(db.url(), 2).unwrap();
    let bolna = store
        .get_call(tenant, None, "old-bolna")
        .await
        .unwrap()
        .found()
        .expect("the Bolna call is found without a provider");
    assert_eq!(bolna.call.provider, "bolna");
    assert_eq!(bolna.events.len(), 1);
    let transcript = store
        .get_transcript(tenant, Some("bolna"), "old-bolna")
        .await
        .unwrap()
        .found()
        .unwrap();
    assert_eq!(transcript.content, "agent: hello");
    let analysis = store
        .call_analysis(tenant, "bolna", "old-bolna")
        .await
        .unwrap()
        .unwrap();
    assert_eq!(analysis.provider.as_deref(), Some("bolna"));
    assert!(store
        .contact_analysis(tenant, "+14155550132")
        .await
        .unwrap()
        .is_some());
    let contacts = store.list_contacts(tenant, None, 10).await.unwrap();
    assert_eq!(
        contacts.items[0].auto_created_from_provider.as_deref(),
        Some("bolna")
    );
    // The call whose events are Vapi's is Vapi's, its timeline too.
    let vapi = store
        .get_call(tenant, Some("vapi"), "old-vapi")
        .await
        .unwrap()
        .found()
        .expect("the log says old-vapi is Vapi's");
    assert_eq!(vapi.events.len(), 1);
    let page = store
        .list_calls(tenant, &CallFilter::default(), None, 10)
        .await
        .unwrap();
    let providers: Vec<&str> = page.items.iter().map(|c| c.provider.as_str()).collect();
    assert_eq!(providers, ["vapi", "bolna"]);
}
