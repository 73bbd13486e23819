//! Fixture scenarios through HTTP: exact Call fields, order independence, duplicates, billing.

use serde_json::{json, Value};

use crate::helpers::*;

async fn deliver(app: &TestApp, tenant: &Tenant, bodies: &[Vec<u8>]) {
    for body in bodies {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, body).await;
        assert!(status == 202 || status == 200, "{status} {answer}");
    }
}

/// The Call fields a user reads, without processing-time fields.
fn user_visible(call: &Value) -> Value {
    let mut call = call.clone();
    if let Some(object) = call.as_object_mut() {
        object.remove("updated_at");
        if let Some(Value::Array(events)) = object.get_mut("events") {
            for event in events {
                event.as_object_mut().unwrap().remove("recorded_at");
            }
        }
    }
    call
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answered_call_has_exactly_the_contract_fields() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    for (i, body) in fixtures::scenario("bolna/success").iter().enumerate() {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, body).await;
        assert_eq!(status, 202, "webhook {i}: {answer}");
        assert_eq!(answer["status"], "accepted");
        assert_eq!(answer["duplicate"], false);
    }
    let call = app
        .wait_for(&tenant, &format!("/v1/calls/{SUCCESS}"), |s, b| {
            s == 200 && b["call_lifecycle_status"] == "completed"
        })
        .await;

    assert_eq!(call["execution_id"], SUCCESS);
    assert_eq!(call["agent_id"], AGENT);
    assert_eq!(call["user_id"], tenant.user_id.to_string());
    assert_eq!(call["phone_number"], "+14155550132");
    assert_eq!(call["lead_type"], "outbound");
    assert_eq!(call["status"], "completed");
    assert_eq!(call["duration_seconds"], 28, "ceil(27.2)");
    assert_eq!(call["duration_minutes"], 1);
    assert_eq!(call["credits_used"], 1);
    assert_eq!(call["hangup_by"], "Callee");
    assert_eq!(call["hangup_reason"], "Call recipient hung up");
    assert_eq!(call["hangup_provider_code"], 4000);
    assert_eq!(
        call["recording_url"],
        "https://bolna-recordings-india.s3.ap-south-1.amazonaws.com/plivo/4f8c2e1a-93b7-4d05-8e6a-1c27b9d0f3a4.mp3"
    );
    assert_eq!(call["ringing_started_at"], "2025-10-08T09:15:02.947016Z");
    assert_eq!(call["call_answered_at"], "2025-10-08T09:15:08.306552Z");
    assert_eq!(call["call_disconnected_at"], "2025-10-08T09:15:36.771340Z");
    assert_eq!(call["completed_at"], "2025-10-08T09:28:12.540198Z");
    assert_eq!(call["created_at"], "2025-10-08T09:14:58.412903Z");
    assert!(call["contact_id"].is_string());
    assert!(call["updated_at"].is_string());
    let types: Vec<&str> = call["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["type"].as_str().unwrap())
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

    let (_, transcript) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}/transcript"))
        .await;
    assert!(transcript["content"]
        .as_str()
        .unwrap()
        .contains("rohan@acme-logistics.example"));

    let credits = app
        .wait_for(&tenant, "/v1/credits", |s, b| {
            s == 200 && b["transactions"].as_array().is_some_and(|t| !t.is_empty())
        })
        .await;
    assert_eq!(credits["balance"], -1);
    assert_eq!(credits["transactions"][0]["type"], "usage");
    assert_eq!(credits["transactions"][0]["amount"], -1);
    assert_eq!(credits["transactions"][0]["balance_after"], -1);
    assert_eq!(credits["transactions"][0]["call_id"], SUCCESS);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missed_calls_are_failed_uncharged_and_counted_on_the_contact() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    for (name, id, hangup) in [
        ("no-answer", NO_ANSWER, "Call unanswered"),
        ("busy", BUSY, "Call recipient was busy"),
    ] {
        deliver(&app, &tenant, &fixtures::scenario(format!("bolna/{name}"))).await;
        let call = app
            .wait_for(&tenant, &format!("/v1/calls/{id}"), |s, b| {
                s == 200 && b["call_lifecycle_status"] == name
            })
            .await;
        assert_eq!(call["status"], "failed");
        assert_eq!(call["duration_seconds"], 0);
        assert_eq!(call["duration_minutes"], 0);
        assert_eq!(call["credits_used"], 0);
        assert_eq!(call["hangup_by"], "Carrier");
        assert_eq!(call["hangup_reason"], hangup);
        assert!(call["call_answered_at"].is_null());
        assert!(call["completed_at"].is_null());
    }
    // A second unanswered call to the no-answer number counts on the same contact.
    for body in fixtures::scenario("bolna/no-answer") {
        deliver(
            &app,
            &tenant,
            &[with_fields(&body, &[("id", json!("second-try"))])],
        )
        .await;
    }
    app.wait_until_projected().await;
    let (_, contacts) = app.get(&tenant, "/v1/contacts").await;
    let mut items: Vec<(String, i64, String)> = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            let phone = c["phone_number"].as_str().unwrap().to_owned();
            (
                phone,
                c["not_connected"].as_i64().unwrap(),
                c["auto_created_from_call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    items.sort();
    assert_eq!(
        items,
        [
            ("+14155550141".to_owned(), 2, NO_ANSWER.to_owned()),
            ("+14155550163".to_owned(), 1, BUSY.to_owned())
        ],
        "{contacts}"
    );
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    assert_eq!(
        credits["balance"], 0,
        "missed calls cost nothing: {credits}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shuffled_duplicated_delivery_gives_the_in_order_call() {
    let app = spawn_app().await;
    let in_order = app.create_tenant().await;
    let shuffled = app.create_tenant().await;
    let bodies = fixtures::scenario("bolna/success");
    deliver(&app, &in_order, &bodies).await;

    // completed first, call-disconnected last, every webhook twice.
    let order = [4, 2, 4, 0, 3, 1, 2, 0, 1, 3];
    let mut duplicates = 0;
    for i in order {
        let (status, answer) = app
            .post_bolna_json(&shuffled.webhook_token, &bodies[i])
            .await;
        if answer["duplicate"] == true {
            assert_eq!(status, 200);
            assert_eq!(answer["status"], "duplicate");
            duplicates += 1;
        } else {
            assert_eq!(status, 202);
        }
    }
    assert_eq!(duplicates, 5);
    app.wait_until_projected().await;

    let mut expected = user_visible(&app.call(&in_order, SUCCESS).await);
    let mut actual = user_visible(&app.call(&shuffled, SUCCESS).await);
    for call in [&mut expected, &mut actual] {
        let object = call.as_object_mut().unwrap();
        for tenant_specific in ["user_id", "contact_id"] {
            object.remove(tenant_specific);
        }
    }
    assert_eq!(actual, expected);
    let (_, credits) = app.get(&shuffled, "/v1/credits").await;
    assert_eq!(
        credits["transactions"].as_array().unwrap().len(),
        1,
        "charged once: {credits}"
    );
    assert_eq!(credits["balance"], -1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_duplicate_changes_nothing_and_a_different_body_is_kept_for_review() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    deliver(&app, &tenant, &fixtures::scenario("bolna/success")).await;
    app.wait_until_projected().await;
    let before = user_visible(&app.call(&tenant, SUCCESS).await);

    let completed = fixtures::read("bolna/success/05-completed.json");
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &completed).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );
    let changed = with_fields(&completed, &[("conversation_duration", json!(300.0))]);
    let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &changed).await;
    assert_eq!(
        (status, &answer["duplicate"]),
        (200, &json!(true)),
        "{answer}"
    );

    app.wait_until_projected().await;
    let mut after = user_visible(&app.call(&tenant, SUCCESS).await);
    assert_eq!(
        after["conflicts"], 1,
        "the call shows the conflict: {after}"
    );
    after["conflicts"] = before["conflicts"].clone();
    assert_eq!(after, before, "and nothing else changed");
    assert_eq!(app.sql_count("SELECT count(*) FROM events").await, 5);
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    assert_eq!(credits["balance"], -1);

    // `admin conflicts` names the call and the field that differs.
    let rows = calltrail_json_lines(app.db.url(), &["admin", "conflicts"]);
    assert_eq!(rows.len(), 1, "{rows:?}");
    assert_eq!(rows[0]["execution_id"], SUCCESS);
    assert_eq!(rows[0]["event_type"], "completed");
    assert_eq!(rows[0]["provider"], "bolna");
    assert_eq!(rows[0]["tenant_id"], tenant.user_id.to_string());
    assert_eq!(rows[0]["fields"], json!(["conversation_duration"]));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn credits_are_charged_once_when_completed_arrives_before_call_disconnected() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let bodies = fixtures::scenario("bolna/success");
    deliver(&app, &tenant, &[bodies[4].clone(), bodies[3].clone()]).await;
    app.wait_until_projected().await;
    let call = app.call(&tenant, SUCCESS).await;
    assert_eq!(call["credits_used"], 1);
    assert_eq!(call["call_lifecycle_status"], "completed");
    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    assert_eq!(
        credits["transactions"].as_array().unwrap().len(),
        1,
        "{credits}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_ringing_after_busy_leaves_the_call_busy() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let bodies = fixtures::scenario("bolna/busy");
    deliver(
        &app,
        &tenant,
        &[bodies[0].clone(), bodies[2].clone(), bodies[1].clone()],
    )
    .await;
    app.wait_until_projected().await;
    let call = app.call(&tenant, BUSY).await;
    assert_eq!(call["call_lifecycle_status"], "busy");
    assert_eq!(call["status"], "failed");
    assert_eq!(
        call["ringing_started_at"], "2025-10-08T10:05:44.120470Z",
        "the late ringing still records its own time"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_new_number_creates_one_contact() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let initiated = fixtures::read("bolna/success/01-initiated.json");
    for (id, phone) in [
        ("c-1", "+14155550101"),
        ("c-2", "+14155550102"),
        ("c-3", "+14155550101"),
    ] {
        let mut body: Value = serde_json::from_slice(&initiated).unwrap();
        body["id"] = json!(id);
        body["telephony_data"]["to_number"] = json!(phone);
        let (status, _) = app
            .post_bolna_json(&tenant.webhook_token, &serde_json::to_vec(&body).unwrap())
            .await;
        assert_eq!(status, 202);
    }
    app.wait_until_projected().await;
    let (_, contacts) = app.get(&tenant, "/v1/contacts").await;
    let mut phones: Vec<(String, String)> = contacts["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["phone_number"].as_str().unwrap().to_owned(),
                c["auto_created_from_call_id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    phones.sort();
    assert_eq!(
        phones,
        [
            ("+14155550101".to_owned(), "c-1".to_owned()),
            ("+14155550102".to_owned(), "c-2".to_owned())
        ]
    );
    assert_eq!(
        contacts["items"][0]["name"], "Rohan Mehta",
        "the name the provider passed through"
    );
}

/// The contact `+14155550132` of the success fixtures, as `/v1/contacts` lists it.
async fn contact(app: &TestApp, tenant: &Tenant) -> Value {
    let (_, contacts) = app.get(tenant, "/v1/contacts").await;
    contacts["items"][0].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_contact_takes_the_newest_name_email_and_company_in_any_order() {
    let app = spawn_app_with(|s| s.worker = true).await;
    let completed = fixtures::read("bolna/success/05-completed.json");
    // A later call of the same number, made by someone else at another company.
    let later = with_fields(
        &completed,
        &[
            ("id", json!("later-call")),
            ("created_at", json!("2025-10-09T09:00:00")),
            ("updated_at", json!("2025-10-09T09:05:00")),
            (
                "context_details",
                json!({"recipient_data": {"lead_name": "Priya Shah", "company": "Northwind"}}),
            ),
            (
                "extracted_data",
                json!({"email": "priya@northwind.example"}),
            ),
        ],
    );
    let mut seen = Vec::new();
    for order in [[&completed, &later], [&later, &completed]] {
        let tenant = app.create_tenant().await;
        for body in order {
            let (status, answer) = app.post_bolna_json(&tenant.webhook_token, body).await;
            assert_eq!(status, 202, "{answer}");
        }
        // The analyses (local analyzer) come later still, and the transcript names Rohan:
        // wait for all of them — both calls' and the contact's complete analysis over both —
        // so that the comparison is of the settled contact.
        for id in [SUCCESS, "later-call"] {
            app.wait_for(&tenant, &format!("/v1/calls/{id}/analysis"), |s, _| {
                s == 200
            })
            .await;
        }
        app.wait_for(
            &tenant,
            "/v1/contacts/%2B14155550132/analysis",
            |s, body| s == 200 && body["previous_calls_analyzed"] == 2,
        )
        .await;
        app.wait_until_projected().await;
        seen.push(contact(&app, &tenant).await);
    }
    for contact in &seen {
        assert!(contact["email"].is_string(), "{contact}");
        assert!(
            contact["name"].is_string() && contact["company"].is_string(),
            "{contact}"
        );
    }
    let details = |c: &Value| (c["name"].clone(), c["email"].clone(), c["company"].clone());
    assert_eq!(
        details(&seen[0]),
        details(&seen[1]),
        "the order never matters"
    );

    // Without analyses the newest webhook's details win.
    let app = spawn_app().await;
    for order in [[&completed, &later], [&later, &completed]] {
        let tenant = app.create_tenant().await;
        for body in order {
            app.post_bolna_json(&tenant.webhook_token, body).await;
        }
        app.wait_until_projected().await;
        let c = contact(&app, &tenant).await;
        assert_eq!(
            details(&c),
            (
                json!("Priya Shah"),
                json!("priya@northwind.example"),
                json!("Northwind")
            ),
            "{c}"
        );
    }
}
