//! Users, agents, API keys, webhook tokens and provider secrets.

use std::time::Duration;

use calltrail_core::secrets::SecretsKey;
use calltrail_core::Provider;
use calltrail_projections::credentials::{secret_binding, NewCredential, SecretKind};
use calltrail_projections::{Error, NewUser};
use uuid::Uuid;

use crate::support::TestApp;

#[tokio::test]
async fn create_user_issues_hashed_credentials() {
    let app = TestApp::new().await;
    let issued = app
        .store
        .tenancy()
        .create_user(&NewUser {
            email: "Ann@Example.com".to_owned(),
            name: Some("Ann".to_owned()),
            individual_prompt_id: Some("pmpt_ind".to_owned()),
            complete_prompt_id: None,
        })
        .await
        .unwrap();
    assert!(issued.api_key.starts_with("ct_live_") && issued.api_key.len() == 8 + 64);
    assert!(issued.webhook_token.starts_with("whk_") && issued.webhook_token.len() == 4 + 64);
    assert!(!format!("{issued:?}").contains(&issued.api_key));

    let store = &app.store;
    assert_eq!(
        store
            .tenancy()
            .tenant_by_api_key(&issued.api_key)
            .await
            .unwrap(),
        Some(issued.user_id)
    );
    assert_eq!(
        store
            .tenancy()
            .tenant_by_webhook_token(&issued.webhook_token)
            .await
            .unwrap(),
        Some(issued.user_id)
    );
    // A key is not a token and vice versa.
    assert_eq!(
        store
            .tenancy()
            .tenant_by_api_key(&issued.webhook_token)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .tenancy()
            .tenant_by_webhook_token("whk_nope")
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store
            .tenancy()
            .user_by_email("ann@example.com")
            .await
            .unwrap(),
        Some(issued.user_id)
    );
    assert!(store.tenancy().user_exists(issued.user_id).await.unwrap());
    assert!(!store.tenancy().user_exists(Uuid::new_v4()).await.unwrap());
    let prompts = store
        .tenancy()
        .user_prompts(issued.user_id)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(prompts.individual_prompt_id.as_deref(), Some("pmpt_ind"));
    assert_eq!(prompts.complete_prompt_id, None);

    // Only hashes are stored.
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let rows = client
        .query(
            "SELECT hash FROM api_keys UNION ALL SELECT hash FROM webhook_tokens",
            &[],
        )
        .await
        .unwrap();
    for row in rows {
        let hash: Vec<u8> = row.get(0);
        assert_eq!(hash.len(), 32);
        assert!(!String::from_utf8_lossy(&hash).contains("ct_live_"));
    }

    let more = store
        .tenancy()
        .issue_credentials(issued.user_id)
        .await
        .unwrap();
    assert_ne!(more.api_key, issued.api_key);
    assert_eq!(
        store
            .tenancy()
            .tenant_by_api_key(&more.api_key)
            .await
            .unwrap(),
        Some(issued.user_id)
    );
    assert_eq!(
        store
            .tenancy()
            .tenant_by_api_key(&issued.api_key)
            .await
            .unwrap(),
        Some(issued.user_id)
    );
    assert!(matches!(
        store.tenancy().issue_credentials(Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_taken_email_is_a_conflict() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let err = app
        .store
        .tenancy()
        .create_user(&NewUser {
            email: "ANN@example.com".to_owned(),
            ..NewUser::default()
        })
        .await
        .unwrap_err();
    match err {
        Error::Conflict(message) => {
            assert_eq!(message, "a user with e-mail ANN@example.com already exists");
        }
        other => panic!("expected a conflict, got {other:?}"),
    }
}

#[tokio::test]
async fn agents_belong_to_one_user() {
    let app = TestApp::new().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let store = &app.store;
    let agent = store
        .tenancy()
        .add_agent(ann, "bolna", "agent-1", Some("Maya"))
        .await
        .unwrap();
    assert_eq!(
        store
            .tenancy()
            .add_agent(ann, "bolna", "agent-1", None)
            .await
            .unwrap(),
        agent
    );
    assert_eq!(
        store
            .tenancy()
            .agent_owner("bolna", "agent-1")
            .await
            .unwrap(),
        Some(ann)
    );
    assert_eq!(
        store
            .tenancy()
            .agent_owner("bolna", "agent-2")
            .await
            .unwrap(),
        None
    );
    assert!(matches!(
        store
            .tenancy()
            .add_agent(bob, "bolna", "agent-1", None)
            .await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .tenancy()
            .add_agent(Uuid::new_v4(), "bolna", "agent-3", None)
            .await,
        Err(Error::NotFound(_))
    ));
    // The same external id under another provider is another agent.
    let other = store
        .tenancy()
        .add_agent(bob, "vapi", "agent-1", None)
        .await
        .unwrap();
    assert_ne!(other, agent);
}

/// A `provider_secrets` row: its kind, ciphertext, base URL, and validity in hours from now
/// (`None`: the current one).
struct Row<'a> {
    user: Uuid,
    provider: &'a str,
    kind: &'a str,
    ciphertext: &'a [u8],
    base_url: Option<&'a str>,
    hours: Option<i32>,
}

async fn insert(
    client: &tokio_postgres::Client,
    row: Row<'_>,
) -> Result<u64, tokio_postgres::Error> {
    client
        .execute(
            "INSERT INTO provider_secrets
               (user_id, provider, kind, ciphertext, nonce, base_url, valid_until)
             VALUES ($1, $2, $3, $4, '\\x000102030405060708090a0b'::bytea, $5,
                     now() + make_interval(hours => $6::int))",
            &[
                &row.user,
                &row.provider,
                &row.kind,
                &row.ciphertext,
                &row.base_url,
                &row.hours,
            ],
        )
        .await
}

#[tokio::test]
async fn provider_secrets_are_read_current_first_and_only_while_valid() {
    let app = TestApp::new().await;
    let ann = app.user("ann@example.com").await;
    let bob = app.user("bob@example.com").await;
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let signing = |user, provider, ciphertext, hours| Row {
        user,
        provider,
        kind: "webhook_signing",
        ciphertext,
        base_url: None,
        hours,
    };
    for row in [
        signing(ann, "vapi", b"rotated-a-day", Some(24)),
        signing(ann, "vapi", b"current", None),
        signing(ann, "vapi", b"rotated-an-hour", Some(1)),
        signing(ann, "vapi", b"expired", Some(-1)),
        Row {
            kind: "api_key",
            base_url: Some("http://127.0.0.1:9"),
            ..signing(ann, "vapi", b"api-key", None)
        },
        signing(ann, "retell", b"other-provider", None),
        signing(bob, "vapi", b"other-tenant", None),
    ] {
        insert(&client, row).await.unwrap();
    }
    let store = &app.store;
    let secrets = store
        .tenancy()
        .provider_secrets(ann, "vapi", SecretKind::WebhookSigning)
        .await
        .unwrap();
    let ciphertexts: Vec<&[u8]> = secrets.iter().map(|s| s.ciphertext.as_slice()).collect();
    assert_eq!(
        ciphertexts,
        [&b"current"[..], b"rotated-a-day", b"rotated-an-hour"]
    );
    assert_eq!(secrets[0].valid_until, None);
    assert_eq!(secrets[0].nonce.len(), 12);
    assert!(!format!("{:?}", secrets[0]).contains("current"));
    let api = store
        .tenancy()
        .provider_secrets(ann, "vapi", SecretKind::ApiKey)
        .await
        .unwrap();
    assert_eq!(api.len(), 1);
    assert_eq!(api[0].base_url.as_deref(), Some("http://127.0.0.1:9"));
    assert!(store
        .tenancy()
        .provider_secrets(ann, "twilio", SecretKind::WebhookSigning)
        .await
        .unwrap()
        .is_empty());

    // The schema keeps one current credential per kind, and a base URL only on an API key.
    assert!(insert(&client, signing(ann, "vapi", b"x", None))
        .await
        .is_err());
    let signing_with_url = Row {
        base_url: Some("http://x"),
        ..signing(bob, "retell", b"x", None)
    };
    assert!(insert(&client, signing_with_url).await.is_err());
}

fn secrets_key() -> SecretsKey {
    SecretsKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").unwrap()
}

/// The tenant's signing secrets for a provider in force now, opened, current first.
async fn signing_secrets(app: &TestApp, user: Uuid, provider: Provider) -> Vec<String> {
    let binding = secret_binding(user, provider, SecretKind::WebhookSigning);
    app.store
        .tenancy()
        .provider_secrets(user, provider.as_str(), SecretKind::WebhookSigning)
        .await
        .unwrap()
        .iter()
        .map(|sealed| {
            let opened = sealed.open(&secrets_key(), &binding).unwrap();
            String::from_utf8(opened.expose().to_vec()).unwrap()
        })
        .collect()
}

fn signing(
    user: Uuid,
    provider: Provider,
    secret: &str,
    previous_valid_for: Duration,
) -> NewCredential<'_> {
    NewCredential {
        user_id: user,
        provider,
        kind: SecretKind::WebhookSigning,
        secret: secret.as_bytes(),
        base_url: None,
        previous_valid_for,
    }
}

#[tokio::test]
async fn a_rotated_secret_stays_valid_for_its_window_and_never_longer() {
    let app = TestApp::new().await;
    let ann = app.user("ann@example.com").await;
    let key = secrets_key();
    let store = &app.store;
    let day = Duration::from_secs(24 * 3600);
    store
        .tenancy()
        .set_provider_credential(&key, signing(ann, Provider::Vapi, "one", Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(signing_secrets(&app, ann, Provider::Vapi).await, ["one"]);

    // Rotating with a window keeps the old one beside the new one.
    store
        .tenancy()
        .set_provider_credential(&key, signing(ann, Provider::Vapi, "two", day))
        .await
        .unwrap();
    assert_eq!(
        signing_secrets(&app, ann, Provider::Vapi).await,
        ["two", "one"]
    );
    let summary = store.tenancy().credential_summary().await.unwrap();
    assert_eq!(summary.stored, 2);
    assert_eq!(summary.signing_tenants, [(Provider::Vapi, 1)]);
    let (binding, newest) = summary.newest.unwrap();
    assert_eq!(newest.open(&key, &binding).unwrap().expose(), b"two");

    // A shorter window cuts every earlier secret to it; none of them outlives it.
    store
        .tenancy()
        .set_provider_credential(
            &key,
            signing(ann, Provider::Vapi, "three", Duration::from_secs(60)),
        )
        .await
        .unwrap();
    assert_eq!(
        signing_secrets(&app, ann, Provider::Vapi).await,
        ["three", "two", "one"]
    );
    let rows = store
        .tenancy()
        .provider_secrets(ann, "vapi", SecretKind::WebhookSigning)
        .await
        .unwrap();
    let in_a_minute = chrono::Utc::now() + chrono::Duration::seconds(61);
    assert!(rows[1..]
        .iter()
        .all(|r| r.valid_until.is_some_and(|t| t <= in_a_minute)));

    // Without a window the earlier secrets stop at once (a leaked secret is replaced so).
    store
        .tenancy()
        .set_provider_credential(&key, signing(ann, Provider::Vapi, "four", Duration::ZERO))
        .await
        .unwrap();
    assert_eq!(signing_secrets(&app, ann, Provider::Vapi).await, ["four"]);

    // Other tenants and providers are untouched; stored bytes are not the secret.
    let bob = app.user("bob@example.com").await;
    store
        .tenancy()
        .set_provider_credential(&key, signing(bob, Provider::Twilio, "bob-token", day))
        .await
        .unwrap();
    assert_eq!(signing_secrets(&app, ann, Provider::Vapi).await, ["four"]);
    assert_eq!(
        signing_secrets(&app, bob, Provider::Twilio).await,
        ["bob-token"]
    );
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    let dump: Vec<Vec<u8>> = client
        .query("SELECT ciphertext FROM provider_secrets", &[])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!dump.is_empty());
    assert!(dump
        .iter()
        .all(|c| !c.windows(4).any(|w| w == b"four" || w == b"bob-")));

    // An unknown user is refused.
    let missing = store
        .tenancy()
        .set_provider_credential(&key, signing(Uuid::new_v4(), Provider::Vapi, "x", day))
        .await;
    assert!(matches!(missing, Err(Error::NotFound(_))), "{missing:?}");
}

/// A raw connection to the test database.
async fn sql(app: &TestApp) -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);
    client
}

#[tokio::test]
async fn api_keys_are_created_listed_marked_used_once_a_minute_and_revoked() {
    let app = TestApp::new().await;
    let tenancy = app.store.tenancy();
    let first = tenancy
        .create_user(&NewUser {
            email: "keys@example.com".to_owned(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let second = tenancy
        .create_api_key(first.user_id, Some(" ci server "))
        .await
        .unwrap();
    assert!(second.api_key.starts_with(&second.prefix));
    assert_eq!(second.prefix.len(), "ct_live_".len() + 8);
    assert_eq!(second.name.as_deref(), Some("ci server"));
    assert!(!format!("{second:?}").contains(&second.api_key));

    let keys = tenancy.list_api_keys(first.user_id).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert_eq!(keys[0].prefix.as_deref(), Some(&first.api_key[..16]));
    assert_eq!(keys[0].name, None);
    assert_eq!(keys[1].key_id, second.key_id);
    assert_eq!(keys[1].name.as_deref(), Some("ci server"));
    assert!(keys
        .iter()
        .all(|k| k.last_used_at.is_none() && k.revoked_at.is_none()));

    // A look-up marks the key used; another within the minute writes nothing.
    let used = tenancy.tenant_by_api_key(&second.api_key).await.unwrap();
    assert_eq!(used, Some(first.user_id));
    let last_used = |keys: &[calltrail_projections::ApiKeyInfo]| {
        keys.iter()
            .find(|k| k.key_id == second.key_id)
            .and_then(|k| k.last_used_at)
    };
    let marked = last_used(&tenancy.list_api_keys(first.user_id).await.unwrap());
    assert!(marked.is_some());
    tenancy.tenant_by_api_key(&second.api_key).await.unwrap();
    assert_eq!(
        last_used(&tenancy.list_api_keys(first.user_id).await.unwrap()),
        marked
    );
    // A mark older than a minute is renewed.
    sql(&app)
        .await
        .execute(
            "UPDATE api_keys SET last_used_at = now() - interval '61 seconds' WHERE id = $1",
            &[&second.key_id],
        )
        .await
        .unwrap();
    tenancy.tenant_by_api_key(&second.api_key).await.unwrap();
    let renewed = last_used(&tenancy.list_api_keys(first.user_id).await.unwrap());
    assert!(renewed.is_some_and(|at| at > chrono::Utc::now() - chrono::Duration::seconds(30)));

    // Revoked: authenticates nothing, listed with its time, revoking again keeps it.
    let revoked = tenancy
        .revoke_api_key(first.user_id, second.key_id)
        .await
        .unwrap();
    assert!(revoked.revoked_at.is_some());
    assert_eq!(
        tenancy.tenant_by_api_key(&second.api_key).await.unwrap(),
        None
    );
    assert_eq!(
        tenancy.tenant_by_api_key(&first.api_key).await.unwrap(),
        Some(first.user_id)
    );
    let again = tenancy
        .revoke_api_key(first.user_id, second.key_id)
        .await
        .unwrap();
    assert_eq!(again.revoked_at, revoked.revoked_at);
    let keys = tenancy.list_api_keys(first.user_id).await.unwrap();
    assert_eq!(keys[1].revoked_at, revoked.revoked_at);

    // Another user's key, an unknown key, an unknown user.
    let other = app.user("other@example.com").await;
    assert!(matches!(
        tenancy.revoke_api_key(other, keys[0].key_id).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        tenancy.revoke_api_key(first.user_id, Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        tenancy.list_api_keys(Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
    assert!(matches!(
        tenancy.create_api_key(Uuid::new_v4(), None).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_key_from_before_prefixes_lists_with_a_null_prefix() {
    let app = TestApp::new().await;
    let user = app.user("old@example.com").await;
    sql(&app)
        .await
        .execute(
            "INSERT INTO api_keys (hash, user_id) VALUES (sha256('ct_live_old'), $1)",
            &[&user],
        )
        .await
        .unwrap();
    let keys = app.store.tenancy().list_api_keys(user).await.unwrap();
    assert_eq!(keys.len(), 2);
    assert!(keys.iter().any(|k| k.prefix.is_none()));
}

#[tokio::test]
async fn reissued_demo_credentials_revoke_the_earlier_demo_keys_only() {
    let app = TestApp::new().await;
    let tenancy = app.store.tenancy();
    let created = tenancy
        .create_user(&NewUser {
            email: "demo@example.com".to_owned(),
            ..NewUser::default()
        })
        .await
        .unwrap();
    let kept = tenancy
        .create_api_key(created.user_id, Some("ci"))
        .await
        .unwrap();
    let (first, revoked) = tenancy
        .reissue_demo_credentials(created.user_id)
        .await
        .unwrap();
    assert_eq!(revoked, 1, "the key create-user issued");
    let (second, revoked) = tenancy
        .reissue_demo_credentials(created.user_id)
        .await
        .unwrap();
    assert_eq!(revoked, 1, "the previous demo key");
    for (key, valid) in [
        (&created.api_key, false),
        (&first.api_key, false),
        (&second.api_key, true),
        (&kept.api_key, true),
    ] {
        let tenant = tenancy.tenant_by_api_key(key).await.unwrap();
        assert_eq!(tenant.is_some(), valid, "{}", &key[..16]);
    }
    assert_eq!(
        tenancy
            .tenant_by_webhook_token(&second.webhook_token)
            .await
            .unwrap(),
        Some(created.user_id)
    );
}
