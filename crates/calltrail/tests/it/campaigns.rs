//! Campaigns, recipients, attribution and the CSV export over real HTTP (CONTRACT §6): the
//! operator's workflow end to end, and bad input on every write route.

use serde_json::{json, Value};

use crate::helpers::*;

const SUCCESS_PHONE: &str = "+14155550132";
const NO_ANSWER_PHONE: &str = "+14155550141";

impl TestApp {
    /// Sends a request with the tenant's key and returns (status, JSON body or null).
    async fn send(
        &self,
        tenant: &Tenant,
        method: reqwest::Method,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        idempotency_key: Option<&str>,
    ) -> (u16, Value) {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.address))
            .bearer_auth(&tenant.api_key)
            .header("content-type", content_type)
            .body(body);
        if let Some(key) = idempotency_key {
            request = request.header("idempotency-key", key);
        }
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        (status, response.json().await.unwrap_or(Value::Null))
    }

    async fn post_json(&self, tenant: &Tenant, path: &str, body: Value) -> (u16, Value) {
        self.send(
            tenant,
            reqwest::Method::POST,
            path,
            "application/json",
            body.to_string().into_bytes(),
            None,
        )
        .await
    }

    async fn upload(&self, tenant: &Tenant, campaign: &str, csv: &str) -> (u16, Value) {
        self.send(
            tenant,
            reqwest::Method::POST,
            &format!("/v1/campaigns/{campaign}/recipients"),
            "text/csv",
            csv.as_bytes().to_vec(),
            None,
        )
        .await
    }

    async fn csv(&self, tenant: &Tenant, query: &str) -> (u16, String, String) {
        let response = self
            .client
            .get(format!("{}/v1/calls.csv{query}", self.address))
            .bearer_auth(&tenant.api_key)
            .send()
            .await
            .expect("the server answers");
        let status = response.status().as_u16();
        let kind = response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("")
            .to_owned();
        (status, kind, response.text().await.unwrap_or_default())
    }
}

fn code(body: &Value) -> &str {
    body["error"]["code"].as_str().unwrap_or("")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_upload_attribute_fix_and_export() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;

    // 1. A campaign that claims Bolna batch `batch-7`.
    let (status, campaign) = app
        .post_json(
            &tenant,
            "/v1/campaigns",
            json!({"name": "Spring outreach", "provider_batch_ids": ["batch-7"]}),
        )
        .await;
    assert_eq!(status, 201, "{campaign}");
    let id = campaign["campaign_id"].as_str().unwrap().to_owned();
    assert_eq!(campaign["calls"], 0);

    // 2. Recipients: the no-answer call's phone, a duplicate, and a bad line.
    let csv = format!(
        "phone,name\r\n{NO_ANSWER_PHONE},Nia\r\n+1 415 555 0141,Nia again\r\nnot a phone,X\r\n"
    );
    let (status, added) = app.upload(&tenant, &id, &csv).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(added["added"], 1);
    assert_eq!(added["duplicates"], 1);
    assert_eq!(added["rejected"][0]["line"], 4);

    // 3. Calls arrive: one in the batch, one whose phone is a recipient, one neither.
    let success = with_fields(
        &fixtures::read("bolna/success/05-completed.json"),
        &[("batch_id", json!("batch-7"))],
    );
    for body in [
        success,
        fixtures::read("bolna/no-answer/03-no-answer.json"),
        fixtures::read("bolna/busy/03-busy.json"),
    ] {
        let (status, receipt) = app.post_bolna_json(&tenant.webhook_token, &body).await;
        assert_eq!(status, 202, "{receipt}");
    }
    app.wait_until_projected().await;
    let success = app.call(&tenant, SUCCESS).await;
    assert_eq!(
        (
            success["campaign_id"].as_str(),
            success["attribution"].as_str()
        ),
        (Some(id.as_str()), Some("auto_batch"))
    );
    let missed = app.call(&tenant, NO_ANSWER).await;
    assert_eq!(missed["attribution"], "auto_phone");
    let (_, unattributed) = app.get(&tenant, "/v1/calls?attributed=false").await;
    let ids: Vec<&str> = unattributed["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|c| c["execution_id"].as_str())
        .collect();
    assert_eq!(ids, [BUSY]);

    // 4. Fix the rest by hand, with an Idempotency-Key: a retry gets the stored answer.
    let body = json!({"campaign_id": id}).to_string().into_bytes();
    let path = format!("/v1/calls/{BUSY}/attribution");
    let post = |body: Vec<u8>, key| {
        app.send(
            &tenant,
            reqwest::Method::POST,
            &path,
            "application/json",
            body,
            key,
        )
    };
    let first = post(body.clone(), Some("fix-busy-1")).await;
    assert_eq!(first, (200, json!({"attributed": 1, "not_found": []})));
    assert_eq!(post(body.clone(), Some("fix-busy-1")).await, first);
    let other = json!({"campaign_id": null}).to_string().into_bytes();
    let (status, reused) = post(other, Some("fix-busy-1")).await;
    assert_eq!((status, code(&reused)), (422, "idempotency_key_reused"));
    let (status, unknown) = app
        .send(
            &tenant,
            reqwest::Method::POST,
            &format!("{path}?provider=nope"),
            "application/json",
            body.clone(),
            None,
        )
        .await;
    assert_eq!(
        (status, code(&unknown)),
        (400, "invalid_provider"),
        "{unknown}"
    );
    app.wait_until_projected().await;
    assert_eq!(app.call(&tenant, BUSY).await["attribution"], "manual");
    let (_, page) = app.get(&tenant, "/v1/calls?attributed=false").await;
    assert_eq!(page["items"], json!([]));
    let (_, listed) = app
        .get(&tenant, &format!("/v1/calls?campaign_id={id}"))
        .await;
    assert_eq!(listed["items"].as_array().map(Vec::len), Some(3));
    let (_, campaign) = app.get(&tenant, &format!("/v1/campaigns/{id}")).await;
    assert_eq!(
        (
            campaign["calls"].as_i64(),
            campaign["connected_calls"].as_i64()
        ),
        (Some(3), Some(1))
    );
    assert_eq!(campaign["recipients"], 1);

    // Bulk: two known ids and an unknown one.
    let (status, bulk) = app
        .post_json(
            &tenant,
            "/v1/attributions",
            json!({"execution_ids": [SUCCESS, NO_ANSWER, "nope"], "campaign_id": id}),
        )
        .await;
    assert_eq!(
        (status, bulk),
        (200, json!({"attributed": 2, "not_found": ["nope"]}))
    );

    // 5. Export: the list's filters, RFC 4180 with CRLF, the phone guarded as text.
    let (status, kind, csv) = app
        .csv(&tenant, &format!("?campaign_id={id}&sort=oldest"))
        .await;
    assert_eq!(status, 200);
    assert!(kind.starts_with("text/csv"), "{kind}");
    let lines: Vec<&str> = csv.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 4, "{csv:?}");
    assert!(
        lines[0].starts_with("execution_id,agent_id,user_id,"),
        "{}",
        lines[0]
    );
    assert!(lines[0]
        .ends_with(",campaign_id,attribution,anomalies,conflicts,provider,outcome,cost,cost_unit"));
    assert!(csv.contains(&format!(",'{SUCCESS_PHONE},")), "{csv}");
    assert!(!csv.replace("\r\n", "").contains('\n') || csv.contains('"'));
    let (_, _, none) = app.csv(&tenant, "?attributed=false").await;
    assert_eq!(none.split_terminator("\r\n").count(), 1, "only the header");

    // Replay gives every call the same attribution.
    app.wait_until_projected().await;
    let mut app = app;
    app.stop().await;
    assert_read_tables_equal_replay(app.db.url(), "after campaigns").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_input_on_every_write_route_is_named_and_never_a_500() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let other = app.create_tenant().await;
    let (_, theirs) = app
        .post_json(
            &other,
            "/v1/campaigns",
            json!({"name": "Theirs", "provider_batch_ids": ["b-1"]}),
        )
        .await;
    let theirs = theirs["campaign_id"].as_str().unwrap().to_owned();
    let (_, mine) = app
        .post_json(&tenant, "/v1/campaigns", json!({"name": "Mine"}))
        .await;
    let mine = mine["campaign_id"].as_str().unwrap().to_owned();

    let single = format!("/v1/calls/{SUCCESS}/attribution");
    let cases: Vec<(&str, Value, u16, &str, &str)> = vec![
        (
            "/v1/campaigns",
            json!({"name": "x", "colour": "red"}),
            400,
            "unknown_field",
            "`colour`",
        ),
        (
            "/v1/campaigns",
            json!({"name": 5}),
            400,
            "invalid_field",
            "`name`",
        ),
        ("/v1/campaigns", json!({}), 400, "invalid_field", "`name`"),
        (
            "/v1/campaigns",
            json!({"name": "x", "provider_batch_ids": "b"}),
            400,
            "invalid_field",
            "`provider_batch_ids`",
        ),
        ("/v1/campaigns", json!([1]), 400, "invalid_json", ""),
        (
            "/v1/attributions",
            json!({"execution_ids": [SUCCESS], "campaign_id": 7}),
            400,
            "invalid_field",
            "`campaign_id`",
        ),
        (
            "/v1/attributions",
            json!({"execution_ids": [], "campaign_id": null}),
            400,
            "invalid_field",
            "`execution_ids`",
        ),
        (
            "/v1/attributions",
            json!({"execution_ids": (0..501).map(|i| format!("c{i}")).collect::<Vec<_>>(), "campaign_id": null}),
            422,
            "too_many",
            "500",
        ),
        (
            "/v1/attributions",
            json!({"execution_ids": ["x"], "campaign_id": theirs}),
            404,
            "not_found",
            "",
        ),
        (&single, json!({"campaign_id": mine}), 404, "not_found", ""),
        (
            &single,
            json!({"campaign": mine}),
            400,
            "unknown_field",
            "`campaign`",
        ),
    ];
    for (path, body, status, expected, named) in cases {
        let (got, answer) = app.post_json(&tenant, path, body.clone()).await;
        assert_eq!(
            (got, code(&answer)),
            (status, expected),
            "{path} {body}: {answer}"
        );
        assert!(
            answer["error"]["message"]
                .as_str()
                .unwrap_or("")
                .contains(named),
            "{answer}"
        );
    }
    // Another tenant's batch id is not ours to claim… but only within one tenant: ours may use it.
    let (status, _) = app
        .post_json(
            &tenant,
            "/v1/campaigns",
            json!({"name": "Also b-1", "provider_batch_ids": ["b-1"]}),
        )
        .await;
    assert_eq!(status, 201);
    app.wait_until_projected().await;
    let (status, taken) = app
        .post_json(
            &tenant,
            "/v1/campaigns",
            json!({"name": "Again", "provider_batch_ids": ["b-1"]}),
        )
        .await;
    assert_eq!((status, code(&taken)), (409, "batch_id_taken"), "{taken}");

    // Recipients: another tenant's campaign, a malformed id, no phone column, not UTF-8, not CSV.
    assert_eq!(
        app.upload(&tenant, &theirs, "phone\n+14155550101\n")
            .await
            .0,
        404
    );
    assert_eq!(
        app.upload(&tenant, "not-a-uuid", "phone\n+14155550101\n")
            .await
            .0,
        404
    );
    let (status, body) = app.upload(&tenant, &mine, "name\nAna\n").await;
    assert_eq!((status, code(&body)), (400, "invalid_csv"));
    let (status, body) = app
        .send(
            &tenant,
            reqwest::Method::POST,
            &format!("/v1/campaigns/{mine}/recipients"),
            "text/csv",
            b"phone\n\xff\xfe\n".to_vec(),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (400, "invalid_csv"));
    let (status, body) = app
        .send(
            &tenant,
            reqwest::Method::POST,
            &format!("/v1/campaigns/{mine}/recipients"),
            "application/json",
            b"{}".to_vec(),
            None,
        )
        .await;
    assert_eq!((status, code(&body)), (415, "unsupported_media_type"));
    // Reads: another tenant's campaign is a 404; bad filters are 400s naming them.
    assert_eq!(
        app.get(&tenant, &format!("/v1/campaigns/{theirs}")).await.0,
        404
    );
    let (status, body) = app.get(&tenant, "/v1/calls?campaign_id=nope").await;
    assert_eq!((status, code(&body)), (400, "invalid_query"));
    assert!(body["error"]["message"]
        .as_str()
        .unwrap_or("")
        .contains("campaign_id"));
    let (status, body) = app.get(&tenant, "/v1/calls?attributed=maybe").await;
    assert_eq!((status, code(&body)), (400, "invalid_query"));
    let (status, _, _) = app.csv(&tenant, "?from=tomorrow").await;
    assert_eq!(status, 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hundred_thousand_recipients_in_one_upload() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let (_, campaign) = app
        .post_json(&tenant, "/v1/campaigns", json!({"name": "Big"}))
        .await;
    let id = campaign["campaign_id"].as_str().unwrap().to_owned();
    let mut csv = String::from("phone,name,email,company\n");
    for i in 0..100_000 {
        csv.push_str(&format!(
            "+1415{i:07},Recipient {i},r{i}@example.com,Acme \"{i}\"\n"
        ));
    }
    assert!(csv.len() > 5_000_000);
    let (status, added) = app.upload(&tenant, &id, &csv).await;
    assert_eq!(status, 200, "{added}");
    assert_eq!(
        (added["added"].as_i64(), added["rejected_total"].as_i64()),
        (Some(100_000), Some(0))
    );
    let body = app
        .wait_for(&tenant, &format!("/v1/campaigns/{id}"), |s, b| {
            s == 200 && b["recipients"] == 100_000
        })
        .await;
    assert_eq!(body["name"], "Big");
    // The same file again adds nothing: every line is a duplicate now.
    let (_, again) = app.upload(&tenant, &id, &csv).await;
    assert_eq!(
        (again["added"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(100_000))
    );
}
