//! Each Call's `outcome` and `cost` end to end (docs/CONTRACT.md §6): every provider's
//! endings through the real webhook routes, a booked demo from the analysis winning over
//! them, the KPIs `booked_calls`, `booking_rate` and `total_cost*`, the CSV's last columns,
//! `?outcome=`, and replay giving the same rows.

use calltrail_testkit::fixtures::{bolna, elevenlabs, retell, twilio, vapi};
use calltrail_testkit::responses::MockResponses;
use serde_json::{json, Value};

use crate::analysis::{complete_once, spawn_with_mock, tenant_with_prompts, PHONE};
use crate::analysis::{USER_COMPLETE, USER_INDIVIDUAL};
use crate::helpers::*;
use crate::providers::{post_signed, secret_of, set_secret, with_providers};

/// JSON bodies re-addressed to call `id` and edited by `edit`.
fn json_call(
    bodies: Vec<Vec<u8>>,
    id: &str,
    as_call: fn(&mut Value, &str, Option<&str>),
    edit: impl Fn(&mut Value),
) -> Vec<Vec<u8>> {
    bodies
        .iter()
        .map(|b| {
            let mut value: Value = serde_json::from_slice(b).unwrap();
            as_call(&mut value, id, None);
            edit(&mut value);
            serde_json::to_vec(&value).unwrap()
        })
        .collect()
}

async fn deliver(app: &TestApp, tenant: &Tenant, provider: &str, bodies: &[Vec<u8>]) {
    for body in bodies {
        let (status, answer) = if provider == "bolna" {
            app.post_bolna_json(&tenant.webhook_token, body).await
        } else {
            post_signed(app, provider, tenant, body).await
        };
        assert_eq!(status, 202, "{provider}: {answer}");
    }
}

/// (outcome, cost, cost_unit) of `provider`'s call `id`.
async fn outcome_of(app: &TestApp, tenant: &Tenant, provider: &str, id: &str) -> Value {
    let (status, call) = app
        .get(tenant, &format!("/v1/calls/{id}?provider={provider}"))
        .await;
    assert_eq!(status, 200, "{call}");
    json!([call["outcome"], call["cost"], call["cost_unit"]])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_providers_endings_and_costs_reach_the_call_kpis_csv_and_replay() {
    let mut app = spawn_app_with(|s| {
        with_providers(s);
        s.worker = false;
    })
    .await;
    let tenant = app.create_tenant().await;
    for provider in ["vapi", "elevenlabs", "twilio", "retell"] {
        let secret = secret_of(provider);
        set_secret(&app, &tenant, provider, &secret, std::time::Duration::ZERO).await;
    }

    deliver(&app, &tenant, "bolna", &fixtures::scenario("bolna/success")).await;
    deliver(&app, &tenant, "bolna", &fixtures::scenario("bolna/busy")).await;
    let voicemail = json_call(vapi::answered(), "vapi-voicemail", vapi::as_call, |v| {
        if v["message"]["endedReason"].is_string() {
            v["message"]["endedReason"] = json!("voicemail");
        }
    });
    deliver(&app, &tenant, "vapi", &voicemail).await;
    let transferred = json_call(
        retell::answered(),
        "retell-transfer",
        retell::as_call,
        |v| {
            v["call"]["disconnection_reason"] = json!("call_transfer");
        },
    );
    deliver(&app, &tenant, "retell", &transferred).await;
    let machine: Vec<Vec<u8>> = twilio::answered()
        .iter()
        .map(|form| {
            let form = twilio::as_call(form, "CA-machine", None);
            twilio::with_fields(&form, &[("AnsweredBy", "machine_end_beep")])
        })
        .collect();
    deliver(&app, &tenant, "twilio", &machine).await;
    let conversation = json_call(
        elevenlabs::answered(),
        "conv-answered",
        elevenlabs::as_call,
        |_| {},
    );
    deliver(&app, &tenant, "elevenlabs", &conversation).await;
    app.wait_until_projected().await;

    for (provider, id, expected) in [
        ("bolna", SUCCESS, json!(["other", 4.87, "cents"])),
        ("bolna", BUSY, json!(["busy", 0.0, "cents"])),
        (
            "vapi",
            "vapi-voicemail",
            json!(["voicemail", 0.0473, "usd"]),
        ),
        (
            "retell",
            "retell-transfer",
            json!(["transferred", 6.45, "cents"]),
        ),
        ("twilio", "CA-machine", json!(["voicemail", null, null])),
        (
            "elevenlabs",
            "conv-answered",
            json!(["other", 412.0, "credits"]),
        ),
    ] {
        assert_eq!(
            outcome_of(&app, &tenant, provider, id).await,
            expected,
            "{provider} {id}"
        );
    }

    // `?outcome=` filters the list; a value outside the list is refused naming the values.
    let (status, voicemails) = app.get(&tenant, "/v1/calls?outcome=voicemail").await;
    assert_eq!(status, 200, "{voicemails}");
    let mut ids: Vec<&str> = voicemails["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["execution_id"].as_str().unwrap())
        .collect();
    ids.sort_unstable();
    assert_eq!(ids, ["CA-machine", "vapi-voicemail"]);
    let (status, refused) = app.get(&tenant, "/v1/calls?outcome=booked-ish").await;
    assert_eq!(status, 400, "{refused}");
    assert_eq!(refused["error"]["code"], "invalid_parameter");
    let message = refused["error"]["message"].as_str().unwrap_or_default();
    assert!(
        message.contains("outcome") && message.contains("no_answer"),
        "{message}"
    );

    // Costs in different units are never added up: each unit's sum, no single total.
    let (status, kpis) = app.get(&tenant, "/v1/kpis").await;
    assert_eq!(status, 200, "{kpis}");
    assert_eq!(kpis["booked_calls"], 0);
    assert_eq!(kpis["booking_rate"], 0.0);
    assert_eq!(kpis["total_cost"], Value::Null);
    assert_eq!(kpis["total_cost_unit"], Value::Null);
    assert_eq!(
        kpis["total_cost_by_unit"],
        json!({"cents": 11.32, "credits": 412.0, "usd": 0.0473})
    );

    // The CSV's last columns are outcome, cost and cost_unit, after provider.
    let response = app
        .client
        .get(format!("{}/v1/calls.csv?outcome=voicemail", app.address))
        .bearer_auth(&tenant.api_key)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    let csv = response.text().await.unwrap();
    let mut lines = csv.split("\r\n");
    let header = lines.next().unwrap_or_default();
    assert!(
        header.ends_with(",provider,outcome,cost,cost_unit"),
        "{header}"
    );
    let rows: Vec<&str> = lines.filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 2, "{csv}");
    assert!(
        rows.iter()
            .any(|r| r.starts_with("vapi-voicemail,") && r.ends_with(",vapi,voicemail,0.0473,usd")),
        "{csv}"
    );
    assert!(
        rows.iter()
            .any(|r| r.starts_with("CA-machine,") && r.ends_with(",twilio,voicemail,,")),
        "{csv}"
    );

    app.stop().await;
    assert_read_tables_equal_replay(app.db.url(), "after every provider's endings").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_demo_booked_in_the_analysis_makes_the_call_booked_and_counts_in_the_kpis() {
    let mock = MockResponses::start().await;
    let mut app = spawn_with_mock(&mock, |_| {}).await;
    let tenant = tenant_with_prompts(&app, Some(USER_INDIVIDUAL), Some(USER_COMPLETE)).await;
    // The mock's analysis books a demo (`demo_book_datetime`); the provider's ending says a
    // voicemail picked up: booked wins.
    for body in fixtures::scenario("bolna/success") {
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        bolna::as_call(&mut value, SUCCESS, Some(PHONE));
        if value["status"] == "completed" {
            value["answered_by_voice_mail"] = json!(true);
        }
        let (status, answer) = app
            .post_bolna_json(&tenant.webhook_token, &serde_json::to_vec(&value).unwrap())
            .await;
        assert_eq!(status, 202, "{answer}");
    }
    for body in fixtures::scenario("bolna/busy") {
        app.post_bolna_json(&tenant.webhook_token, &body).await;
    }

    let call = app
        .wait_for_within(
            std::time::Duration::from_secs(60),
            &tenant,
            &format!("/v1/calls/{SUCCESS}"),
            |code, body| code == 200 && body["outcome"] == "booked",
        )
        .await;
    assert_eq!(call["cost"], 4.87);
    assert_eq!(call["cost_unit"], "cents");
    // The complete analysis follows the individual one: wait for it, so the replay below
    // compares settled tables.
    complete_once(&app, &tenant, PHONE, |_| true).await;
    app.wait_until_projected().await;

    let (status, kpis) = app.get(&tenant, "/v1/kpis").await;
    assert_eq!(status, 200, "{kpis}");
    assert_eq!(kpis["connected_calls"], 1);
    assert_eq!(kpis["booked_calls"], 1);
    assert_eq!(kpis["booking_rate"], 1.0, "booked ÷ connected");
    assert_eq!(
        kpis["total_cost"], 4.87,
        "one unit: 4.87 + the busy call's 0"
    );
    assert_eq!(kpis["total_cost_unit"], "cents");
    assert_eq!(kpis["total_cost_by_unit"], json!({"cents": 4.87}));
    let (_, booked) = app.get(&tenant, "/v1/calls?outcome=booked").await;
    assert_eq!(
        booked["items"].as_array().map(Vec::len),
        Some(1),
        "{booked}"
    );

    app.stop().await;
    assert_read_tables_equal_replay(app.db.url(), "after a booked analysis").await;
}
