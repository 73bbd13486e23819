//! KPIs match values computed by hand on a small scenario.

use serde_json::{json, Value};

use crate::helpers::*;

async fn lead(
    app: &TestApp,
    tenant: &Tenant,
    analysis_type: &str,
    key: &str,
    execution_id: &str,
    phone: &str,
    tag: &str,
) {
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    sqlx::query(
        "INSERT INTO lead_analytics (user_id, analysis_type, key, execution_id, phone_number, analysis_timestamp,
                                     lead_status_tag, analyzer, position)
         VALUES ($1, $2, $3, $4, $5, now(), $6, 'local', 0)",
    )
    .bind(tenant.user_id)
    .bind(analysis_type)
    .bind(key)
    .bind(execution_id)
    .bind(phone)
    .bind(tag)
    .execute(&pool)
    .await
    .unwrap();
    pool.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kpis_match_a_hand_computed_scenario() {
    let app = spawn_app_with(|s| s.worker = false).await;
    let tenant = app.create_tenant().await;
    let stranger = app.create_tenant().await;
    for name in ["success", "no-answer", "busy"] {
        for body in fixtures::scenario(format!("bolna/{name}")) {
            app.post_bolna_json(&tenant.webhook_token, &body).await;
        }
    }
    // A call that failed for another reason, two days later, to another number.
    let mut failed: Value =
        serde_json::from_slice(&fixtures::read("bolna/busy/03-busy.json")).unwrap();
    failed["id"] = json!("failed-call");
    failed["status"] = json!("failed");
    failed["created_at"] = json!("2025-10-10T08:00:00");
    failed["telephony_data"]["to_number"] = json!("+14155550199");
    app.post_bolna_json(&tenant.webhook_token, &serde_json::to_vec(&failed).unwrap())
        .await;
    app.wait_until_projected().await;

    lead(
        &app,
        &tenant,
        "individual",
        SUCCESS,
        SUCCESS,
        "+14155550132",
        "Hot",
    )
    .await;
    lead(
        &app,
        &tenant,
        "complete",
        "+14155550132",
        SUCCESS,
        "+14155550132",
        "Hot",
    )
    .await;
    lead(
        &app,
        &tenant,
        "complete",
        "+14155550141",
        NO_ANSWER,
        "+14155550141",
        "Warm",
    )
    .await;
    lead(
        &app,
        &tenant,
        "complete",
        "+14155550163",
        BUSY,
        "+14155550163",
        "Cold",
    )
    .await;
    lead(
        &app,
        &tenant,
        "complete",
        "+14155550199",
        "failed-call",
        "+14155550199",
        "Cold",
    )
    .await;
    lead(
        &app,
        &tenant,
        "complete",
        "+14155550100",
        "never-called",
        "+14155550100",
        "Hot",
    )
    .await;

    let (status, all) = app.get(&tenant, "/v1/kpis").await;
    assert_eq!(status, 200, "{all}");
    let expected_all = json!({
        "from": null, "to": null,
        "total_calls": 4, "connected_calls": 1, "missed_calls": 2, "failed_calls": 1,
        "connected_rate": 0.25, "missed_rate": 0.5,
        "avg_conversation_seconds": 28.0, "total_duration_seconds": 28, "credits_used": 1,
        "leads_analyzed": 1, "hot_leads": 1, "warm_leads": 1, "cold_leads": 2,
        // No analysis booked; Bolna's total_cost: 4.87 cents (success), 0 (the others').
        "booked_calls": 0, "booking_rate": 0.0,
        "total_cost": 4.87, "total_cost_unit": "cents", "total_cost_by_unit": {"cents": 4.87},
    });
    assert_eq!(all, expected_all);

    let (_, day) = app
        .get(&tenant, "/v1/kpis?from=2025-10-08&to=2025-10-09")
        .await;
    assert_eq!(day["total_calls"], 3);
    assert_eq!(day["failed_calls"], 0);
    assert_eq!(day["connected_rate"], 0.3333);
    assert_eq!(day["missed_rate"], 0.6667);
    assert_eq!(
        (
            day["hot_leads"].clone(),
            day["warm_leads"].clone(),
            day["cold_leads"].clone()
        ),
        (json!(1), json!(1), json!(1))
    );
    assert_eq!(day["from"], "2025-10-08T00:00:00Z");

    let (_, empty) = app.get(&stranger, "/v1/kpis").await;
    assert_eq!(empty["total_calls"], 0);
    assert_eq!(empty["connected_rate"], 0.0);
    assert_eq!(empty["hot_leads"], 0, "another tenant's leads never count");
    assert_eq!(
        (&empty["total_cost"], &empty["total_cost_by_unit"]),
        (&Value::Null, &json!({})),
        "no cost at all: no total"
    );
    let (status, bad) = app.get(&tenant, "/v1/kpis?from=soon").await;
    assert_eq!(
        (status, bad["error"]["code"].as_str()),
        (400, Some("invalid_time"))
    );
}
