//! The web console over plain HTTP: the security properties a browser test cannot see
//! (cookie flags, CSRF refusals, escaping, CSP, tenancy, session expiry and revocation), and
//! the attribution forms and CSV download against the JSON API's answers.

use reqwest::header::{HeaderMap, CONTENT_SECURITY_POLICY, COOKIE, LOCATION, SET_COOKIE};
use reqwest::redirect::Policy;
use serde_json::json;

use crate::helpers::{
    fixtures, spawn_app, with_fields, Tenant, TestApp, AGENT, BUSY, NO_ANSWER, SUCCESS,
};

/// A browser without cookie storage or redirects: every header is the test's to see.
pub struct ConsoleClient {
    pub http: reqwest::Client,
    pub base: String,
    pub session: Option<String>,
}

/// The `name=value` of `name` in the Set-Cookie headers, with its attributes.
pub fn set_cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{name}=")))
}

fn cookie_value(set_cookie: &str) -> String {
    let pair = set_cookie.split(';').next().unwrap_or_default();
    pair.split_once('=')
        .map(|(_, v)| v.to_owned())
        .unwrap_or_default()
}

/// The value of the first hidden `csrf` input of a page.
pub fn csrf_of(html: &str) -> String {
    let marker = r#"name="csrf" value=""#;
    let start = html.find(marker).expect("the page has a CSRF field") + marker.len();
    html[start..]
        .split('"')
        .next()
        .unwrap_or_default()
        .to_owned()
}

impl ConsoleClient {
    pub fn new(app: &TestApp) -> Self {
        Self {
            http: reqwest::Client::builder()
                .redirect(Policy::none())
                .build()
                .unwrap(),
            base: app.address.clone(),
            session: None,
        }
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        let mut request = self.http.get(format!("{}{path}", self.base));
        if let Some(session) = &self.session {
            request = request.header(COOKIE, format!("calltrail_session={session}"));
        }
        request.send().await.unwrap()
    }

    pub async fn page(&self, path: &str) -> (u16, String) {
        let response = self.get(path).await;
        let status = response.status().as_u16();
        (status, response.text().await.unwrap())
    }

    /// Signs in as the browser would (form token from the page, cookie echoed back), with
    /// `extra` headers on both requests. Returns the POST's response.
    pub async fn sign_in_with(&mut self, key: &str, extra: &[(&str, &str)]) -> reqwest::Response {
        let mut get = self.http.get(format!("{}/signin", self.base));
        for (name, value) in extra {
            get = get.header(*name, *value);
        }
        let form_page = get.send().await.unwrap();
        let form_cookie = set_cookie(form_page.headers(), "calltrail_signin")
            .map(cookie_value)
            .expect("the sign-in form sets its token cookie");
        let csrf = csrf_of(&form_page.text().await.unwrap());
        let mut post = self
            .http
            .post(format!("{}/signin", self.base))
            .header(COOKIE, format!("calltrail_signin={form_cookie}"))
            .form(&[("api_key", key), ("csrf", csrf.as_str())]);
        for (name, value) in extra {
            post = post.header(*name, *value);
        }
        let response = post.send().await.unwrap();
        if let Some(session) = set_cookie(response.headers(), "calltrail_session") {
            self.session = Some(cookie_value(session)).filter(|v| !v.is_empty());
        }
        response
    }

    /// Posts a form with the session cookie.
    pub async fn post_form(&self, path: &str, form: &[(&str, &str)]) -> reqwest::Response {
        let mut request = self.http.post(format!("{}{path}", self.base)).form(form);
        if let Some(session) = &self.session {
            request = request.header(COOKIE, format!("calltrail_session={session}"));
        }
        request.send().await.unwrap()
    }

    pub async fn sign_in(&mut self, key: &str) -> reqwest::Response {
        self.sign_in_with(key, &[]).await
    }

    pub async fn sign_out(&self, csrf: &str) -> reqwest::Response {
        self.http
            .post(format!("{}/signout", self.base))
            .header(
                COOKIE,
                format!(
                    "calltrail_session={}",
                    self.session.as_deref().unwrap_or("")
                ),
            )
            .form(&[("csrf", csrf)])
            .send()
            .await
            .unwrap()
    }
}

fn location(response: &reqwest::Response) -> Option<&str> {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
}

#[tokio::test]
async fn signing_in_sets_a_hardened_cookie_that_never_holds_the_key() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;

    let mut browser = ConsoleClient::new(&app);
    let response = browser.sign_in(&tenant.api_key).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), Some("/"));
    let cookie = set_cookie(response.headers(), "calltrail_session").unwrap();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(cookie.contains(attribute), "{cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP: {cookie}");
    for value in response.headers().values() {
        assert!(!value.to_str().unwrap_or_default().contains(&tenant.api_key));
    }
    let session = browser.session.clone().unwrap();
    assert!(session.starts_with("cts_") && !session.contains(&tenant.api_key));
    // Only the hash is stored.
    let stored = app
        .sql_count("SELECT count(*) FROM console_sessions WHERE length(hash) = 32")
        .await;
    assert_eq!(stored, 1);

    let (status, html) = browser.page("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("<h1>Dashboard</h1>"), "{html}");
    assert!(!html.contains(&tenant.api_key) && !html.contains(&session));

    // Behind a TLS-terminating proxy the cookie is Secure.
    let mut proxied = ConsoleClient::new(&app);
    let response = proxied
        .sign_in_with(&tenant.api_key, &[("x-forwarded-proto", "https")])
        .await;
    let cookie = set_cookie(response.headers(), "calltrail_session").unwrap();
    assert!(
        cookie.contains("Secure") && cookie.contains("HttpOnly"),
        "{cookie}"
    );
}

#[tokio::test]
async fn a_wrong_key_or_a_missing_form_token_starts_no_session() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let mut browser = ConsoleClient::new(&app);
    let response = browser.sign_in("ct_live_0000").await;
    assert_eq!(response.status().as_u16(), 401);
    assert!(set_cookie(response.headers(), "calltrail_session").is_none());
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("That API key is not valid"));

    // The right key without the form's token (a cross-site form post) is refused.
    let response = browser
        .http
        .post(format!("{}/signin", app.address))
        .form(&[("api_key", tenant.api_key.as_str()), ("csrf", "forged")])
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 403);
    assert!(set_cookie(response.headers(), "calltrail_session").is_none());
    assert_eq!(
        app.sql_count("SELECT count(*) FROM console_sessions").await,
        0
    );
}

#[tokio::test]
async fn sign_out_needs_the_session_s_own_token_and_ends_it_on_the_server() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let mut alice = ConsoleClient::new(&app);
    alice.sign_in(&tenant.api_key).await;
    let mut other = ConsoleClient::new(&app);
    other.sign_in(&tenant.api_key).await;
    let (_, html) = other.page("/").await;
    let others_token = csrf_of(&html);

    for token in ["", "forged", others_token.as_str()] {
        let response = alice.sign_out(token).await;
        assert_eq!(response.status().as_u16(), 403, "token {token:?}");
        assert_eq!(alice.page("/").await.0, 200, "still signed in");
    }

    let (_, html) = alice.page("/").await;
    let response = alice.sign_out(&csrf_of(&html)).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), Some("/signin"));
    let cleared = set_cookie(response.headers(), "calltrail_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer works, even if the browser kept it.
    let response = alice.get("/calls").await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), Some("/signin"));
    let revoked = app
        .sql_count("SELECT count(*) FROM console_sessions WHERE revoked_at IS NOT NULL")
        .await;
    assert_eq!(revoked, 1);
    assert_eq!(other.page("/").await.0, 200, "other sessions go on");
}

#[tokio::test]
async fn expired_sessions_and_missing_ones_lead_to_the_sign_in_page() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let anonymous = ConsoleClient::new(&app);
    for path in [
        "/",
        "/calls",
        "/calls/x",
        "/contacts",
        "/credits",
        "/unattributed",
        "/campaigns",
        "/calls.csv",
    ] {
        let response = anonymous.get(path).await;
        assert_eq!(response.status().as_u16(), 303, "{path}");
        assert_eq!(location(&response), Some("/signin"), "{path}");
    }

    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;
    assert_eq!(browser.page("/credits").await.0, 200);
    app.sql_count(
        "WITH e AS (UPDATE console_sessions SET expires_at = now() - interval '1 second' RETURNING 1)
         SELECT count(*) FROM e",
    )
    .await;
    let response = browser.get("/credits").await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), Some("/signin"));
    let cleared = set_cookie(response.headers(), "calltrail_session").unwrap();
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    let (status, html) = browser.page("/signin").await;
    assert_eq!(status, 200);
    assert!(html.contains("Sign in"));
}

#[tokio::test]
async fn every_page_has_a_strict_policy_and_no_inline_script_or_style() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;
    for path in [
        "/signin",
        "/",
        "/calls",
        "/contacts",
        "/credits",
        "/calls/missing",
        "/unattributed",
        "/campaigns",
    ] {
        let response = browser.get(path).await;
        let policy = response
            .headers()
            .get(CONTENT_SECURITY_POLICY)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned();
        assert!(policy.contains("default-src 'none'"), "{path}: {policy}");
        assert!(policy.contains("script-src 'self'") && !policy.contains("unsafe"));
        assert_eq!(
            response
                .headers()
                .get("x-content-type-options")
                .and_then(|v| v.to_str().ok()),
            Some("nosniff")
        );
        let html = response.text().await.unwrap();
        assert!(
            !html.contains("<script>") && !html.contains("style="),
            "{path}"
        );
        assert!(
            !html.contains(" onclick=") && !html.contains(" onload="),
            "{path}"
        );
    }
}

#[tokio::test]
async fn hostile_call_content_renders_as_text() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    app.add_agent(&tenant, AGENT).await;
    let completed = fixtures::read("bolna/success/05-completed.json");
    let mut telephony = fixtures::json("bolna/success/05-completed.json")["telephony_data"].clone();
    telephony["recording_url"] = json!("javascript:alert('rec')");
    let hostile = with_fields(
        &completed,
        &[
            (
                "transcript",
                json!("user: <script>alert('xss')</script><img src=x onerror=alert(1)>"),
            ),
            ("telephony_data", telephony),
        ],
    );
    let (status, body) = app.post_bolna_json(&tenant.webhook_token, &hostile).await;
    assert_eq!(status, 202, "{body}");
    app.wait_until_projected().await;

    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;
    let (status, html) = browser.page(&format!("/calls/{SUCCESS}")).await;
    assert_eq!(status, 200, "{html}");
    assert!(
        html.contains("&lt;script&gt;alert('xss')&lt;/script&gt;"),
        "{html}"
    );
    assert!(!html.contains("<script>alert") && !html.contains("<img src=x"));
    assert!(
        !html.contains("href=\"javascript:"),
        "a javascript: URL is never a link"
    );
    assert!(
        html.contains("javascript:alert('rec')"),
        "but it is shown as text"
    );
    // The raw payload is escaped too.
    assert!(html.contains("&lt;img src=x onerror=alert(1)&gt;"));
}

#[tokio::test]
async fn another_tenant_s_call_is_the_same_404_page_as_a_missing_one() {
    let app = spawn_app().await;
    let owner = app.create_tenant().await;
    let stranger = app.create_tenant().await;
    app.add_agent(&owner, AGENT).await;
    for body in fixtures::scenario("bolna/success") {
        app.post_bolna(&owner.webhook_token, &body).await;
    }
    app.wait_until_projected().await;

    let mut owners = ConsoleClient::new(&app);
    owners.sign_in(&owner.api_key).await;
    let (status, html) = owners.page(&format!("/calls/{SUCCESS}")).await;
    assert_eq!(status, 200);
    assert!(html.contains("in-progress") && html.contains("Transcript"));

    let mut strangers = ConsoleClient::new(&app);
    strangers.sign_in(&stranger.api_key).await;
    let (status, theirs) = strangers.page(&format!("/calls/{SUCCESS}")).await;
    assert_eq!(status, 404);
    assert!(theirs.contains("Not found") && !theirs.contains("in-progress"));
    let (status, missing) = strangers.page("/calls/no-such-call").await;
    assert_eq!(status, 404);
    assert_eq!(theirs, missing);
    let (status, _) = strangers.page("/contacts/%2B14155550132").await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn unknown_pages_are_html_for_browsers_and_json_for_the_api() {
    let app = spawn_app().await;
    let browser = ConsoleClient::new(&app);
    let response = browser
        .http
        .get(format!("{}/no-such-page", app.address))
        .header("accept", "text/html,application/xhtml+xml")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    assert!(response
        .text()
        .await
        .unwrap()
        .contains("<h1>Not found</h1>"));
    let response = browser
        .http
        .get(format!("{}/v1/no-such-route", app.address))
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 404);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "route_not_found");
}

/// October 2025, where the fixture calls are, as the console's date fields write it.
const OCTOBER: &str = "from=2025-10-01&to=2025-10-31";

/// The three fixture calls (answered, missed, busy) of `tenant`, projected.
async fn seed_calls(app: &TestApp, tenant: &Tenant) {
    app.add_agent(tenant, AGENT).await;
    for scenario in ["bolna/success", "bolna/no-answer", "bolna/busy"] {
        for body in fixtures::scenario(scenario) {
            app.post_bolna(&tenant.webhook_token, &body).await;
        }
    }
    app.wait_until_projected().await;
}

/// A campaign of `tenant` made through the JSON API; its id.
pub async fn create_campaign(app: &TestApp, tenant: &Tenant, name: &str) -> String {
    let response = app
        .client
        .post(format!("{}/v1/campaigns", app.address))
        .bearer_auth(&tenant.api_key)
        .json(&json!({ "name": name }))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 201);
    let body: serde_json::Value = response.json().await.unwrap();
    body["campaign_id"].as_str().unwrap().to_owned()
}

async fn attribution_events(app: &TestApp) -> i64 {
    app.sql_count("SELECT count(*) FROM events WHERE event_type = 'attribution.set'")
        .await
}

#[tokio::test]
async fn the_attribution_forms_refuse_a_missing_or_foreign_token() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    seed_calls(&app, &tenant).await;
    let campaign = create_campaign(&app, &tenant, "Spring").await;
    let mut alice = ConsoleClient::new(&app);
    alice.sign_in(&tenant.api_key).await;
    let mut other = ConsoleClient::new(&app);
    other.sign_in(&tenant.api_key).await;
    let others_token = csrf_of(&other.page("/").await.1);

    let single = format!("/calls/{SUCCESS}/attribution");
    for token in [None, Some("forged"), Some(others_token.as_str())] {
        let mut form = vec![("campaign_id", campaign.as_str())];
        form.extend(token.map(|t| ("csrf", t)));
        let mut bulk = form.clone();
        bulk.push(("execution_id", BUSY));
        for (path, form) in [(single.as_str(), &form), ("/unattributed", &bulk)] {
            let response = alice.post_form(path, form).await;
            assert_eq!(response.status().as_u16(), 403, "{path} with {token:?}");
            let html = response.text().await.unwrap();
            assert!(html.contains("Form expired"), "{html}");
        }
    }
    // A clear without the token is refused too.
    let response = alice.post_form(&single, &[("action", "clear")]).await;
    assert_eq!(response.status().as_u16(), 403);
    assert_eq!(attribution_events(&app).await, 0, "nothing was recorded");
    assert_eq!(app.call(&tenant, SUCCESS).await["campaign_id"], json!(null));
}

#[tokio::test]
async fn calls_are_attributed_from_the_unattributed_page_and_the_call_page() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    seed_calls(&app, &tenant).await;
    let campaign = create_campaign(&app, &tenant, "Spring <outreach>").await;
    app.wait_until_projected().await;
    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;

    // The page lists every unattributed call with a labelled checkbox, and the campaign picker.
    let path = format!("/unattributed?{OCTOBER}");
    let (status, html) = browser.page(&path).await;
    assert_eq!(status, 200, "{html}");
    for id in [SUCCESS, NO_ANSWER, BUSY] {
        assert!(
            html.contains(&format!(r#"name="execution_id" value="{id}""#)),
            "{id}: {html}"
        );
        assert!(html.contains(&format!("Select call {id}")), "{id}");
    }
    assert!(html.contains(&format!(
        r#"<option value="{campaign}">Spring &lt;outreach&gt;</option>"#
    )));
    assert!(html.contains(r#"<label for="campaign_id">"#));
    let csrf = csrf_of(&html);

    // Nothing picked, or nothing checked: nothing changes, and the page says why.
    let response = browser
        .post_form(
            &path,
            &[("csrf", &csrf), ("campaign_id", ""), ("execution_id", BUSY)],
        )
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert!(response.text().await.unwrap().contains("Pick a campaign"));
    let response = browser
        .post_form(&path, &[("csrf", &csrf), ("campaign_id", &campaign)])
        .await;
    assert_eq!(response.status().as_u16(), 400);
    assert_eq!(attribution_events(&app).await, 0);

    // Two checked calls (one id that is no longer there) go to the campaign.
    let response = browser
        .post_form(
            &path,
            &[
                ("csrf", &csrf),
                ("campaign_id", &campaign),
                ("execution_id", BUSY),
                ("execution_id", NO_ANSWER),
                ("execution_id", "gone"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    let back = location(&response).unwrap_or_default().to_owned();
    assert_eq!(back, format!("{path}&saved=2&missing=1"));
    let (_, html) = browser.page(&back).await;
    assert!(html.contains("Saved: 2 calls attributed.") && html.contains("updating"));
    assert!(html.contains("1 of the selected calls were not found"));
    app.wait_until_projected().await;
    for id in [BUSY, NO_ANSWER] {
        let call = app.call(&tenant, id).await;
        assert_eq!(call["campaign_id"], json!(campaign), "{id}");
        assert_eq!(call["attribution"], "manual", "{id}");
    }
    let (_, html) = browser.page(&path).await;
    assert!(html.contains(SUCCESS) && !html.contains(BUSY) && !html.contains(NO_ANSWER));

    // The call page: attribute the last one, see it there, then clear it.
    let call_page = format!("/calls/{SUCCESS}");
    let (_, html) = browser.page(&call_page).await;
    assert!(html.contains("Unattributed."), "{html}");
    let action = format!("{call_page}/attribution?provider=bolna");
    assert!(html.contains(&format!(r#"action="{action}""#)));
    let response = browser
        .post_form(
            &action,
            &[
                ("csrf", &csrf),
                ("campaign_id", &campaign),
                ("action", "set"),
            ],
        )
        .await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(
        location(&response),
        Some(format!("{call_page}?provider=bolna&saved=set#campaign").as_str())
    );
    assert!(browser
        .page(&format!("{call_page}?saved=set"))
        .await
        .1
        .contains("Saved, updating"));
    app.wait_until_projected().await;
    let (_, html) = browser.page(&call_page).await;
    assert!(
        html.contains(&format!(r#"data-campaign="{campaign}""#))
            && html.contains("Spring &lt;outreach&gt;</a> — attributed by hand."),
        "{html}"
    );
    let response = browser
        .post_form(&action, &[("csrf", &csrf), ("action", "clear")])
        .await;
    assert_eq!(response.status().as_u16(), 303);
    app.wait_until_projected().await;
    assert_eq!(app.call(&tenant, SUCCESS).await["campaign_id"], json!(null));

    // The calls list names the campaign and filters by it; the campaigns page counts them.
    let (_, html) = browser.page(&format!("/calls?{OCTOBER}")).await;
    assert_eq!(
        html.matches("Spring &lt;outreach&gt;</a>").count(),
        2,
        "{html}"
    );
    let (_, html) = browser
        .page(&format!("/calls?{OCTOBER}&campaign_id={campaign}"))
        .await;
    assert!(html.contains(BUSY) && html.contains(NO_ANSWER) && !html.contains(SUCCESS));
    let (_, html) = browser
        .page(&format!("/calls?{OCTOBER}&campaign_id=none"))
        .await;
    assert!(html.contains(SUCCESS) && !html.contains(BUSY), "{html}");
    let (status, html) = browser.page("/campaigns").await;
    assert_eq!(status, 200);
    let (_, api) = app.get(&tenant, &format!("/v1/campaigns/{campaign}")).await;
    assert_eq!(
        (api["calls"].as_i64(), api["connected_calls"].as_i64()),
        (Some(2), Some(0))
    );
    assert!(
        html.contains(r#"<td class="num" data-label="Calls">2</td>"#)
            && html.contains(r#"<td class="num" data-label="Connected calls">0</td>"#),
        "{html}"
    );
}

#[tokio::test]
async fn another_tenant_s_call_or_campaign_is_a_404_page_and_changes_nothing() {
    let app = spawn_app().await;
    let owner = app.create_tenant().await;
    let stranger = app.create_tenant().await;
    seed_calls(&app, &owner).await;
    let owners_campaign = create_campaign(&app, &owner, "Owner's").await;
    let strangers_campaign = create_campaign(&app, &stranger, "Stranger's").await;
    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&stranger.api_key).await;
    let csrf = csrf_of(&browser.page("/").await.1);

    // The owner's call with the stranger's campaign, and any call with the owner's campaign.
    for (path, campaign) in [
        (format!("/calls/{SUCCESS}/attribution"), &strangers_campaign),
        (format!("/calls/{SUCCESS}/attribution"), &owners_campaign),
        ("/unattributed".to_owned(), &owners_campaign),
    ] {
        let response = browser
            .post_form(
                &path,
                &[
                    ("csrf", &csrf),
                    ("campaign_id", campaign),
                    ("execution_id", SUCCESS),
                ],
            )
            .await;
        assert_eq!(response.status().as_u16(), 404, "{path}");
        let html = response.text().await.unwrap();
        assert!(html.contains("<h1>Not found</h1>"), "{html}");
    }
    // The stranger's campaign with the owner's calls: none of them is found.
    let response = browser
        .post_form(
            "/unattributed",
            &[
                ("csrf", &csrf),
                ("campaign_id", &strangers_campaign),
                ("execution_id", SUCCESS),
            ],
        )
        .await;
    assert_eq!(
        location(&response),
        Some(format!("/unattributed?{}&saved=0&missing=1", default_range()).as_str())
    );
    assert_eq!(attribution_events(&app).await, 0);
    app.wait_until_projected().await;
    let (_, html) = browser.page("/campaigns").await;
    assert!(html.contains("Stranger&#39;s") || html.contains("Stranger's"));
    assert!(!html.contains("Owner"), "{html}");
    let (_, html) = browser.page(&format!("/calls?{OCTOBER}")).await;
    assert!(html.contains("No calls match."), "{html}");
}

/// The console's default range (the last 7 days) as its query string.
fn default_range() -> String {
    let today = chrono::Utc::now().date_naive();
    let from = today - chrono::TimeDelta::days(6);
    format!("from={from}&to={today}")
}

#[tokio::test]
async fn the_csv_download_is_the_api_s_export_of_the_list_s_filters() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    seed_calls(&app, &tenant).await;
    let campaign = create_campaign(&app, &tenant, "Spring").await;
    let response = app
        .client
        .post(format!("{}/v1/attributions", app.address))
        .bearer_auth(&tenant.api_key)
        .json(&json!({"execution_ids": [BUSY], "campaign_id": campaign}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 200);
    app.wait_until_projected().await;
    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;
    let api_csv = |query: String| {
        let app = &app;
        let tenant = &tenant;
        async move {
            let response = app
                .client
                .get(format!("{}/v1/calls.csv?{query}", app.address))
                .bearer_auth(&tenant.api_key)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status().as_u16(), 200);
            response.text().await.unwrap()
        }
    };
    let api_range = "from=2025-10-01T00:00:00Z&to=2025-11-01T00:00:00Z";

    // The list's link carries its filters.
    let list = format!("/calls?{OCTOBER}&status=completed&sort=oldest");
    let (_, html) = browser.page(&list).await;
    let link = format!(
        r#"href="/calls.csv?{}&amp;status=completed&amp;sort=oldest""#,
        OCTOBER.replace('&', "&amp;")
    );
    assert!(html.contains(&link), "{html}");

    for (console, api) in [
        (OCTOBER.to_owned(), api_range.to_owned()),
        (
            format!("{OCTOBER}&sort=longest&cursor=ignored"),
            format!("{api_range}&sort=longest"),
        ),
        (
            format!("{OCTOBER}&campaign_id=none"),
            format!("{api_range}&attributed=false"),
        ),
        (
            format!("{OCTOBER}&campaign_id={campaign}"),
            format!("{api_range}&campaign_id={campaign}"),
        ),
    ] {
        let response = browser.get(&format!("/calls.csv?{console}")).await;
        assert_eq!(response.status().as_u16(), 200, "{console}");
        let headers = response.headers().clone();
        assert_eq!(
            headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("text/csv; charset=utf-8")
        );
        assert!(headers
            .get("content-disposition")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("attachment")));
        assert_eq!(
            headers.get("cache-control").and_then(|v| v.to_str().ok()),
            Some("no-store")
        );
        let csv = response.text().await.unwrap();
        assert_eq!(csv, api_csv(api).await, "{console}");
    }
    let all = browser
        .get(&format!("/calls.csv?{OCTOBER}"))
        .await
        .text()
        .await
        .unwrap();
    let lines: Vec<&str> = all.split_terminator("\r\n").collect();
    assert_eq!(lines.len(), 4, "a header and the three calls: {all:?}");
    // Spreadsheets keep the phone as text rather than running it as a formula.
    assert!(all.contains(",'+14155550132,"), "{all}");
    assert!(!all.contains(",+1"), "{all}");

    // Without a session: the sign-in page, never the data.
    let anonymous = ConsoleClient::new(&app);
    let response = anonymous.get(&format!("/calls.csv?{OCTOBER}")).await;
    assert_eq!(response.status().as_u16(), 303);
    assert_eq!(location(&response), Some("/signin"));
    // Bad filters are the list's error page.
    let response = browser
        .get("/calls.csv?from=2025-10-08&to=2025-10-01")
        .await;
    assert_eq!(response.status().as_u16(), 400);
}

#[tokio::test]
async fn a_bad_status_filter_or_sort_is_the_console_s_error_page_with_the_api_s_message() {
    let app = spawn_app().await;
    let tenant = app.create_tenant().await;
    let mut browser = ConsoleClient::new(&app);
    browser.sign_in(&tenant.api_key).await;
    for (param, value) in [
        ("status", "bogus"),
        ("lifecycle_status", "no_answer"),
        ("sort", "loudest"),
    ] {
        let (status, api) = app
            .get(&tenant, &format!("/v1/calls?{param}={value}"))
            .await;
        assert_eq!(status, 400, "{api}");
        let message = api["error"]["message"].as_str().unwrap().to_owned();
        for path in ["/calls", "/calls.csv"] {
            let (status, html) = browser.page(&format!("{path}?{param}={value}")).await;
            assert_eq!(status, 400, "{path}?{param}={value}: {html}");
            assert!(html.contains("Cannot show this page"), "{html}");
            let escaped = message.replace('`', "&#96;").replace('\'', "&#39;");
            assert!(
                html.contains(&message) || html.contains(&escaped),
                "{path}: the API's words `{message}`: {html}"
            );
        }
    }
    // The pickers' values are the ones the filter takes.
    let (status, html) = browser.page("/calls?status=in_progress").await;
    assert_eq!(status, 200);
    assert!(html.contains(r#"value="in_progress" selected"#), "{html}");
}
