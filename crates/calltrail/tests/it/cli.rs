//! The binary as a user runs it: what each command says when the database is not there, or
//! not migrated; argument errors.

use std::time::{Duration, Instant};

use calltrail_testkit::TestDb;

use crate::helpers::free_port;

/// Commands that need the database, as a user types them.
const COMMANDS: &[&[&str]] = &[
    &["migrate"],
    &["replay"],
    &["admin", "rejected"],
    &["admin", "create-user", "--email", "a@example.com"],
    &["analysis", "status"],
];

/// Runs `calltrail args…` with `DATABASE_URL=url`: (exit success, stderr, elapsed).
fn calltrail(url: &str, args: &[&str]) -> (bool, String, Duration) {
    let started = Instant::now();
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "info")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
        started.elapsed(),
    )
}

#[test]
fn a_database_that_is_not_there_is_one_line_naming_it_and_the_cause_at_once() {
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    for args in COMMANDS {
        let (ok, stderr, elapsed) = calltrail(&url, args);
        assert!(!ok, "{args:?}");
        let lines: Vec<&str> = stderr.lines().collect();
        assert_eq!(lines.len(), 1, "{args:?}: one line, once: {stderr}");
        assert_eq!(
            lines[0],
            format!("calltrail: cannot reach the database at 127.0.0.1:{port}: connection refused"),
            "{args:?}"
        );
        assert!(
            elapsed < Duration::from_secs(2),
            "{args:?} took {elapsed:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_without_the_schema_says_to_migrate() {
    let db = TestDb::empty().await;
    for args in COMMANDS.iter().filter(|a| a[0] != "migrate") {
        let (ok, stderr, _) = calltrail(db.url(), args);
        assert!(!ok, "{args:?}");
        assert_eq!(
            stderr.trim_end(),
            "calltrail: the database has no calltrail schema: run `calltrail migrate`",
            "{args:?}"
        );
    }
    let (ok, stderr, _) = calltrail(db.url(), &["migrate"]);
    assert!(ok, "{stderr}");
    let (ok, stderr, _) = calltrail(db.url(), &["admin", "rejected"]);
    assert!(ok, "{stderr}");
}

/// Runs `calltrail args…` on a migrated database: (exit success, stdout, stderr).
fn admin(url: &str, args: &[&str]) -> (bool, String, String) {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(args)
        .env("DATABASE_URL", url)
        .env("RUST_LOG", "warn")
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn adjust_credits_takes_a_signed_amount_and_is_an_adjustment_in_the_ledger() {
    let db = TestDb::new().await;
    let (ok, out, err) = admin(
        db.url(),
        &[
            "admin",
            "create-user",
            "--email",
            "adjust@example.com",
            "--credits",
            "10",
        ],
    );
    assert!(ok, "{err}");
    let user: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    let user = user["user_id"].as_str().unwrap().to_owned();
    let adjust = |amount: &str| {
        admin(
            db.url(),
            &[
                "admin",
                "adjust-credits",
                "--user",
                &user,
                "--amount",
                amount,
                "--reason",
                "goodwill",
            ],
        )
    };
    let (ok, out, err) = adjust("-5");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), r#"{"balance":5}"#);
    let (ok, out, err) = adjust("3");
    assert!(ok, "{err}");
    assert_eq!(out.trim(), r#"{"balance":8}"#);
    let (ok, _, err) = adjust("0");
    assert!(!ok && err.contains("0 changes nothing"), "{err}");

    let pool = sqlx::PgPool::connect(db.url()).await.unwrap();
    let rows: Vec<(String, i64, i64)> = sqlx::query_as(
        "SELECT kind, amount, balance_after FROM credit_transactions ORDER BY position",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    pool.close().await;
    assert_eq!(
        rows,
        vec![
            ("grant".to_owned(), 10, 10),
            ("adjustment".to_owned(), -5, 5),
            ("adjustment".to_owned(), 3, 8),
        ]
    );
    // Replay rebuilds the same ledger from the events.
    crate::helpers::assert_read_tables_equal_replay(db.url(), "after adjustments").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_on_a_terminal_clears_its_bar_before_every_line() {
    if std::process::Command::new("script")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("skipped: util-linux `script` (a terminal for the child) is not installed");
        return;
    }
    let db = TestDb::new().await;
    let typescript = std::env::temp_dir().join(format!("calltrail-tty-{}", uuid::Uuid::new_v4()));
    let status = std::process::Command::new("script")
        .arg("-qec")
        .arg(format!("{} replay", env!("CARGO_BIN_EXE_calltrail")))
        .arg(&typescript)
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "info")
        .stdout(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
    let text = String::from_utf8_lossy(&std::fs::read(&typescript).unwrap()).into_owned();
    std::fs::remove_file(&typescript).unwrap();
    let mut lines = 0;
    for line in text.split('\n') {
        // What the terminal shows of this line: everything after the last clear.
        let shown = line.rsplit("\u{1b}[2K").next().unwrap_or(line);
        for message in ["INFO", "\"events\":"] {
            if let Some(at) = shown.find(message) {
                lines += 1;
                assert!(
                    !shown[..at].contains("events ("),
                    "glued to the bar: {shown:?}"
                );
            }
        }
    }
    assert!(
        lines >= 3,
        "the log lines and the summary were shown: {text:?}"
    );
    // The summary for a person: each rebuilt table's rows.
    assert!(text.contains("replayed 0 events in "), "{text:?}");
    assert!(
        text.lines()
            .any(|l| l.trim_start().starts_with("calls ") && l.trim_end().ends_with("0 rows")),
        "{text:?}"
    );
}

/// Runs `calltrail args…` on `url` and reads the one JSON object it printed last.
fn admin_json(url: &str, args: &[&str]) -> serde_json::Value {
    let (ok, out, err) = admin(url, args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(out.lines().last().unwrap_or_default()).unwrap()
}

/// Polls `GET /v1/credits` with `key` until it answers `status`, for 10 s at most (a revoked
/// key is refused within the API-key cache's 5 s).
async fn wait_for_status(app: &crate::helpers::TestApp, key: &str, status: u16) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let answer = app
            .client
            .get(format!("{}/v1/credits", app.address))
            .bearer_auth(key)
            .send()
            .await
            .unwrap();
        let got = answer.status().as_u16();
        if got == status {
            if status == 401 {
                let body: serde_json::Value = answer.json().await.unwrap();
                assert_eq!(body["error"]["code"], "unauthorized", "{body}");
            }
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{key:.16}: still {got}, not {status}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_keys_are_created_listed_and_revoked_against_a_running_server() {
    let app = crate::helpers::spawn_app().await;
    let url = app.db.url().to_owned();
    let user = admin_json(&url, &["admin", "create-user", "--email", "k@example.com"]);
    let user_id = user["user_id"].as_str().unwrap().to_owned();
    let first_key = user["api_key"].as_str().unwrap().to_owned();
    let created = admin_json(
        &url,
        &[
            "admin",
            "create-key",
            "--user",
            &user_id,
            "--name",
            "laptop",
        ],
    );
    let key = created["api_key"].as_str().unwrap().to_owned();
    let key_id = created["key_id"].as_str().unwrap().to_owned();
    assert!(key.starts_with(created["prefix"].as_str().unwrap()));
    assert_eq!(created["name"], "laptop");
    wait_for_status(&app, &key, 200).await;

    let (ok, out, err) = admin(&url, &["admin", "list-keys", "--user", &user_id]);
    assert!(ok, "{err}");
    assert!(!out.contains(&key) && !out.contains(&first_key), "{out}");
    let keys: Vec<serde_json::Value> = out
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(keys.len(), 2, "{out}");
    let listed = &keys[1];
    assert_eq!(listed["key_id"], key_id.as_str());
    assert_eq!(listed["prefix"], created["prefix"]);
    assert_eq!(listed["name"], "laptop");
    assert!(listed["created_at"].is_string());
    assert!(
        listed["last_used_at"].is_string(),
        "used just now: {listed}"
    );
    assert!(listed["revoked_at"].is_null());
    assert!(keys[0]["last_used_at"].is_null(), "never used: {}", keys[0]);

    let revoked = admin_json(
        &url,
        &[
            "admin",
            "revoke-key",
            "--user",
            &user_id,
            "--key-id",
            &key_id,
        ],
    );
    assert_eq!(revoked["key_id"], key_id.as_str());
    assert!(revoked["revoked_at"].is_string());
    wait_for_status(&app, &key, 401).await;
    wait_for_status(&app, &first_key, 200).await;
    let keys = admin(&url, &["admin", "list-keys", "--user", &user_id]).1;
    assert!(keys
        .lines()
        .nth(1)
        .unwrap()
        .contains(&format!("\"revoked_at\":{}", revoked["revoked_at"])));

    // A key id the user does not have: one line, non-zero exit.
    let other = uuid::Uuid::new_v4().to_string();
    let (ok, _, err) = admin(
        &url,
        &[
            "admin",
            "revoke-key",
            "--user",
            &user_id,
            "--key-id",
            &other,
        ],
    );
    assert!(!ok);
    assert_eq!(
        err.trim_end(),
        format!(
            "calltrail: could not revoke the key: user {user_id} has no API key with id {other}"
        )
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_tenant_reuses_the_tenant_and_revokes_its_previous_demo_key() {
    let app = crate::helpers::spawn_app().await;
    let url = app.db.url().to_owned();
    let first = admin_json(&url, &["admin", "demo-tenant"]);
    assert_eq!(first["created"], true);
    let user_id = first["user_id"].as_str().unwrap().to_owned();
    let kept = admin_json(
        &url,
        &["admin", "create-key", "--user", &user_id, "--name", "ci"],
    );
    let second = admin_json(&url, &["admin", "demo-tenant"]);
    assert_eq!(second["created"], false);
    assert_eq!(second["user_id"], first["user_id"]);
    assert_eq!(second["revoked_keys"], 1);
    wait_for_status(&app, first["api_key"].as_str().unwrap(), 401).await;
    wait_for_status(&app, second["api_key"].as_str().unwrap(), 200).await;
    wait_for_status(&app, kept["api_key"].as_str().unwrap(), 200).await;
    let (_, keys, _) = admin(&url, &["admin", "list-keys", "--user", &user_id]);
    let live = keys
        .lines()
        .filter(|l| l.contains("\"revoked_at\":null"))
        .count();
    assert_eq!(live, 2, "the new demo key and the ci key: {keys}");
    // The demo's webhook URL (the new token) still takes calls.
    let token = second["webhook_token"].as_str().unwrap();
    let (status, _) = app
        .post_bolna_json(
            token,
            &crate::helpers::fixtures::read("bolna/success/01-initiated.json"),
        )
        .await;
    assert_eq!(status, 202);
}

#[test]
fn every_argument_problem_is_one_line_of_one_message() {
    // No database is asked: the arguments are refused first.
    let port = free_port();
    let url = format!("postgres://postgres@127.0.0.1:{port}/postgres");
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args(["admin", "adjust-credits", "--user", "nope", "--amount", "0"])
        .env("DATABASE_URL", &url)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&output.stderr);
    let lines: Vec<&str> = stderr.lines().collect();
    assert_eq!(
        lines[0], "error: 3 problems with the arguments:",
        "{stderr}"
    );
    assert!(
        lines[1].starts_with("  - invalid value 'nope' for '--user <USER>'"),
        "{stderr}"
    );
    assert!(
        lines[2].starts_with("  - invalid value '0' for '--amount <AMOUNT>': 0 changes nothing"),
        "{stderr}"
    );
    assert_eq!(
        lines[3],
        "  - the required argument '--reason <REASON>' was not provided"
    );
    assert!(
        stderr.contains("Usage: calltrail admin adjust-credits"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_operator_s_mistake_is_one_line_and_no_error_log() {
    let db = TestDb::new().await;
    let (ok, _, err) = admin(
        db.url(),
        &["admin", "create-user", "--email", "a@x.example"],
    );
    assert!(ok, "{err}");
    let unknown = uuid::Uuid::new_v4().to_string();
    let mistakes: [(&[&str], String); 4] = [
        (
            &["admin", "create-user", "--email", "A@x.example"],
            "calltrail: could not create the user: a user with e-mail A@x.example already exists"
                .to_owned(),
        ),
        (
            &[
                "admin",
                "add-agent",
                "--user",
                &unknown,
                "--provider",
                "bolna",
                "--external-id",
                "a",
            ],
            format!("calltrail: could not add the agent: no user with id {unknown}"),
        ),
        (
            &["admin", "create-key", "--user", &unknown],
            format!("calltrail: could not create the key: no user with id {unknown}"),
        ),
        (
            &[
                "admin",
                "set-prompts",
                "--user",
                &unknown,
                "--individual-prompt-id",
                "",
            ],
            format!("calltrail: could not change the prompt ids: no user with id {unknown}"),
        ),
    ];
    for (args, expected) in mistakes {
        let (ok, _, err) = admin(db.url(), args);
        assert!(!ok, "{args:?}");
        assert_eq!(err.trim_end(), expected, "{args:?}: one line, no ERROR log");
    }
    // A provider secret for an unknown user, too.
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_calltrail"))
        .args([
            "admin",
            "set-provider-secret",
            "--user",
            &unknown,
            "--provider",
            "vapi",
            "--secret",
            "s3cret",
        ])
        .env("DATABASE_URL", db.url())
        .env("RUST_LOG", "warn")
        .env("CALLTRAIL_SECRETS_KEY", crate::secrets::KEY)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(
        err.starts_with("calltrail: ") && err.contains(&unknown) && !err.contains("s3cret"),
        "{err}"
    );
}
