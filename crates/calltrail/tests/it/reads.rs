//! Tenant isolation on every read route; keyset pagination under concurrent arrivals; filters.

use std::collections::HashSet;

use serde_json::{json, Value};

use crate::helpers::*;

fn call_body(id: &str, created_at: &str, status: &str, phone: &str) -> Vec<u8> {
    let mut body: Value =
        serde_json::from_slice(&fixtures::read("bolna/success/01-initiated.json")).unwrap();
    body["id"] = json!(id);
    body["status"] = json!(status);
    body["created_at"] = json!(created_at);
    body["updated_at"] = json!(created_at);
    body["telephony_data"]["to_number"] = json!(phone);
    serde_json::to_vec(&body).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_read_route_shows_another_tenants_data() {
    let app = spawn_app().await;
    let owner = app.create_tenant().await;
    let stranger = app.create_tenant().await;
    for body in fixtures::scenario("bolna/success") {
        app.post_bolna_json(&owner.webhook_token, &body).await;
    }
    app.wait_until_projected().await;

    for template in ["/v1/calls/ID", "/v1/calls/ID/transcript"] {
        let path = template.replace("ID", SUCCESS);
        let (status, body) = app.get(&owner, &path).await;
        assert_eq!(status, 200, "{path}: {body}");
        let (status, foreign) = app.get(&stranger, &path).await;
        assert_eq!(status, 404, "{path}: {foreign}");
        let (status, missing) = app
            .get(&stranger, &template.replace("ID", "no-such-call"))
            .await;
        assert_eq!(status, 404);
        assert_eq!(foreign["error"]["code"], "call_not_found");
        assert_eq!(
            foreign["error"]["code"], missing["error"]["code"],
            "another tenant's call looks exactly like a missing one"
        );
    }
    let (_, calls) = app.get(&stranger, "/v1/calls").await;
    assert_eq!(calls["items"], json!([]));
    let (_, contacts) = app.get(&stranger, "/v1/contacts").await;
    assert_eq!(contacts["items"], json!([]));
    let (_, credits) = app.get(&stranger, "/v1/credits").await;
    assert_eq!(credits, json!({"balance": 0, "transactions": []}));

    let (_, calls) = app.get(&owner, "/v1/calls").await;
    assert_eq!(calls["items"].as_array().unwrap().len(), 1);
    let (_, credits) = app.get(&owner, "/v1/credits").await;
    assert_eq!(credits["balance"], -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn keyset_pagination_returns_every_call_once_while_new_calls_arrive() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let mut existing = HashSet::new();
    for i in 0..45 {
        // Some calls share a created_at, so the cursor must break ties.
        let id = format!("page-{i:02}");
        let created = format!("2025-10-08T09:{:02}:00", i / 3);
        app.post_bolna_json(
            &tenant.webhook_token,
            &call_body(&id, &created, "initiated", "+14155550101"),
        )
        .await;
        existing.insert(id);
    }
    app.wait_until_projected().await;

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    let mut page = 0;
    loop {
        let path = match &cursor {
            Some(c) => format!("/v1/calls?limit=10&cursor={}", urlencode(c)),
            None => "/v1/calls?limit=10".to_owned(),
        };
        let (status, body) = app.get(&tenant, &path).await;
        assert_eq!(status, 200, "{body}");
        let items = body["items"].as_array().unwrap();
        assert!(items.len() <= 10);
        seen.extend(
            items
                .iter()
                .map(|c| c["execution_id"].as_str().unwrap().to_owned()),
        );
        // New calls (newer and older than the current page) arrive between pages.
        for (j, created) in ["2030-01-01T00:00:00", "2020-01-01T00:00:00"]
            .iter()
            .enumerate()
        {
            let id = format!("new-{page}-{j}");
            app.post_bolna_json(
                &tenant.webhook_token,
                &call_body(&id, created, "initiated", "+14155550102"),
            )
            .await;
        }
        page += 1;
        match body["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => break,
        }
        assert!(page < 50, "pagination must end");
    }
    let unique: HashSet<_> = seen.iter().cloned().collect();
    assert_eq!(unique.len(), seen.len(), "no call twice: {seen:?}");
    assert!(
        existing.is_subset(&unique),
        "every call that existed is returned: missing {:?}",
        existing.difference(&unique).collect::<Vec<_>>()
    );
    // Newest first.
    let page_ids: Vec<_> = seen
        .iter()
        .filter(|id| id.starts_with("page-"))
        .cloned()
        .collect();
    let mut sorted = page_ids.clone();
    sorted.sort_by(|a, b| b.cmp(a));
    assert_eq!(page_ids, sorted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_can_be_filtered() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    for (name, _) in [
        ("success", SUCCESS),
        ("no-answer", NO_ANSWER),
        ("busy", BUSY),
    ] {
        for body in fixtures::scenario(format!("bolna/{name}")) {
            app.post_bolna_json(&tenant.webhook_token, &body).await;
        }
    }
    app.post_bolna_json(
        &tenant.webhook_token,
        &call_body(
            "other-day",
            "2025-10-09T10:00:00",
            "initiated",
            "+14155550109",
        ),
    )
    .await;
    app.wait_until_projected().await;

    let ids = |body: &Value| -> Vec<String> {
        let mut ids: Vec<String> = body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["execution_id"].as_str().unwrap().to_owned())
            .collect();
        ids.sort();
        ids
    };
    let (_, body) = app.get(&tenant, "/v1/calls?status=failed").await;
    assert_eq!(ids(&body), [BUSY, NO_ANSWER], "sorted ids");
    let (_, body) = app.get(&tenant, "/v1/calls?lifecycle_status=busy").await;
    assert_eq!(ids(&body), [BUSY]);
    let (_, body) = app.get(&tenant, "/v1/calls?phone=%2B14155550109").await;
    assert_eq!(ids(&body), ["other-day"]);
    let (_, body) = app.get(&tenant, "/v1/calls?from=2025-10-09").await;
    assert_eq!(ids(&body), ["other-day"]);
    let (_, body) = app.get(&tenant, "/v1/calls?to=2025-10-09").await;
    assert_eq!(ids(&body).len(), 3);
    let (_, body) = app
        .get(
            &tenant,
            &format!("/v1/calls?agent_id={AGENT}&status=completed"),
        )
        .await;
    assert_eq!(ids(&body), [SUCCESS]);
}

fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                char::from(b).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_report_requests_appends_and_projector_lag() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    for body in fixtures::scenario("bolna/busy") {
        app.post_bolna_json(&tenant.webhook_token, &body).await;
    }
    app.post_bolna_json(&tenant.webhook_token, &fixtures::scenario("bolna/busy")[0])
        .await;
    let text = app.metrics().await;
    let value = |name: &str| metric_value(&text, name);
    assert_eq!(value("calltrail_appends_total"), Some(3.0), "{text}");
    assert_eq!(value("calltrail_append_duplicates_total"), Some(1.0));
    assert!(text.contains("calltrail_projector_lag_events"));
    assert!(text.contains("calltrail_oldest_blocking_transaction_seconds"));
    assert!(text.contains(r#"calltrail_http_requests_total{method="POST",route="/v1/webhooks/{provider}/{webhook_token}",status="202"} 3"#), "{text}");
}

#[tokio::test]
async fn calls_can_be_sorted_by_duration_and_status_and_cursors_keep_their_order() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    for scenario in ["bolna/success", "bolna/no-answer", "bolna/busy"] {
        for body in fixtures::scenario(scenario) {
            app.post_bolna(&tenant.webhook_token, &body).await;
        }
    }
    app.wait_until_projected().await;
    let ids = |body: &Value| -> Vec<String> {
        body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["execution_id"].as_str().unwrap().to_owned())
            .collect()
    };
    let (status, longest) = app.get(&tenant, "/v1/calls?sort=longest&limit=1").await;
    assert_eq!(status, 200, "{longest}");
    assert_eq!(
        ids(&longest),
        [SUCCESS],
        "the only call with a conversation"
    );
    let cursor = longest["next_cursor"].as_str().unwrap().to_owned();
    let (_, rest) = app
        .get(&tenant, &format!("/v1/calls?sort=longest&cursor={cursor}"))
        .await;
    assert_eq!(ids(&rest), [BUSY, NO_ANSWER], "then newest first");
    let (status, body) = app
        .get(&tenant, &format!("/v1/calls?sort=status&cursor={cursor}"))
        .await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_cursor"))
    );
    let (_, by_status) = app.get(&tenant, "/v1/calls?sort=status").await;
    assert_eq!(ids(&by_status), [SUCCESS, BUSY, NO_ANSWER]);
    let (status, body) = app.get(&tenant, "/v1/calls?sort=loudest").await;
    assert_eq!(
        (status, &body["error"]["code"]),
        (400, &json!("invalid_query"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_call_and_a_call_without_transcript_or_analysis_are_told_apart() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let ringing = fixtures::read("bolna/success/02-ringing.json");
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &ringing).await;
    assert_eq!(status, 202, "{answer}");
    app.wait_for(&tenant, &format!("/v1/calls/{SUCCESS}"), |s, _| s == 200)
        .await;

    for path in [
        "/v1/calls/nope",
        "/v1/calls/nope/transcript",
        "/v1/calls/nope/analysis",
    ] {
        let (status, body) = app.get(&tenant, path).await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some("call_not_found")),
            "{path}: {body}"
        );
    }
    for (part, code) in [
        ("transcript", "transcript_not_available"),
        ("analysis", "analysis_not_available"),
    ] {
        let (status, body) = app
            .get(&tenant, &format!("/v1/calls/{SUCCESS}/{part}"))
            .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (404, Some(code)),
            "{part}: {body}"
        );
        let message = body["error"]["message"].as_str().unwrap_or("");
        assert!(
            message.contains("`ringing`"),
            "the call's status is named: {message}"
        );
    }
}
