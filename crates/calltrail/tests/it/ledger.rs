//! The credit ledger and the bounds of trust over HTTP: the same call costs the same in any
//! delivery order, and one absurd webhook cannot wreck a tenant's numbers (CONTRACT §4.5).

use serde_json::{json, Value};

use crate::helpers::*;

/// The success scenario's `call-disconnected` and `completed`, with these talk times.
fn endings(disconnected: Value, completed: Value) -> (Vec<u8>, Vec<u8>) {
    let bodies = fixtures::scenario("bolna/success");
    (
        with_fields(&bodies[3], &[("conversation_duration", disconnected)]),
        with_fields(&bodies[4], &[("conversation_duration", completed)]),
    )
}

async fn post_all(app: &TestApp, tenant: &Tenant, bodies: &[&[u8]]) {
    for body in bodies {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, body).await;
        assert!(status == 202 || status == 200, "{status} {answer}");
    }
    app.wait_until_projected().await;
}

fn transactions(credits: &Value) -> Vec<Value> {
    credits["transactions"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_call_costs_the_same_in_either_order_and_a_change_is_one_adjustment() {
    let app = spawn_app().await;
    // 27.2 s on the disconnect, 75 s once post-processing is done: 1 minute, then 2.
    let (disconnected, completed) = endings(json!(27.2), json!(75));
    let in_order = app.create_tenant().await;
    post_all(&app, &in_order, &[&disconnected, &completed]).await;
    let reversed = app.create_tenant().await;
    post_all(&app, &reversed, &[&completed, &disconnected]).await;

    let mut balances = Vec::new();
    for tenant in [&in_order, &reversed] {
        let call = app.call(tenant, SUCCESS).await;
        assert_eq!(call["credits_used"], 2, "{call}");
        assert_eq!(call["duration_seconds"], 75);
        assert_eq!(call["anomalies"], json!([]));
        let (_, credits) = app.get(tenant, "/v1/credits").await;
        let rows = transactions(&credits);
        let sum: i64 = rows.iter().filter_map(|t| t["amount"].as_i64()).sum();
        assert_eq!(sum, -2, "{credits}");
        assert_eq!(credits["balance"], -2);
        // Newest first; the first charge is the usage, never a second one.
        let kinds: Vec<&str> = rows
            .iter()
            .rev()
            .filter_map(|t| t["type"].as_str())
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| **k == "usage").count(),
            1,
            "{credits}"
        );
        for row in &rows {
            assert!(
                row["occurred_at"].is_string() && row["recorded_at"].is_string(),
                "{row}"
            );
        }
        balances.push(credits["balance"].clone());
    }
    let (_, credits) = app.get(&in_order, "/v1/credits").await;
    let rows = transactions(&credits);
    assert_eq!(rows.len(), 2, "{credits}");
    assert_eq!(
        (rows[1]["type"].clone(), rows[1]["amount"].clone()),
        (json!("usage"), json!(-1))
    );
    assert_eq!(
        (
            rows[0]["type"].clone(),
            rows[0]["amount"].clone(),
            rows[0]["balance_after"].clone()
        ),
        (json!("adjustment"), json!(-1), json!(-2))
    );
    assert_eq!(rows[0]["call_id"], SUCCESS);
    assert_eq!(balances[0], balances[1]);
    let (_, credits) = app.get(&reversed, "/v1/credits").await;
    assert_eq!(
        transactions(&credits).len(),
        1,
        "the later disconnect changes nothing: {credits}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_disconnect_saying_zero_fixes_nothing_and_records_no_row() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let (disconnected, completed) = endings(json!(0), json!(27.2));
    post_all(&app, &tenant, &[&disconnected]).await;
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    assert_eq!(
        transactions(&credits),
        Vec::<Value>::new(),
        "no row for a 0 charge"
    );
    post_all(&app, &tenant, &[&completed]).await;
    let call = app.call(&tenant, SUCCESS).await;
    assert_eq!(call["credits_used"], 1);
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    let rows = transactions(&credits);
    assert_eq!(rows.len(), 1, "{credits}");
    assert_eq!(rows[0]["type"], "usage");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_absurd_duration_is_kept_as_received_but_never_charged() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let (_, completed) = endings(json!(0), json!(1e15));
    post_all(&app, &tenant, &[&completed]).await;

    let call = app.call(&tenant, SUCCESS).await;
    assert_eq!(
        call["anomalies"],
        json!(["duration_out_of_range"]),
        "{call}"
    );
    assert_eq!(call["credits_used"], 0);
    assert_eq!(call["duration_seconds"], 0);
    assert_eq!(call["call_lifecycle_status"], "completed");
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    assert_eq!(credits["balance"], 0, "{credits}");
    assert_eq!(transactions(&credits), Vec::<Value>::new());
    let (_, kpis) = app.get(&tenant, "/v1/kpis").await;
    assert_eq!(kpis["credits_used"], 0, "{kpis}");
    // The event is stored exactly as received.
    let stored = app
        .sql_count(&format!(
            "SELECT count(*) FROM events WHERE stream_id = '{SUCCESS}'
                AND (payload->>'conversation_duration')::float8 = 1e15"
        ))
        .await;
    assert_eq!(stored, 1);
    let metrics = app.metrics().await;
    let counted = metric_value(&metrics, "calltrail_projector_anomalies_total");
    assert_eq!(counted, Some(1.0), "{metrics}");
    // A replay rebuilds the same numbers.
    assert_read_tables_equal_replay(app.db.url(), "after an absurd duration").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn untrusted_provider_times_become_the_receive_time() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let bodies = fixtures::scenario("bolna/success");
    let future = with_fields(
        &bodies[1],
        &[
            ("created_at", json!("9999-12-31T23:59:59")),
            ("updated_at", json!("9999-12-31T23:59:59")),
        ],
    );
    let before = chrono::Utc::now();
    post_all(&app, &tenant, &[&future]).await;
    let call = app.call(&tenant, SUCCESS).await;
    assert_eq!(
        call["anomalies"],
        json!(["timestamp_out_of_range"]),
        "{call}"
    );
    let created: chrono::DateTime<chrono::Utc> =
        call["created_at"].as_str().unwrap().parse().unwrap();
    assert!(
        created >= before - chrono::Duration::seconds(5)
            && created <= chrono::Utc::now() + chrono::Duration::seconds(5),
        "{created}"
    );

    let unreadable = with_fields(
        &bodies[2],
        &[("id", json!("call-2")), ("updated_at", json!("yesterday"))],
    );
    post_all(&app, &tenant, &[&unreadable]).await;
    let call = app.call(&tenant, "call-2").await;
    assert_eq!(
        call["anomalies"],
        json!(["timestamp_unparseable"]),
        "{call}"
    );
}
