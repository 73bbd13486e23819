//! One call id used by two providers, through the running server: the call routes tell the
//! calls apart by `?provider=`, refuse to guess without it, and the ledger and the console
//! link to the right one.

use std::time::Duration;

use serde_json::Value;

use crate::console::{create_campaign, csrf_of, ConsoleClient};
use crate::helpers::*;
use crate::providers::{secret_of, set_secret, with_providers};

/// A Bolna call and a Vapi call both under [`SUCCESS`], delivered and projected.
async fn two_calls_with_one_id() -> (TestApp, Tenant) {
    use calltrail_testkit::fixtures::vapi;
    let app = spawn_app_with(with_providers).await;
    let tenant = app.create_tenant().await;
    set_secret(&app, &tenant, "vapi", &secret_of("vapi"), Duration::ZERO).await;
    for body in fixtures::scenario("bolna/success") {
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    for body in vapi::answered() {
        let mut value: Value = serde_json::from_slice(&body).unwrap();
        vapi::as_call(&mut value, SUCCESS, None);
        let body = serde_json::to_vec(&value).unwrap();
        let (status, answer) = crate::providers::post_signed(&app, "vapi", &tenant, &body).await;
        assert!(status == 202 || status == 200, "{status} {answer}");
    }
    app.wait_until_projected().await;
    (app, tenant)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_two_providers_use_is_found_by_provider_and_never_guessed() {
    let (app, tenant) = two_calls_with_one_id().await;

    // Without a provider, every route of the call refuses to pick one and names both.
    for route in ["", "/transcript", "/analysis"] {
        let (status, body) = app
            .get(&tenant, &format!("/v1/calls/{SUCCESS}{route}"))
            .await;
        assert_eq!(status, 409, "{route}: {body}");
        assert_eq!(body["error"]["code"], "ambiguous_call_id", "{route}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(
            message.contains("bolna") && message.contains("vapi") && message.contains("provider"),
            "{route}: {message}"
        );
        // A blank provider is no provider.
        let (status, _) = app
            .get(&tenant, &format!("/v1/calls/{SUCCESS}{route}?provider="))
            .await;
        assert_eq!(status, 409, "{route} with a blank provider");
    }

    // With one, each route answers that provider's call.
    for provider in ["bolna", "vapi"] {
        let (status, call) = app
            .get(&tenant, &format!("/v1/calls/{SUCCESS}?provider={provider}"))
            .await;
        assert_eq!(status, 200, "{call}");
        assert_eq!(call["provider"], provider);
        assert_eq!(call["execution_id"], SUCCESS);
        // Each timeline holds only its own provider's events.
        let types: Vec<&str> = call["events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["type"].as_str().unwrap())
            .collect();
        let (own, other) = match provider {
            "vapi" => ("end-of-call-report", "call-disconnected"),
            _ => ("call-disconnected", "end-of-call-report"),
        };
        assert!(
            types.contains(&own) && !types.contains(&other),
            "{provider}: {types:?}"
        );
        let (status, transcript) = app
            .get(
                &tenant,
                &format!("/v1/calls/{SUCCESS}/transcript?provider={provider}"),
            )
            .await;
        assert_eq!(status, 200, "{provider}: {transcript}");
    }

    // A provider with no such call, and one calltrail does not know.
    let (status, body) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}?provider=retell"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("call_not_found"))
    );
    let (status, body) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}?provider=nope"))
        .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_provider")),
        "{body}"
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("retell"));

    // The list filter takes the same names.
    let (_, listed) = app.get(&tenant, "/v1/calls?provider=vapi").await;
    let items = listed["items"].as_array().unwrap();
    assert_eq!(items.len(), 1, "{listed}");
    assert_eq!(items[0]["provider"], "vapi");
    let (status, body) = app.get(&tenant, "/v1/calls?provider=nope").await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("invalid_provider"))
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ledger_and_the_console_link_each_charge_to_its_providers_call() {
    let (app, tenant) = two_calls_with_one_id().await;

    let (_, credits) = app.get(&tenant, "/v1/credits").await;
    let mut charged: Vec<&str> = credits["transactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["call_id"] == SUCCESS)
        .map(|t| t["provider"].as_str().unwrap())
        .collect();
    charged.sort_unstable();
    assert_eq!(charged, ["bolna", "vapi"], "{credits}");
    assert!(
        credits["transactions"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|t| t["type"] == "grant")
            .all(|t| t["provider"].is_null()),
        "{credits}"
    );

    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;
    let (status, html) = browser.page("/credits").await;
    assert_eq!(status, 200);
    for provider in ["bolna", "vapi"] {
        assert!(
            html.contains(&format!(r#"href="/calls/{SUCCESS}?provider={provider}""#)),
            "{provider}: {html}"
        );
    }
    // The call page's attribution form attributes the call shown, not every call of the id.
    let campaign = create_campaign(&app, &tenant, "Vapi outreach").await;
    app.wait_until_projected().await;
    let (status, html) = browser
        .page(&format!("/calls/{SUCCESS}?provider=vapi"))
        .await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains(&format!(
            r#"action="/calls/{SUCCESS}/attribution?provider=vapi""#
        )),
        "{html}"
    );
    let response = browser
        .post_form(
            &format!("/calls/{SUCCESS}/attribution?provider=vapi"),
            &[
                ("csrf", &csrf_of(&html)),
                ("campaign_id", &campaign),
                ("action", "set"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    app.wait_until_projected().await;
    let campaign_of = |call: Value| call["campaign_id"].clone();
    let (_, vapi_call) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}?provider=vapi"))
        .await;
    let (_, bolna_call) = app
        .get(&tenant, &format!("/v1/calls/{SUCCESS}?provider=bolna"))
        .await;
    assert_eq!(campaign_of(vapi_call), Value::from(campaign.as_str()));
    assert_eq!(campaign_of(bolna_call), Value::Null);
}
