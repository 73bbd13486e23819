//! Read queries: filters, keyset pagination, cursors, tenant isolation.

use std::collections::HashSet;

use calltrail_projections::{CallFilter, Error};

use crate::support::{at, fixture_as, TestApp};

#[tokio::test]
async fn calls_are_listed_newest_first_with_stable_cursors_and_filters() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    let other = app.user("b@example.com").await;
    // 12 calls; pairs share a created_at so the execution id breaks ties.
    for i in 0..12 {
        let id = format!("call-{i:02}");
        let mut event = fixture_as(
            "busy",
            "03-busy",
            &id,
            Some(&format!("+1415555{:04}", i % 3)),
        );
        event.call_created_at = Some(at(&format!("2025-10-{:02}T10:00:00", 1 + i / 2)));
        if i % 4 == 0 {
            event.agent_id = Some("agent-x".to_owned());
        }
        app.append_call(tenant, &event).await;
    }
    app.append_call(other, &fixture_as("busy", "03-busy", "theirs", None))
        .await;
    app.project(&app.projector(5)).await;

    let mut seen = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .list_calls(tenant, &CallFilter::default(), cursor.as_deref(), 5)
            .await
            .unwrap();
        assert!(page.items.len() <= 5);
        seen.extend(page.items.iter().map(|c| c.execution_id.clone()));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    let expected: Vec<String> = (0..12).rev().map(|i| format!("call-{i:02}")).collect();
    assert_eq!(seen, expected);

    let store = &app.store;
    let filter = |f: CallFilter| async move {
        let page = store.list_calls(tenant, &f, None, 100).await.unwrap();
        page.items
            .into_iter()
            .map(|c| c.execution_id)
            .collect::<HashSet<_>>()
    };
    assert_eq!(
        filter(CallFilter {
            agent_id: Some("agent-x".into()),
            ..Default::default()
        })
        .await
        .len(),
        3
    );
    assert_eq!(
        filter(CallFilter {
            phone: Some("+1 415 555 0001".into()),
            ..Default::default()
        })
        .await
        .len(),
        4
    );
    assert_eq!(
        filter(CallFilter {
            status: Some("failed".into()),
            ..Default::default()
        })
        .await
        .len(),
        12
    );
    assert_eq!(
        filter(CallFilter {
            status: Some("completed".into()),
            ..Default::default()
        })
        .await
        .len(),
        0
    );
    assert_eq!(
        filter(CallFilter {
            lifecycle_status: Some("busy".into()),
            ..Default::default()
        })
        .await
        .len(),
        12
    );
    let window = CallFilter {
        from: Some(at("2025-10-02T00:00:00")),
        to: Some(at("2025-10-03T10:00:00")),
        ..Default::default()
    };
    let ids = filter(window).await;
    assert_eq!(
        ids,
        ["call-02", "call-03"]
            .into_iter()
            .map(String::from)
            .collect()
    );

    // Tenant isolation: another tenant's call is indistinguishable from a missing one.
    assert!(app
        .store
        .get_call(tenant, None, "theirs")
        .await
        .unwrap()
        .found()
        .is_none());
    assert!(app
        .store
        .get_transcript(tenant, None, "theirs")
        .await
        .unwrap()
        .found()
        .is_none());
    assert_eq!(app.store.call_count(other).await.unwrap(), 1);
}

#[tokio::test]
async fn malformed_cursors_are_invalid() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    for bad in ["not-hex", "00", "3132333a", &hex_of("abc:def")] {
        let err = app
            .store
            .list_calls(tenant, &CallFilter::default(), Some(bad), 10)
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::InvalidCursor), "{bad}: {err:?}");
        let err = app
            .store
            .list_contacts(tenant, Some(bad), 10)
            .await
            .unwrap_err();
        assert!(matches!(&err, Error::InvalidCursor), "{bad}: {err:?}");
    }
    // A well-formed calls cursor is not a contacts cursor (its id is not a uuid).
    assert!(app
        .store
        .list_contacts(tenant, Some(&hex_of("1:call-1")), 10)
        .await
        .is_err());
}

#[tokio::test]
async fn contacts_paginate() {
    let app = TestApp::new().await;
    let tenant = app.user("a@example.com").await;
    for i in 0..7 {
        let event = fixture_as(
            "no-answer",
            "03-no-answer",
            &format!("c{i}"),
            Some(&format!("+1415555{i:04}")),
        );
        app.append_call(tenant, &event).await;
    }
    app.project(&app.projector(500)).await;
    let mut phones = Vec::new();
    let mut cursor = None;
    loop {
        let page = app
            .store
            .list_contacts(tenant, cursor.as_deref(), 2)
            .await
            .unwrap();
        phones.extend(page.items.into_iter().map(|c| c.phone_number));
        cursor = page.next_cursor;
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(phones.len(), 7);
    assert_eq!(phones.iter().collect::<HashSet<_>>().len(), 7);
}

fn hex_of(text: &str) -> String {
    text.bytes().map(|b| format!("{b:02x}")).collect()
}
