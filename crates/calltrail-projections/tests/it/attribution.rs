//! Attribution is a fold over campaign, recipient, attribution and call events: any order of
//! them gives every call the same campaign, and a replay reproduces it.

use calltrail_core::campaign::{
    AttributionSet, CallRef, CampaignCreated, Recipient, RecipientsAdded, ATTRIBUTION_SET,
    CAMPAIGN_CREATED, RECIPIENTS_ADDED,
};
use calltrail_core::CallEvent;
use calltrail_projections::{replay, CallFilter, ReplayOptions};
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use uuid::Uuid;

use crate::support::{fixture_as, TestApp};

/// One event to append.
#[derive(Debug, Clone)]
enum Step {
    Call(Box<CallEvent>),
    Calltrail {
        stream: String,
        event_type: &'static str,
        data: String,
    },
}

/// The campaigns of one scenario.
struct Scenario {
    x: Uuid,
    y: Uuid,
    steps: Vec<Step>,
}

fn call(id: &str, phone: &str, batch: Option<&str>) -> Vec<Step> {
    ["01-initiated", "05-completed"]
        .into_iter()
        .map(|name| {
            let mut event = fixture_as("success", name, id, Some(phone));
            event.batch_id = batch.map(str::to_owned);
            Step::Call(Box::new(event))
        })
        .collect()
}

fn calltrail(event_type: &'static str, stream: String, data: &impl serde::Serialize) -> Step {
    Step::Calltrail {
        stream,
        event_type,
        data: serde_json::to_string(data).unwrap(),
    }
}

fn recipients(campaign: Uuid, phones: &[&str]) -> Step {
    let added = RecipientsAdded {
        campaign_id: campaign,
        recipients: phones
            .iter()
            .map(|p| Recipient {
                phone_number: (*p).to_owned(),
                name: None,
                email: None,
                company: None,
            })
            .collect(),
    };
    calltrail(RECIPIENTS_ADDED, Uuid::new_v4().to_string(), &added)
}

/// Calls a (batch b1), b (phone of Y only), c (phone of X and Y, attributed to Y by hand),
/// d (phone of X and Y: nobody's), e (batch b1 and phone of Y: the batch wins).
fn scenario() -> Scenario {
    let (x, y) = (Uuid::new_v4(), Uuid::new_v4());
    let mut steps = Vec::new();
    steps.extend(call("a", "+14155550101", Some("b1")));
    steps.extend(call("b", "+14155550102", None));
    steps.extend(call("c", "+14155550103", None));
    steps.extend(call("d", "+14155550104", None));
    steps.extend(call("e", "+14155550102", Some("b1")));
    let create = |id: Uuid, name: &str, batches: &[&str]| {
        let created = CampaignCreated {
            campaign_id: id,
            name: name.to_owned(),
            provider_batch_ids: batches.iter().map(|b| (*b).to_owned()).collect(),
        };
        calltrail(CAMPAIGN_CREATED, id.to_string(), &created)
    };
    steps.push(create(x, "X", &["b1"]));
    steps.push(create(y, "Y", &[]));
    steps.push(recipients(y, &["+14155550102", "+14155550103"]));
    steps.push(recipients(x, &["+14155550103", "+14155550104"]));
    steps.push(recipients(y, &["+14155550104"]));
    let manual = AttributionSet {
        campaign_id: Some(y),
        calls: vec![CallRef {
            provider: "bolna".into(),
            execution_id: "c".into(),
        }],
    };
    steps.push(calltrail(
        ATTRIBUTION_SET,
        Uuid::new_v4().to_string(),
        &manual,
    ));
    Scenario { x, y, steps }
}

async fn append(app: &TestApp, tenant: Uuid, steps: &[Step]) {
    for step in steps {
        match step {
            Step::Call(event) => {
                app.append_call(tenant, event).await;
            }
            Step::Calltrail {
                stream,
                event_type,
                data,
            } => {
                app.append_raw(tenant, "calltrail", stream, event_type, 1, data)
                    .await;
            }
        }
    }
}

/// Each call's (id, campaign, attribution), by id.
async fn attributions(app: &TestApp, tenant: Uuid) -> Vec<(String, Option<Uuid>, Option<String>)> {
    let page = app
        .store
        .list_calls(tenant, &CallFilter::default(), None, 100)
        .await
        .unwrap();
    let mut calls: Vec<_> = page
        .items
        .into_iter()
        .map(|c| (c.execution_id, c.campaign_id, c.attribution))
        .collect();
    calls.sort();
    calls
}

fn expected(s: &Scenario) -> Vec<(String, Option<Uuid>, Option<String>)> {
    let row = |id: &str, c: Option<Uuid>, a: Option<&str>| (id.to_owned(), c, a.map(str::to_owned));
    vec![
        row("a", Some(s.x), Some("auto_batch")),
        row("b", Some(s.y), Some("auto_phone")),
        row("c", Some(s.y), Some("manual")),
        row("d", None, None),
        row("e", Some(s.x), Some("auto_batch")),
    ]
}

#[test]
fn any_order_of_campaign_and_call_events_attributes_the_same() {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let app = runtime.block_on(TestApp::new());
    let projector = app.projector(3);
    let mut runner = TestRunner::new(Config {
        cases: 16,
        ..Config::default()
    });
    let strategy = (0..1_usize).prop_perturb(|_, mut rng| {
        let mut s = scenario();
        // A Fisher–Yates shuffle driven by proptest's generator.
        for i in (1..s.steps.len()).rev() {
            let j = usize::try_from(rng.next_u64() % u64::try_from(i + 1).unwrap()).unwrap();
            s.steps.swap(i, j);
        }
        (s.x, s.y, s.steps)
    });
    runner
        .run(&strategy, |(x, y, steps)| {
            runtime.block_on(async {
                let tenant = app.user(&format!("{}@example.com", Uuid::new_v4())).await;
                append(&app, tenant, &steps).await;
                app.project(&projector).await;
                let s = Scenario {
                    x,
                    y,
                    steps: vec![],
                };
                assert_eq!(attributions(&app, tenant).await, expected(&s));
            });
            Ok(())
        })
        .unwrap();
}

#[tokio::test]
async fn filters_counts_clearing_and_replay() {
    let app = TestApp::new().await;
    let tenant = app.user("camp@example.com").await;
    let s = scenario();
    append(&app, tenant, &s.steps).await;
    let projector = app.projector(50);
    app.project(&projector).await;
    let list = |filter: CallFilter| {
        let store = app.store.clone();
        async move {
            let page = store.list_calls(tenant, &filter, None, 100).await.unwrap();
            let mut ids: Vec<String> = page.items.into_iter().map(|c| c.execution_id).collect();
            ids.sort();
            ids
        }
    };
    let unattributed = CallFilter {
        attributed: Some(false),
        ..CallFilter::default()
    };
    assert_eq!(list(unattributed.clone()).await, ["d"]);
    let of_x = CallFilter {
        campaign_id: Some(s.x),
        ..CallFilter::default()
    };
    assert_eq!(list(of_x).await, ["a", "e"]);
    let y = app.store.get_campaign(tenant, s.y).await.unwrap().unwrap();
    assert_eq!((y.name.as_str(), y.calls, y.recipients), ("Y", 2, 3));
    assert_eq!(y.connected_calls, 2, "both completed calls connected");

    // Clearing c's manual attribution: its phone is X's and Y's, so it is nobody's again.
    let clear = AttributionSet {
        campaign_id: None,
        calls: vec![CallRef {
            provider: "bolna".into(),
            execution_id: "c".into(),
        }],
    };
    append(
        &app,
        tenant,
        &[calltrail(
            ATTRIBUTION_SET,
            Uuid::new_v4().to_string(),
            &clear,
        )],
    )
    .await;
    app.project(&projector).await;
    assert_eq!(list(unattributed).await, ["c", "d"]);

    let live = app.snapshot(&[tenant]).await;
    let before = attributions(&app, tenant).await;
    replay(&app.log, &app.store, ReplayOptions::default(), |_, _| {})
        .await
        .unwrap();
    assert_eq!(attributions(&app, tenant).await, before);
    assert_eq!(app.snapshot(&[tenant]).await, live);
    let listed = app.store.list_campaigns(tenant, None, 10).await.unwrap();
    assert_eq!(listed.items.len(), 2);
    let names = app.store.campaign_names(tenant, 1000).await.unwrap();
    let expected: Vec<(Uuid, String)> = listed
        .items
        .iter()
        .map(|c| (c.campaign_id, c.name.clone()))
        .collect();
    assert_eq!(names, expected, "the list's campaigns, in its order");
    assert_eq!(
        app.store.campaign_names(tenant, 1).await.unwrap(),
        expected[..1]
    );
    assert_eq!(
        app.store.campaign_names(Uuid::new_v4(), 10).await.unwrap(),
        []
    );
}
