//! The console in a real browser (headless Chromium): sign in, the dashboard's numbers equal
//! `GET /v1/kpis` for the same range, open a call, attribute it from the unattributed page,
//! download the CSV, the narrow layout, labels and keyboard focus, sign out; and no browser
//! console error on the way. A failing step leaves a screenshot under
//! `target/browser-screenshots/`.

use std::panic::AssertUnwindSafe;
use std::time::Duration;

use futures_util::FutureExt as _;
use serde_json::{json, Value};

use crate::helpers::{fixtures, spawn_app_with, with_fields, Tenant, TestApp, AGENT, SUCCESS};
use crate::webdriver::{screenshot_dir, Browser};

/// A call on the last second of the range's last day (inside the inclusive end) and one at
/// the next midnight (outside it).
const LAST_SECOND: &str = "e0000000-0000-4000-8000-000000000031";
const NEXT_MIDNIGHT: &str = "e0000000-0000-4000-8000-000000000101";

async fn seed(app: &TestApp, tenant: &Tenant) {
    app.add_agent(tenant, AGENT).await;
    for scenario in ["bolna/success", "bolna/no-answer", "bolna/busy"] {
        for body in fixtures::scenario(scenario) {
            app.post_bolna(&tenant.webhook_token, &body).await;
        }
    }
    let missed = fixtures::read("bolna/no-answer/03-no-answer.json");
    for (id, at) in [
        (LAST_SECOND, "2025-10-31T23:59:59"),
        (NEXT_MIDNIGHT, "2025-11-01T00:00:00"),
    ] {
        let body = with_fields(
            &missed,
            &[
                ("id", json!(id)),
                ("created_at", json!(at)),
                ("updated_at", json!(at)),
            ],
        );
        let (status, answer) = app.post_bolna_json(&tenant.webhook_token, &body).await;
        assert_eq!(status, 202, "{answer}");
    }
    // Analyses settle before any number is compared.
    app.wait_for(tenant, "/v1/contacts/%2B14155550132/analysis", |s, _| {
        s == 200
    })
    .await;
    app.wait_until_projected().await;
}

/// A campaign made through the JSON API; its id.
async fn create_campaign(app: &TestApp, tenant: &Tenant, name: &str) -> String {
    let response = app
        .client
        .post(format!("{}/v1/campaigns", app.address))
        .bearer_auth(&tenant.api_key)
        .json(&json!({ "name": name }))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status().as_u16(), 201);
    let body: Value = response.json().await.expect("a campaign");
    body["campaign_id"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_user_signs_in_reads_the_dashboard_opens_a_call_and_signs_out() {
    let app = spawn_app_with(|s| s.worker = true).await;
    let tenant = app.create_tenant().await;
    seed(&app, &tenant).await;
    let campaign = create_campaign(&app, &tenant, "Autumn renewals").await;
    app.wait_until_projected().await;
    let Some(browser) = Browser::start(1200, 900).await else {
        return;
    };
    let outcome = AssertUnwindSafe(scenario(&app, &tenant, &browser, &campaign))
        .catch_unwind()
        .await;
    if outcome.is_err() {
        browser
            .screenshot_to(&screenshot_dir().join("console-scenario.png"))
            .await;
    }
    browser.quit().await;
    if let Err(panic) = outcome {
        std::panic::resume_unwind(panic);
    }
}

async fn scenario(app: &TestApp, tenant: &Tenant, browser: &Browser, campaign: &str) {
    let base = &app.address;
    let mut errors = Vec::new();

    // A page without a session leads to the sign-in form.
    browser.goto(&format!("{base}/calls")).await;
    assert_eq!(browser.current_url().await, format!("{base}/signin"));
    browser.type_into("#api_key", &tenant.api_key).await;
    browser
        .click("form[action='/signin'] button[type=submit]")
        .await;
    browser.wait_for_url(&format!("{base}/")).await;
    assert_eq!(browser.text("h1").await, "Dashboard");

    // The key is in no URL and no cookie; the session cookie is out of the page's reach.
    let cookies = browser.cookies().await;
    assert!(!cookies.is_empty());
    for cookie in &cookies {
        let value = cookie["value"].as_str().unwrap_or_default();
        assert!(!value.contains(&tenant.api_key), "{cookie}");
    }
    let session = cookies
        .iter()
        .find(|c| c["name"] == "calltrail_session")
        .expect("the session cookie");
    assert_eq!(session["httpOnly"], true, "{session}");
    assert_eq!(session["sameSite"], "Strict", "{session}");
    let visible = browser.execute("return document.cookie", json!([])).await;
    assert!(!visible
        .as_str()
        .unwrap_or_default()
        .contains("calltrail_session"));

    // The default range is the last 7 days, ending today (UTC).
    let today = chrono::Utc::now().date_naive();
    let week_ago = today - chrono::TimeDelta::days(6);
    let value_of = "return document.getElementById(arguments[0]).value";
    assert_eq!(
        browser.execute(value_of, json!(["to"])).await,
        today.to_string()
    );
    assert_eq!(
        browser.execute(value_of, json!(["from"])).await,
        week_ago.to_string()
    );

    // Pick October 2025 (the date inputs take ISO dates; typing would depend on the locale).
    browser
        .execute(
            "document.getElementById('from').value = '2025-10-01';
             document.getElementById('to').value = '2025-10-31';",
            json!([]),
        )
        .await;
    browser.click("form.filters button[type=submit]").await;
    browser
        .wait_for_url(&format!("{base}/?from=2025-10-01&to=2025-10-31"))
        .await;
    errors.extend(browser.console_log().await);

    // The same numbers as the API for [2025-10-01, 2025-11-01): the end date is inclusive.
    let (status, kpis) = app
        .get(tenant, "/v1/kpis?from=2025-10-01&to=2025-11-01")
        .await;
    assert_eq!(status, 200);
    assert_eq!(
        kpis["total_calls"], 4,
        "3 fixture calls and the last second: {kpis}"
    );
    assert_eq!(kpis["missed_calls"], 3, "{kpis}");
    let shown = |key: &'static str| async move {
        browser.text(&format!("li[data-kpi={key}] .value")).await
    };
    for key in [
        "total_calls",
        "connected_calls",
        "missed_calls",
        "failed_calls",
        "credits_used",
        "leads_analyzed",
        "hot_leads",
        "warm_leads",
        "cold_leads",
    ] {
        assert_eq!(shown(key).await, kpis[key].to_string(), "{key}");
    }
    for key in ["connected_rate", "missed_rate"] {
        let rate = kpis[key].as_f64().unwrap_or(f64::NAN);
        assert_eq!(shown(key).await, format!("{:.1}%", rate * 100.0), "{key}");
    }
    assert_eq!(shown("connected_rate").await, "25.0%");

    // From the dashboard to the calls of the range, then to one call.
    browser.click("a[href^='/calls?from=2025-10-01']").await;
    assert_eq!(browser.text("h1").await, "Calls");
    let rows = browser.find_all("tbody tr").await;
    assert_eq!(rows.len(), 4, "the next midnight is outside the range");
    let listed = browser.text("tbody").await;
    assert!(!listed.contains("2025-11-01"), "{listed}");
    browser
        .click(&format!("a[aria-label='Call {SUCCESS}']"))
        .await;
    assert_eq!(browser.text("h1").await, format!("Call {SUCCESS}"));
    let summary = browser.text("section[aria-labelledby=summary]").await;
    assert!(
        summary.contains("completed") && summary.contains("28 s"),
        "{summary}"
    );
    let timeline = browser.find_all("ol.timeline li").await;
    let (_, call) = app.get(tenant, &format!("/v1/calls/{SUCCESS}")).await;
    assert_eq!(
        timeline.len(),
        call["events"].as_array().map_or(0, Vec::len)
    );
    assert!(browser.text("pre.transcript").await.contains("Maya"));
    assert_eq!(
        browser
            .find_all("section[data-details-group] details")
            .await
            .len(),
        timeline.len()
    );
    // The enhancement script opens every raw payload at once.
    browser.click("section[data-details-group] button").await;
    assert!(browser
        .text("section[data-details-group] pre.payload")
        .await
        .contains("\"status\": \"initiated\""));
    errors.extend(browser.console_log().await);

    attribute_from_the_unattributed_page(app, tenant, browser, campaign).await;
    errors.extend(browser.console_log().await);
    download_the_csv(app, tenant, browser).await;
    errors.extend(browser.console_log().await);

    // 375 px wide: nothing wider than the screen, rows become cards, on the new pages too.
    browser.resize(375, 800).await;
    for path in [
        "/unattributed?from=2025-10-01&to=2025-10-31".to_owned(),
        format!("/calls/{SUCCESS}"),
        "/campaigns".to_owned(),
        "/calls?from=2025-10-01&to=2025-10-31".to_owned(),
    ] {
        browser.goto(&format!("{base}{path}")).await;
        // Nothing wider than the screen's width inside the scroll bar.
        let widths = browser
            .execute(
                "const d = document.documentElement; return [d.scrollWidth, d.clientWidth]",
                json!([]),
            )
            .await;
        let (scroll, client) = (widths[0].as_i64(), widths[1].as_i64());
        assert!(
            scroll.is_some_and(|w| w <= 375) && scroll <= client,
            "{path} is {widths} px wide (scroll, client)"
        );
    }

    // Keyboard: the first Tab reaches the skip link, which moves focus to the content.
    browser.press("\u{E004}").await;
    let focused = "return document.activeElement.textContent";
    assert_eq!(browser.execute(focused, json!([])).await, "Skip to content");
    browser.press("\u{E007}").await;
    assert_eq!(
        browser
            .execute("return document.activeElement.id", json!([]))
            .await,
        Value::from("main")
    );
    errors.extend(browser.console_log().await);

    // Sign out ends the session on the server: the dashboard asks for a key again.
    browser.click("form.signout button").await;
    browser.wait_for_url(&format!("{base}/signin")).await;
    browser.goto(&format!("{base}/")).await;
    assert_eq!(browser.current_url().await, format!("{base}/signin"));
    let revoked = app
        .sql_count("SELECT count(*) FROM console_sessions WHERE revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked, 1);

    errors.extend(browser.console_log().await);
    let errors: Vec<_> = errors
        .into_iter()
        .filter(|e| e["level"] == "SEVERE" || e["level"] == "WARNING")
        .collect();
    assert!(errors.is_empty(), "browser console: {errors:?}");
}

/// Every visible form control of the page without a label (its `id`, name or tag).
const UNLABELLED: &str = "return Array.from(document.querySelectorAll(
    'input:not([type=hidden]), select, textarea'))
  .filter((e) => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
  .map((e) => e.id || e.name || e.tagName)";

/// From the unattributed page, by keyboard: check the answered call, pick the campaign,
/// submit; the page says the change is on its way, and the call page shows the campaign once
/// the projector has folded it (polled with a deadline).
async fn attribute_from_the_unattributed_page(
    app: &TestApp,
    tenant: &Tenant,
    browser: &Browser,
    campaign: &str,
) {
    let base = &app.address;
    browser.click("a[href='/unattributed']").await;
    browser.wait_for_url(&format!("{base}/unattributed")).await;
    assert_eq!(browser.text("h1").await, "Unattributed calls");
    let page = format!("{base}/unattributed?from=2025-10-01&to=2025-10-31");
    browser.goto(&page).await;
    assert_eq!(
        browser.find_all("input[name=execution_id]").await.len(),
        4,
        "every call of October is unattributed"
    );
    assert_eq!(browser.execute(UNLABELLED, json!([])).await, json!([]));

    // Space on the focused checkbox checks it; the picker takes the campaign by keyboard too.
    let focus = "document.querySelector(arguments[0]).focus()";
    browser
        .execute(focus, json!([format!("input[value='{SUCCESS}']")]))
        .await;
    browser.press("\u{E00D}").await;
    let checked = "return document.querySelector(arguments[0]).checked";
    assert_eq!(
        browser
            .execute(checked, json!([format!("input[value='{SUCCESS}']")]))
            .await,
        json!(true)
    );
    browser
        .click(&format!("#campaign_id option[value='{campaign}']"))
        .await;
    browser.click("form.attribute button[type=submit]").await;
    browser
        .wait_for_url(&format!("{page}&saved=1&missing=0"))
        .await;
    let notice = browser.text("p.notice[role=status]").await;
    assert!(
        notice.contains("Saved: 1 call attributed.") && notice.contains("updating"),
        "{notice}"
    );

    // The call page shows it once the projector has caught up.
    let call_page = format!("{base}/calls/{SUCCESS}");
    let shown = format!("p[data-campaign='{campaign}']");
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        browser.goto(&call_page).await;
        if !browser.find_all(&shown).await.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the call page never showed the campaign"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let text = browser.text(&shown).await;
    assert!(
        text.contains("Autumn renewals") && text.contains("by hand"),
        "{text}"
    );
    assert_eq!(browser.execute(UNLABELLED, json!([])).await, json!([]));
    let (_, call) = app.get(tenant, &format!("/v1/calls/{SUCCESS}")).await;
    assert_eq!(call["campaign_id"], json!(campaign));

    // The campaigns page counts it.
    browser.click("a[href='/campaigns']").await;
    let row = browser.text("tbody tr").await;
    assert!(row.contains("Autumn renewals"), "{row}");
    let calls = browser.text("td[data-label=Calls]").await;
    assert_eq!(calls, "1");
}

/// The list's "Download CSV" link carries its filters; fetched with the browser's session
/// cookie it is the API's export of the same range, byte for byte.
async fn download_the_csv(app: &TestApp, tenant: &Tenant, browser: &Browser) {
    let base = &app.address;
    browser
        .goto(&format!(
            "{base}/calls?from=2025-10-01&to=2025-10-31&sort=oldest"
        ))
        .await;
    let href = browser
        .execute(
            "return document.querySelector('a[download]').getAttribute('href')",
            json!([]),
        )
        .await;
    assert_eq!(
        href,
        json!("/calls.csv?from=2025-10-01&to=2025-10-31&sort=oldest")
    );
    assert_eq!(browser.text("a[download]").await, "Download CSV");
    let session = browser
        .cookies()
        .await
        .into_iter()
        .find(|c| c["name"] == "calltrail_session")
        .and_then(|c| c["value"].as_str().map(str::to_owned))
        .expect("the session cookie");
    let response = app
        .client
        .get(format!("{base}{}", href.as_str().unwrap_or_default()))
        .header("cookie", format!("calltrail_session={session}"))
        .send()
        .await
        .expect("the server answers");
    assert_eq!(response.status().as_u16(), 200);
    assert_eq!(
        response
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok()),
        Some("text/csv; charset=utf-8")
    );
    let downloaded = response.text().await.unwrap_or_default();
    let api = app
        .client
        .get(format!(
            "{base}/v1/calls.csv?from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:00Z&sort=oldest"
        ))
        .bearer_auth(&tenant.api_key)
        .send()
        .await
        .expect("the server answers")
        .text()
        .await
        .unwrap_or_default();
    assert_eq!(downloaded, api);
    assert_eq!(
        downloaded.split_terminator("\r\n").count(),
        5,
        "{downloaded}"
    );
}
