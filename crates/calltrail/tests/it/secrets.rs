//! Provider secrets end to end: `calltrail admin set-provider-secret` (the real binary), the
//! intake verifying with what it stored, rotation, and `serve` refusing to start without the
//! key or (for Twilio) the public URL.

use std::process::{Command, Output};
use std::time::Duration;

use calltrail::startup::Settings;
use calltrail_core::secrets::SecretsKey;
use serde_json::Value;

use crate::helpers::{spawn_app_with, TestApp};

/// A fixed key for these tests (base64 of the bytes 0..32).
pub const KEY: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

/// Settings that open secrets stored under [`KEY`].
pub fn with_key(settings: &mut Settings) {
    settings.secrets_key = SecretsKey::from_base64(KEY).ok();
}

/// Runs the `calltrail` binary on the test's database with `env`, feeding `stdin`.
fn calltrail(app: &TestApp, args: &[&str], env: &[(&str, &str)], stdin: &str) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(args)
        .env("DATABASE_URL", app.db.url())
        .env("RUST_LOG", "info")
        .env_remove("CALLTRAIL_SECRETS_KEY")
        .env_remove("CALLTRAIL_PUBLIC_URL")
        .envs(env.iter().copied())
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("calltrail runs");
    if let Some(mut input) = child.stdin.take() {
        input.write_all(stdin.as_bytes()).unwrap();
    }
    // A command that should fail but serves instead must not hang the test.
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            break;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

fn set_secret(app: &TestApp, user: &str, provider: &str, secret: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "admin",
        "set-provider-secret",
        "--user",
        user,
        "--provider",
        provider,
        "--secret",
        secret,
    ];
    args.extend_from_slice(extra);
    calltrail(app, &args, &[("CALLTRAIL_SECRETS_KEY", KEY)], "")
}

/// Posts a Vapi status update for `call` authenticated with `X-Vapi-Secret: secret`.
async fn post_vapi(app: &TestApp, token: &str, call: &str, secret: &str) -> (u16, Value) {
    let body = serde_json::json!({
        "message": {
            "type": "status-update",
            "status": "ringing",
            "timestamp": 1_759_914_901_000_i64,
            "call": {"id": call, "createdAt": "2025-10-08T09:14:58.301Z"},
        }
    });
    let response = app
        .client
        .post(format!("{}/v1/webhooks/vapi/{token}", app.address))
        .header("content-type", "application/json")
        .header("x-vapi-secret", secret)
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap_or(Value::Null))
}

fn text(output: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_secret_set_with_the_cli_verifies_webhooks_and_is_never_shown() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    let user = tenant.user_id.to_string();

    let set = set_secret(&app, &user, "vapi", "vapi-secret-one", &[]);
    assert!(set.status.success(), "{}", text(&set));
    let printed: Value = serde_json::from_slice(&set.stdout).expect("one JSON object on stdout");
    assert_eq!(
        printed,
        serde_json::json!({"provider": "vapi", "configured": true})
    );
    assert!(!text(&set).contains("vapi-secret-one"));

    // The server has no cached secret yet, or "none": either way the new one works at once.
    let (status, answer) =
        post_vapi(&app, &tenant.webhook_token, "call-1", "vapi-secret-one").await;
    assert_eq!(status, 202, "{answer}");
    let (status, answer) = post_vapi(&app, &tenant.webhook_token, "call-2", "guess").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("invalid_signature"))
    );

    // Only ciphertext is stored; another tenant's token with the same secret is refused.
    let stored = app
        .sql_count("SELECT count(*) FROM provider_secrets WHERE position('vapi-secret-one' in encode(ciphertext, 'escape')) > 0")
        .await;
    assert_eq!(stored, 0);
    let other = app.create_tenant().await;
    let (status, answer) = post_vapi(&app, &other.webhook_token, "call-3", "vapi-secret-one").await;
    assert_eq!(
        (status, answer["error"]["code"].as_str()),
        (401, Some("signature_not_configured"))
    );

    // `-` reads the secret from standard input.
    let piped = calltrail(
        &app,
        &[
            "admin",
            "set-provider-secret",
            "--user",
            &user,
            "--provider",
            "retell",
            "--secret",
            "-",
        ],
        &[("CALLTRAIL_SECRETS_KEY", KEY)],
        "key_from_stdin\n",
    );
    assert!(piped.status.success(), "{}", text(&piped));
    assert!(!text(&piped).contains("key_from_stdin"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotation_keeps_the_old_secret_for_its_window_and_the_new_one_works_at_once() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    let user = tenant.user_id.to_string();
    let token = tenant.webhook_token.clone();
    assert!(set_secret(&app, &user, "vapi", "old-secret", &[])
        .status
        .success());
    let (status, _) = post_vapi(&app, &token, "call-1", "old-secret").await;
    assert_eq!(status, 202);

    let rotated = set_secret(
        &app,
        &user,
        "vapi",
        "new-secret",
        &["--previous-valid-for", "3s"],
    );
    assert!(rotated.status.success(), "{}", text(&rotated));
    let (status, answer) = post_vapi(&app, &token, "call-2", "new-secret").await;
    assert_eq!(status, 202, "the new secret works at once: {answer}");
    let (status, answer) = post_vapi(&app, &token, "call-3", "old-secret").await;
    assert_eq!(status, 202, "the old one until its window ends: {answer}");

    // Once the window is over the old secret is refused (polled: the window is the database's clock).
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    let mut n = 4;
    loop {
        let (status, answer) = post_vapi(&app, &token, &format!("call-{n}"), "old-secret").await;
        if status == 401 {
            assert_eq!(answer["error"]["code"], "invalid_signature");
            break;
        }
        assert_eq!(status, 202, "{answer}");
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old secret never expired"
        );
        n += 1;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let (status, _) = post_vapi(&app, &token, "call-last", "new-secret").await;
    assert_eq!(status, 202);

    // Rotating without a window ends the previous secret: in the database at once, in a
    // running server's cache within 5 s. (The newest one is used at once too, except within a
    // second of a failed signature having the secrets read again, as the old one's did just
    // now: then within that second.)
    assert!(set_secret(&app, &user, "vapi", "newest-secret", &[])
        .status
        .success());
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let (mut newest_ok, mut previous_refused) = (false, false);
    while !(newest_ok && previous_refused) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "newest accepted: {newest_ok}, previous refused: {previous_refused}"
        );
        n += 1;
        newest_ok |= post_vapi(&app, &token, &format!("call-{n}"), "newest-secret")
            .await
            .0
            == 202;
        previous_refused |= post_vapi(&app, &token, &format!("call-{n}b"), "new-secret")
            .await
            .0
            == 401;
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_command_and_serve_name_the_variable_they_miss() {
    let app = spawn_app_with(with_key).await;
    let tenant = app.create_tenant().await;
    let user = tenant.user_id.to_string();
    let args = [
        "admin",
        "set-provider-secret",
        "--user",
        &user,
        "--provider",
        "twilio",
        "--secret",
        "tok",
    ];

    for (key, expected) in [
        (None, "CALLTRAIL_SECRETS_KEY is not set"),
        (Some("not base64!"), "CALLTRAIL_SECRETS_KEY is not base64"),
        (
            Some("AAAA"),
            "CALLTRAIL_SECRETS_KEY decodes to 3 bytes, expected 32",
        ),
    ] {
        let env: Vec<(&str, &str)> = key
            .map(|k| ("CALLTRAIL_SECRETS_KEY", k))
            .into_iter()
            .collect();
        let output = calltrail(&app, &args, &env, "");
        assert!(!output.status.success());
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{stderr}");
        assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    }
    let bolna = calltrail(
        &app,
        &[
            "admin",
            "set-provider-secret",
            "--user",
            &user,
            "--provider",
            "bolna",
            "--secret",
            "x",
        ],
        &[("CALLTRAIL_SECRETS_KEY", KEY)],
        "",
    );
    assert!(!bolna.status.success());
    assert!(text(&bolna).contains("bolna does not sign its webhooks"));

    let twilio = calltrail(&app, &args, &[("CALLTRAIL_SECRETS_KEY", KEY)], "");
    assert!(twilio.status.success(), "{}", text(&twilio));
    assert!(String::from_utf8_lossy(&twilio.stderr).contains("CALLTRAIL_PUBLIC_URL"));

    // `serve` with a stored secret: without the key, with another key, without the public
    // URL Twilio signs — each refuses to start, naming the variable.
    let other_key = "AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE=";
    let url = [("CALLTRAIL_PUBLIC_URL", "https://calltrail.example.com")];
    for (env, expected) in [
        (vec![url[0]], "CALLTRAIL_SECRETS_KEY is not set"),
        (
            vec![url[0], ("CALLTRAIL_SECRETS_KEY", other_key)],
            "CALLTRAIL_SECRETS_KEY does not open",
        ),
        (
            vec![("CALLTRAIL_SECRETS_KEY", KEY)],
            "CALLTRAIL_PUBLIC_URL is not set",
        ),
        (
            vec![url[0], ("CALLTRAIL_SECRETS_KEY", "AAAA")],
            "CALLTRAIL_SECRETS_KEY decodes to 3 bytes",
        ),
    ] {
        let mut env = env;
        env.push(("CALLTRAIL_BIND", "127.0.0.1:0"));
        let output = calltrail(&app, &["serve", "--no-worker", "--no-projector"], &env, "");
        assert!(!output.status.success(), "serve started with {env:?}");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(expected), "{env:?}: {stderr}");
        assert!(
            !stderr.contains(KEY) && !stderr.contains("tok\""),
            "{stderr}"
        );
    }
}
