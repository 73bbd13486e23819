//! Users, agents, API keys and webhook tokens.

use calltrail_projections::{Error, NewUser};
use uuid::Uuid;

use crate::support::TestApp;

#[tokio::test]
async fn create_user_issues_hashed_credentials() {
    let app = TestApp::new().await;
    let issued = app
        .store
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
        store.tenant_by_api_key(&issued.api_key).await.unwrap(),
        Some(issued.user_id)
    );
    assert_eq!(
        store
            .tenant_by_webhook_token(&issued.webhook_token)
            .await
            .unwrap(),
        Some(issued.user_id)
    );
    // A key is not a token and vice versa.
    assert_eq!(
        store
            .tenant_by_api_key(&issued.webhook_token)
            .await
            .unwrap(),
        None
    );
    assert_eq!(
        store.tenant_by_webhook_token("whk_nope").await.unwrap(),
        None
    );
    assert_eq!(
        store.user_by_email("ann@example.com").await.unwrap(),
        Some(issued.user_id)
    );
    assert!(store.user_exists(issued.user_id).await.unwrap());
    assert!(!store.user_exists(Uuid::new_v4()).await.unwrap());
    let prompts = store.user_prompts(issued.user_id).await.unwrap().unwrap();
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

    let more = store.issue_credentials(issued.user_id).await.unwrap();
    assert_ne!(more.api_key, issued.api_key);
    assert_eq!(
        store.tenant_by_api_key(&more.api_key).await.unwrap(),
        Some(issued.user_id)
    );
    assert_eq!(
        store.tenant_by_api_key(&issued.api_key).await.unwrap(),
        Some(issued.user_id)
    );
    assert!(matches!(
        store.issue_credentials(Uuid::new_v4()).await,
        Err(Error::NotFound(_))
    ));
}

#[tokio::test]
async fn a_taken_email_is_a_conflict() {
    let app = TestApp::new().await;
    app.user("ann@example.com").await;
    let err = app
        .store
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
        .add_agent(ann, "bolna", "agent-1", Some("Maya"))
        .await
        .unwrap();
    assert_eq!(
        store
            .add_agent(ann, "bolna", "agent-1", None)
            .await
            .unwrap(),
        agent
    );
    assert_eq!(
        store.agent_owner("bolna", "agent-1").await.unwrap(),
        Some(ann)
    );
    assert_eq!(store.agent_owner("bolna", "agent-2").await.unwrap(), None);
    assert!(matches!(
        store.add_agent(bob, "bolna", "agent-1", None).await,
        Err(Error::Conflict(_))
    ));
    assert!(matches!(
        store
            .add_agent(Uuid::new_v4(), "bolna", "agent-3", None)
            .await,
        Err(Error::NotFound(_))
    ));
    // The same external id under another provider is another agent.
    let other = store.add_agent(bob, "vapi", "agent-1", None).await.unwrap();
    assert_ne!(other, agent);
}
