//! Migration 0014 on a database with calls: each existing row gets the outcome its lifecycle
//! status and its individual analysis say (what replay gives it), and no cost.

use uuid::Uuid;

/// The SQL of every migration file in file order, 0014 (this change) apart.
fn migrations_around_0014() -> (Vec<String>, String) {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../migrations");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "sql"))
        .collect();
    files.sort();
    let mut others = Vec::new();
    let mut this = String::new();
    for file in files {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let sql = std::fs::read_to_string(&file).unwrap();
        if name.starts_with("0014_") {
            this = sql;
        } else {
            others.push(sql);
        }
    }
    assert!(!this.is_empty(), "0014 is in migrations/");
    (others, this)
}

#[tokio::test]
async fn existing_calls_get_the_outcome_of_their_status_and_analysis_and_no_cost() {
    let db = calltrail_testkit::TestDb::empty().await;
    let (client, connection) = tokio_postgres::connect(db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let (others, this) = migrations_around_0014();
    for sql in &others {
        client.batch_execute(sql).await.unwrap();
    }
    let tenant = Uuid::new_v4();
    for (id, provider, lifecycle) in [
        ("c-busy", "bolna", "busy"),
        ("c-no-answer", "twilio", "no-answer"),
        ("c-error", "bolna", "error"),
        ("c-booked", "vapi", "completed"),
        ("c-talked", "bolna", "completed"),
        ("c-canceled", "twilio", "canceled"),
    ] {
        client
            .execute(
                "INSERT INTO calls (user_id, execution_id, provider, call_lifecycle_status, status,
                                    created_at, state, last_position)
                 VALUES ($1, $2, $3, $4, 'completed', now(), '{}', 1)",
                &[&tenant, &id, &provider, &lifecycle],
            )
            .await
            .unwrap();
    }
    // A booked demo for the Vapi call, and one for a Bolna call of the same id: only the
    // analysis of the call's own provider counts.
    for (key, provider, booked) in [
        ("c-booked", "vapi", Some("2025-10-09T15:00:00Z")),
        ("c-talked", "vapi", Some("2025-10-09T15:00:00Z")),
        ("c-talked", "bolna", None),
    ] {
        client
            .execute(
                "INSERT INTO lead_analytics (user_id, analysis_type, key, provider, execution_id,
                        analysis_timestamp, lead_status_tag, analyzer, position,
                        demo_book_datetime)
                 VALUES ($1, 'individual', $2, $3, $2, now(), 'Hot', 'local', 0, $4)",
                &[&tenant, &key, &provider, &booked],
            )
            .await
            .unwrap();
    }
    client.batch_execute(&this).await.unwrap();

    let rows = client
        .query(
            "SELECT execution_id, outcome, cost, cost_unit FROM calls ORDER BY execution_id",
            &[],
        )
        .await
        .unwrap();
    let seen: Vec<(String, String, Option<f64>, Option<String>)> = rows
        .iter()
        .map(|r| (r.get(0), r.get(1), r.get(2), r.get(3)))
        .collect();
    let expected = [
        ("c-booked", "booked"),
        ("c-busy", "busy"),
        ("c-canceled", "other"),
        ("c-error", "failed"),
        ("c-no-answer", "no_answer"),
        ("c-talked", "other"),
    ]
    .map(|(id, outcome)| (id.to_owned(), outcome.to_owned(), None, None));
    assert_eq!(seen, expected);
}
