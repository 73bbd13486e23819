//! Signatures end to end (docs/CONTRACT.md §5) for every signing provider: each kind of bad
//! signature is a 401 with the contract's code and a row in `calltrail admin rejected` that
//! keeps no secret-bearing header; rotation; Twilio's public URL and what its events keep;
//! messages answered without being stored, ElevenLabs' large audio among them.

use std::time::Duration;

use calltrail_testkit::fixtures;
use calltrail_testkit::signing::{self, Header};
use serde_json::Value;

use crate::helpers::*;
use crate::providers::{
    post_signed, post_signed_with, post_with, secret_of, set_secret, signing_tenant, webhook_path,
    with_providers, PUBLIC_URL,
};

/// The first webhook of each provider's answered fixture call.
fn first_body(provider: &str) -> Vec<u8> {
    match provider {
        "vapi" => fixtures::vapi::answered().remove(0),
        "elevenlabs" => fixtures::elevenlabs::answered().remove(0),
        "twilio" => fixtures::twilio::answered().remove(0),
        _ => fixtures::retell::answered().remove(0),
    }
}

/// How old a signature may be for each provider (Twilio's carries no time).
fn tolerance_ms(provider: &str) -> Option<i64> {
    match provider {
        "elevenlabs" => Some(30 * 60_000),
        "twilio" => None,
        _ => Some(5 * 60_000),
    }
}

/// A signature header of the provider's name whose value is not of its form.
fn malformed(provider: &str) -> Vec<Header> {
    match provider {
        "vapi" => vec![
            ("x-timestamp", signing::now_millis().to_string()),
            ("x-signature", "not-hex".to_owned()),
        ],
        "elevenlabs" => vec![("elevenlabs-signature", "t=soon,v0=zz".to_owned())],
        "twilio" => vec![("x-twilio-signature", "not base64!".to_owned())],
        _ => vec![("x-retell-signature", "v=1700000000000,d=xyz".to_owned())],
    }
}

/// The same body with one change the signature does not cover.
fn tampered(provider: &str, body: &[u8]) -> Vec<u8> {
    let mut body = body.to_vec();
    if provider == "twilio" {
        body.extend_from_slice(b"&Extra=1");
    } else {
        body.push(b' ');
    }
    body
}

/// One refused request: what it is, its headers and body, the expected code and a phrase of
/// the reason the rejected log keeps.
struct Refusal {
    what: &'static str,
    token: String,
    headers: Vec<Header>,
    body: Vec<u8>,
    code: &'static str,
    reason: &'static str,
}

/// Rows of the rejected log as `calltrail admin rejected` prints them, oldest first.
fn admin_rejected(app: &TestApp) -> Vec<Value> {
    let mut rows = calltrail_json_lines(app.db.url(), &["admin", "rejected", "--limit", "1000"]);
    rows.reverse();
    rows
}

/// The stored headers and body of every rejected request, oldest first, as text.
async fn rejected_rows(app: &TestApp) -> Vec<(String, String)> {
    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let rows = sqlx::query_as(
        "SELECT headers::text, encode(body, 'escape') FROM rejected_webhooks ORDER BY id",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    rows
}

/// Every kind of bad signature for `provider`, each answered 401 with its code and kept with
/// its reason in the rejected log, which never holds a signature, a secret or its header.
async fn signature_matrix(provider: &str) {
    let app = spawn_app_with(with_providers).await;
    let tenant = signing_tenant(&app, provider).await;
    let other = app.create_tenant().await;
    set_secret(
        &app,
        &other,
        provider,
        "the-other-tenants-secret",
        Duration::ZERO,
    )
    .await;
    let unconfigured = app.create_tenant().await;
    let body = first_body(provider);
    let path = webhook_path(provider, &tenant.webhook_token);
    let url = format!("{PUBLIC_URL}{path}");
    let secret = secret_of(provider);
    let now = signing::now_millis();
    let sign = |secret: &str, at: i64, body: &[u8]| signing::sign(provider, secret, at, &url, body);
    let content_type = || vec![("content-type", signing::content_type(provider).to_owned())];

    let (status, answer) = post_with(&app, &path, &sign(&secret, now, &body), &body).await;
    assert_eq!(
        status, 202,
        "{provider}: a valid signature is accepted: {answer}"
    );

    let mut refusals = vec![
        Refusal {
            what: "a wrong secret",
            token: tenant.webhook_token.clone(),
            headers: sign("a-wrong-secret", now, &body),
            body: body.clone(),
            code: "invalid_signature",
            reason: "does not match",
        },
        Refusal {
            what: "a tampered body",
            token: tenant.webhook_token.clone(),
            headers: sign(&secret, now, &body),
            body: tampered(provider, &body),
            code: "invalid_signature",
            reason: "does not match",
        },
        Refusal {
            what: "no signature header",
            token: tenant.webhook_token.clone(),
            headers: content_type(),
            body: body.clone(),
            code: "invalid_signature",
            reason: "is missing",
        },
        Refusal {
            what: "a malformed signature header",
            token: tenant.webhook_token.clone(),
            headers: [malformed(provider), content_type()].concat(),
            body: body.clone(),
            code: "invalid_signature",
            reason: "is malformed",
        },
        Refusal {
            what: "another tenant's token (signed with this tenant's secret)",
            token: other.webhook_token.clone(),
            headers: signing::sign(
                provider,
                &secret,
                now,
                &format!(
                    "{PUBLIC_URL}{}",
                    webhook_path(provider, &other.webhook_token)
                ),
                &body,
            ),
            body: body.clone(),
            code: "invalid_signature",
            reason: "does not match",
        },
        Refusal {
            what: "a tenant without a secret",
            token: unconfigured.webhook_token.clone(),
            headers: signing::sign(
                provider,
                &secret,
                now,
                &format!(
                    "{PUBLIC_URL}{}",
                    webhook_path(provider, &unconfigured.webhook_token)
                ),
                &body,
            ),
            body: body.clone(),
            code: "signature_not_configured",
            reason: "signing secret is configured",
        },
    ];
    if let Some(tolerance) = tolerance_ms(provider) {
        refusals.push(Refusal {
            what: "an expired timestamp",
            token: tenant.webhook_token.clone(),
            headers: sign(&secret, now - tolerance - 60_000, &body),
            body: body.clone(),
            code: "invalid_signature",
            reason: "outside the accepted window",
        });
        refusals.push(Refusal {
            what: "a timestamp 6 min ahead",
            token: tenant.webhook_token.clone(),
            headers: sign(&secret, now + 6 * 60_000, &body),
            body: body.clone(),
            code: "invalid_signature",
            reason: "outside the accepted window",
        });
    }
    if provider == "vapi" {
        // The shared-secret credential: the secret itself is the header's value.
        for (name, value) in [
            ("x-vapi-secret", "a-guessed-secret".to_owned()),
            ("authorization", "Bearer a-guessed-secret".to_owned()),
        ] {
            refusals.push(Refusal {
                what: "a wrong shared secret",
                token: tenant.webhook_token.clone(),
                headers: vec![(name, value), content_type()[0].clone()],
                body: body.clone(),
                code: "invalid_signature",
                reason: "does not match",
            });
        }
        refusals.push(Refusal {
            what: "an Authorization that is not Bearer",
            token: tenant.webhook_token.clone(),
            headers: vec![
                ("authorization", "Basic dmFwaTpzZWNyZXQ=".to_owned()),
                content_type()[0].clone(),
            ],
            body: body.clone(),
            code: "invalid_signature",
            reason: "is malformed",
        });
    }

    for refusal in &refusals {
        let path = webhook_path(provider, &refusal.token);
        let (status, answer) = post_with(&app, &path, &refusal.headers, &refusal.body).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some(refusal.code)),
            "{provider}, {}: {answer}",
            refusal.what
        );
    }

    let logged = admin_rejected(&app);
    assert_eq!(logged.len(), refusals.len(), "{provider}: {logged:?}");
    for (row, refusal) in logged.iter().zip(&refusals) {
        let what = format!("{provider}, {}: {row}", refusal.what);
        assert_eq!(row["provider"], provider, "{what}");
        assert_eq!(row["status_code"], 401, "{what}");
        assert_eq!(row["code"], refusal.code, "{what}");
        assert_eq!(row["body_bytes"], refusal.body.len(), "{what}");
        assert!(
            row["reason"].as_str().unwrap().contains(refusal.reason),
            "{what}: the reason says `{}`",
            refusal.reason
        );
    }
    let stored = rejected_rows(&app).await;
    assert_eq!(stored.len(), refusals.len());
    for ((headers, body), refusal) in stored.iter().zip(&refusals) {
        let what = format!("{provider}, {}: {headers}", refusal.what);
        assert!(headers.contains("content-type"), "{what}: headers are kept");
        for (name, value) in &refusal.headers {
            let secret_bearing = matches!(
                *name,
                "x-signature"
                    | "x-vapi-secret"
                    | "authorization"
                    | "elevenlabs-signature"
                    | "x-twilio-signature"
                    | "x-retell-signature"
            );
            if secret_bearing {
                assert!(!headers.contains(name), "{what}: `{name}` is not stored");
                assert!(
                    !headers.contains(value.as_str()),
                    "{what}: its value is not stored"
                );
                assert!(!body.contains(value.as_str()), "{what}");
            }
        }
        assert!(
            !headers.contains(&secret) && !headers.contains("a-guessed-secret"),
            "{what}"
        );
    }
    assert_eq!(
        app.sql_count("SELECT count(*) FROM events").await,
        1,
        "{provider}: only the valid webhook is recorded"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_refuses_every_bad_signature_and_logs_it_without_secrets() {
    signature_matrix("vapi").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn elevenlabs_refuses_every_bad_signature_and_logs_it_without_secrets() {
    signature_matrix("elevenlabs").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_refuses_every_bad_signature_and_logs_it_without_secrets() {
    signature_matrix("twilio").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retell_refuses_every_bad_signature_and_logs_it_without_secrets() {
    signature_matrix("retell").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vapi_accepts_its_shared_secret_in_either_header() {
    let app = spawn_app_with(with_providers).await;
    let tenant = signing_tenant(&app, "vapi").await;
    let path = webhook_path("vapi", &tenant.webhook_token);
    let bodies = fixtures::vapi::answered();
    let secret = secret_of("vapi");
    let json = ("content-type", "application/json".to_owned());
    for (body, header) in bodies.iter().zip([
        ("x-vapi-secret", secret.clone()),
        ("authorization", format!("Bearer {secret}")),
    ]) {
        let (status, answer) = post_with(&app, &path, &[header, json.clone()], body).await;
        assert_eq!(status, 202, "{answer}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rotated_secret_stays_valid_for_its_window_and_the_new_one_at_once() {
    let app = spawn_app_with(with_providers).await;
    let tenant = app.create_tenant().await;
    let providers = ["vapi", "elevenlabs", "twilio", "retell"];
    let old = |p: &str| format!("{p}-old-secret");
    let new = |p: &str| format!("{p}-new-secret");
    let post = |provider: &'static str, secret: String| {
        let (app, token) = (&app, tenant.webhook_token.clone());
        async move {
            let body = first_body(provider);
            post_signed_with(app, provider, &token, &secret, &body).await
        }
    };
    for p in providers {
        set_secret(&app, &tenant, p, &old(p), Duration::ZERO).await;
        let (status, answer) = post(p, old(p)).await;
        assert_eq!(status, 202, "{p}: {answer}");
    }
    for p in providers {
        set_secret(&app, &tenant, p, &new(p), Duration::from_secs(3600)).await;
    }
    for p in providers {
        let (status, answer) = post(p, new(p)).await;
        assert_eq!(status, 200, "{p}: the new secret works at once: {answer}");
        assert_eq!(answer["status"], "duplicate", "{p}");
        let (status, answer) = post(p, old(p)).await;
        assert_eq!(status, 200, "{p}: the old one during its window: {answer}");
    }

    // The window ends (in the database's time): the old secrets are refused once the server's
    // cache of them is renewed, within seconds; the new ones keep working.
    let ended = app
        .sql_count(&format!(
            "WITH ended AS (UPDATE provider_secrets SET valid_until = now()
               WHERE user_id = '{}' AND valid_until IS NOT NULL RETURNING 1)
             SELECT count(*) FROM ended",
            tenant.user_id
        ))
        .await;
    assert_eq!(ended, 4);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut pending: Vec<&'static str> = providers.to_vec();
    while !pending.is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "old secrets still accepted after their window: {pending:?}"
        );
        let mut still = Vec::new();
        for p in pending {
            let (status, answer) = post(p, old(p)).await;
            match status {
                401 => assert_eq!(answer["error"]["code"], "invalid_signature", "{p}"),
                200 => still.push(p),
                _ => panic!("{p}: {status} {answer}"),
            }
        }
        pending = still;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    for p in providers {
        let (status, answer) = post(p, new(p)).await;
        assert_eq!(status, 200, "{p}: {answer}");
    }
}

/// Twilio's `X-Twilio-Signature` for `form` over `url`.
fn twilio_headers(url: &str, form: &[u8]) -> Vec<Header> {
    signing::sign("twilio", &secret_of("twilio"), 0, url, form)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_is_verified_over_the_public_url_with_or_without_its_default_port() {
    let form = fixtures::read("twilio/01-ringing.form");
    for (configured, signed_base) in [
        (
            "https://calltrail.example.com",
            "https://calltrail.example.com",
        ),
        (
            "https://calltrail.example.com",
            "https://calltrail.example.com:443",
        ),
        (
            "https://calltrail.example.com:443",
            "https://calltrail.example.com",
        ),
        (
            "https://calltrail.example.com:443",
            "https://calltrail.example.com:443",
        ),
    ] {
        let app = spawn_app_with(|s| {
            with_providers(s);
            s.public_url = Some(configured.to_owned());
        })
        .await;
        let tenant = signing_tenant(&app, "twilio").await;
        let path = webhook_path("twilio", &tenant.webhook_token);
        let headers = twilio_headers(&format!("{signed_base}{path}"), &form);
        let (status, answer) = post_with(&app, &path, &headers, &form).await;
        assert_eq!(
            status, 202,
            "configured {configured}, signed {signed_base}: {answer}"
        );

        // The query string is part of what Twilio signs, exactly as it called.
        let queried = format!("{path}?tenant=acme&b=2");
        let headers = twilio_headers(&format!("{signed_base}{queried}"), &form);
        let (status, answer) = post_with(&app, &queried, &headers, &form).await;
        assert_eq!(status, 200, "the same callback again: {answer}");
        let headers = twilio_headers(&format!("{signed_base}{path}"), &form);
        let (status, answer) = post_with(&app, &queried, &headers, &form).await;
        assert_eq!(
            (status, answer["error"]["code"].as_str()),
            (401, Some("invalid_signature")),
            "signed without the query: {answer}"
        );
        // Another host or scheme is another URL.
        for base in ["http://calltrail.example.com", "https://other.example.com"] {
            let headers = twilio_headers(&format!("{base}{path}"), &form);
            let (status, _) = post_with(&app, &path, &headers, &form).await;
            assert_eq!(status, 401, "signed for {base}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twilio_without_a_public_url_is_refused_as_not_configured() {
    let app = spawn_app_with(|s| {
        with_providers(s);
        s.public_url = None;
    })
    .await;
    // Stored after start-up (which refuses a Twilio secret without the URL).
    let tenant = signing_tenant(&app, "twilio").await;
    let (status, answer) = post_signed(
        &app,
        "twilio",
        &tenant,
        &fixtures::read("twilio/01-ringing.form"),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("signature_not_configured")),
        "{answer}"
    );
    let logged = admin_rejected(&app);
    assert!(
        logged[0]["reason"]
            .as_str()
            .unwrap()
            .contains("CALLTRAIL_PUBLIC_URL"),
        "{logged:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_twilio_event_keeps_its_fields_to_be_verified_and_parsed_again() {
    let app = spawn_app_with(with_providers).await;
    let tenant = signing_tenant(&app, "twilio").await;
    let form = fixtures::read("twilio/03-completed.form");
    let path = webhook_path("twilio", &tenant.webhook_token);
    let url = format!("{PUBLIC_URL}{path}");
    let sent = twilio_headers(&url, &form);
    let (status, answer) = post_with(&app, &path, &sent, &form).await;
    assert_eq!(status, 202, "{answer}");

    let pool = sqlx::PgPool::connect(app.db.url()).await.unwrap();
    let (payload, data): (Value, Value) =
        sqlx::query_as("SELECT payload, data FROM events WHERE provider = 'twilio'")
            .fetch_one(&pool)
            .await
            .unwrap();
    pool.close().await;

    // The fields, decoded, in the order received.
    let text = String::from_utf8(form.clone()).unwrap();
    let expected: Vec<(String, String)> = text
        .split('&')
        .map(|field| {
            let (name, value) = field.split_once('=').unwrap();
            (form_decode(name), form_decode(value))
        })
        .collect();
    let stored: Vec<(String, String)> = serde_json::from_value(payload["form"].clone()).unwrap();
    assert_eq!(stored, expected, "events.payload is {payload}");

    // Re-encoded, they verify against the signature Twilio sent and parse to the same event.
    let reencoded: Vec<String> = stored
        .iter()
        .map(|(n, v)| {
            format!(
                "{}={}",
                fixtures::twilio::encode(n),
                fixtures::twilio::encode(v)
            )
        })
        .collect();
    let reencoded = reencoded.join("&").into_bytes();
    assert_eq!(twilio_headers(&url, &reencoded), sent);
    let received_at = chrono::Utc::now();
    let calltrail_core::providers::Parsed::Event(parsed) = calltrail_core::Provider::Twilio
        .webhooks()
        .parse(&reencoded, received_at)
        .unwrap()
    else {
        panic!("the stored callback parses as an event");
    };
    assert_eq!(serde_json::to_value(&parsed.event).unwrap(), data);
    assert_eq!(parsed.event_type, "completed");
}

/// `application/x-www-form-urlencoded` decoding of one name or value (`+` is a space).
fn form_decode(text: &str) -> String {
    let spaced = text.replace('+', " ");
    let bytes = spaced.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok());
        match (bytes[i], hex.and_then(|h| u8::from_str_radix(h, 16).ok())) {
            (b'%', Some(byte)) => {
                out.push(byte);
                i += 3;
            }
            (byte, _) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8(out).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn messages_about_nothing_in_the_lifecycle_are_answered_200_and_not_stored() {
    let app = spawn_app_with(|s| {
        with_providers(s);
        s.max_audio_bytes = 6 << 20;
    })
    .await;
    let vapi = signing_tenant(&app, "vapi").await;
    for kind in ["transcript", "speech-update", "conversation-update"] {
        let (status, answer) =
            post_signed(&app, "vapi", &vapi, &fixtures::vapi::informational(kind)).await;
        assert_eq!(status, 200, "{kind}: {answer}");
        assert_eq!(
            answer,
            serde_json::json!({"status": "ignored", "message_type": kind, "execution_id": fixtures::vapi::CALL_ID})
        );
    }
    let retell = signing_tenant(&app, "retell").await;
    let (status, answer) = post_signed(
        &app,
        "retell",
        &retell,
        &fixtures::retell::transcript_updated(),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "ignored");
    assert_eq!(answer["message_type"], "transcript_updated");

    // ElevenLabs' audio: several MB, over the 2 MiB webhook limit, streamed through the check.
    let elevenlabs = signing_tenant(&app, "elevenlabs").await;
    for size in [1000, 5 << 20] {
        let audio = fixtures::elevenlabs::audio(size);
        let (status, answer) = post_signed(&app, "elevenlabs", &elevenlabs, &audio).await;
        assert_eq!(status, 200, "{size} bytes of audio: {answer}");
        assert_eq!(answer["status"], "ignored");
        assert_eq!(answer["message_type"], "post_call_audio");
    }
    assert_eq!(app.sql_count("SELECT count(*) FROM events").await, 0);
    assert_eq!(
        app.sql_count("SELECT count(*) FROM rejected_webhooks")
            .await,
        0
    );

    // Ignored or not, a message is checked first: a bad signature is refused and kept. An
    // audio body past the webhook limit that does not verify, or past CALLTRAIL_MAX_AUDIO_BYTES,
    // is 413 (it is too large for anything but a verified audio message), and the rejected log
    // keeps no more of it than the webhook limit.
    let (status, _) = post_signed_with(
        &app,
        "vapi",
        &vapi.webhook_token,
        "a-wrong-secret",
        &fixtures::vapi::informational("transcript"),
    )
    .await;
    assert_eq!(status, 401);
    let small = fixtures::elevenlabs::audio(1000);
    let (status, answer) = post_signed_with(
        &app,
        "elevenlabs",
        &elevenlabs.webhook_token,
        "a-wrong-secret",
        &small,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature")),
        "{answer}"
    );
    let large = fixtures::elevenlabs::audio(5 << 20);
    let (status, answer) = post_signed_with(
        &app,
        "elevenlabs",
        &elevenlabs.webhook_token,
        "a-wrong-secret",
        &large,
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{answer}"
    );
    let (status, answer) = post_signed(
        &app,
        "elevenlabs",
        &elevenlabs,
        &fixtures::elevenlabs::audio(7 << 20),
    )
    .await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (413, Some("payload_too_large")),
        "{answer}"
    );
    assert_eq!(app.sql_count("SELECT count(*) FROM events").await, 0);
    let kept = app
        .sql_count("SELECT coalesce(max(octet_length(body)), 0)::bigint FROM rejected_webhooks")
        .await;
    assert!(
        kept <= 2_097_152,
        "the rejected log kept {kept} bytes of audio"
    );
    assert_eq!(
        app.sql_count("SELECT count(*) FROM rejected_webhooks")
            .await,
        4
    );
}
