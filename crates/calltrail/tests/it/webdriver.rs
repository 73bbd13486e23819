//! A small W3C WebDriver client over reqwest, driving Debian's headless Chromium through
//! chromedriver. Written here rather than taken from fantoccini: fantoccini pulls in the
//! `webdriver` crate (MPL-2.0, outside deny.toml's licences) and with it icu_segmenter and
//! some twenty more crates to build on CI's 2 cores, for the dozen commands these tests use
//! (each one request of the W3C protocol, https://www.w3.org/TR/webdriver2/).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine as _;
use serde_json::{json, Value};

/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
const CHROMIUM: &str = "/usr/bin/chromium";

/// A browser session (chromedriver plus the headless Chromium it started).
pub struct Browser {
    http: reqwest::Client,
    url: String,
    driver: Child,
    profile: PathBuf,
}

/// An element of the current page.
#[derive(Debug, Clone)]
pub struct Element(String);

impl Browser {
    /// Starts chromedriver and a fresh headless Chromium of `width`×`height`. `None` when
    /// chromedriver is not installed and this is not CI (`scripts/test` installs it; on CI its
    /// absence fails the test).
    pub async fn start(width: u32, height: u32) -> Option<Self> {
        if !Path::new(CHROMEDRIVER).exists() {
            let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
            assert!(
                !ci,
                "{CHROMEDRIVER} is missing: scripts/test installs chromium-driver"
            );
            eprintln!("skipped: {CHROMEDRIVER} is not installed (./scripts/test installs it)");
            return None;
        }
        let port = crate::helpers::free_port();
        let driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let profile = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("chromium-{}", uuid::Uuid::new_v4().simple()));
        let mut browser = Self {
            http: reqwest::Client::new(),
            url: format!("http://127.0.0.1:{port}"),
            driver,
            profile,
        };
        browser.wait_for_driver().await;
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": CHROMIUM,
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    format!("--user-data-dir={}", browser.profile.display()),
                    format!("--window-size={width},{height}"),
                ],
            },
            "goog:loggingPrefs": {"browser": "ALL"},
        }}});
        let session = browser.command("POST", "/session", capabilities).await;
        let id = session["sessionId"]
            .as_str()
            .expect("a session id")
            .to_owned();
        browser.url = format!("{}/session/{id}", browser.url);
        Some(browser)
    }

    async fn wait_for_driver(&self) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = self.http.get(format!("{}/status", self.url)).send().await;
            if ready.is_ok_and(|r| r.status().is_success()) {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "chromedriver did not start"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// One WebDriver command (on the session once there is one); returns its `value`. A WebDriver
    /// error fails the test with the driver's message.
    async fn command(&self, method: &str, path: &str, body: Value) -> Value {
        let url = format!("{}{path}", self.url);
        let request = match method {
            "GET" => self.http.get(url),
            "DELETE" => self.http.delete(url),
            _ => self.http.post(url).json(&body),
        };
        let response = request.send().await.expect("chromedriver answers");
        let status = response.status();
        let answer: Value = response.json().await.expect("a JSON answer");
        assert!(status.is_success(), "WebDriver {method} {path}: {answer}");
        answer["value"].clone()
    }

    /// Opens `url`.
    pub async fn goto(&self, url: &str) {
        self.command("POST", "/url", json!({ "url": url })).await;
    }

    /// The current URL.
    pub async fn current_url(&self) -> String {
        self.command("GET", "/url", Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Waits (up to 10 s) until the current URL is `url`: a click that submits a form may
    /// return before the navigation it starts has finished.
    pub async fn wait_for_url(&self, url: &str) {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let current = self.current_url().await;
            if current == url {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "still at {current}, expected {url}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }

    /// The first element matching `css` (fails when there is none).
    pub async fn find(&self, css: &str) -> Element {
        let found = self
            .command(
                "POST",
                "/element",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        let id = found[ELEMENT].as_str();
        Element(
            id.unwrap_or_else(|| panic!("no element id for {css}: {found}"))
                .to_owned(),
        )
    }

    /// Every element matching `css`.
    pub async fn find_all(&self, css: &str) -> Vec<Element> {
        let found = self
            .command(
                "POST",
                "/elements",
                json!({"using": "css selector", "value": css}),
            )
            .await;
        found
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|e| e[ELEMENT].as_str().map(|id| Element(id.to_owned())))
            .collect()
    }

    /// The rendered text of the first element matching `css`.
    pub async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        self.text_of(&element).await
    }

    /// The rendered text of an element.
    pub async fn text_of(&self, element: &Element) -> String {
        let path = format!("/element/{}/text", element.0);
        self.command("GET", &path, Value::Null)
            .await
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Clicks the first element matching `css`.
    pub async fn click(&self, css: &str) {
        let element = self.find(css).await;
        let path = format!("/element/{}/click", element.0);
        self.command("POST", &path, json!({})).await;
    }

    /// Types `text` into the first element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        let path = format!("/element/{}/value", element.0);
        self.command("POST", &path, json!({ "text": text })).await;
    }

    /// Presses keys (W3C key values, e.g. `\u{E004}` for Tab) on whatever has focus.
    pub async fn press(&self, keys: &str) {
        let mut actions = Vec::new();
        for key in keys.chars() {
            actions.push(json!({"type": "keyDown", "value": key.to_string()}));
            actions.push(json!({"type": "keyUp", "value": key.to_string()}));
        }
        let body = json!({"actions": [{"type": "key", "id": "keyboard", "actions": actions}]});
        self.command("POST", "/actions", body).await;
    }

    /// Runs `script` in the page and returns what it returns.
    pub async fn execute(&self, script: &str, args: Value) -> Value {
        self.command(
            "POST",
            "/execute/sync",
            json!({"script": script, "args": args}),
        )
        .await
    }

    /// Every cookie of the current page, HttpOnly ones included.
    pub async fn cookies(&self) -> Vec<Value> {
        let cookies = self.command("GET", "/cookie", Value::Null).await;
        cookies.as_array().cloned().unwrap_or_default()
    }

    /// Resizes the window.
    pub async fn resize(&self, width: u32, height: u32) {
        self.command(
            "POST",
            "/window/rect",
            json!({"width": width, "height": height}),
        )
        .await;
    }

    /// The browser console entries since the last call (chromedriver's log endpoint).
    pub async fn console_log(&self) -> Vec<Value> {
        let log = self
            .command("POST", "/se/log", json!({"type": "browser"}))
            .await;
        log.as_array().cloned().unwrap_or_default()
    }

    /// Writes a PNG of the viewport to `path` (best effort: used when a test has failed).
    pub async fn screenshot_to(&self, path: &Path) {
        let Ok(response) = self
            .http
            .get(format!("{}/screenshot", self.url))
            .send()
            .await
        else {
            return;
        };
        let Ok(answer) = response.json::<Value>().await else {
            return;
        };
        let Some(png) = answer["value"]
            .as_str()
            .and_then(|b64| base64::engine::general_purpose::STANDARD.decode(b64).ok())
        else {
            return;
        };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        if std::fs::write(path, png).is_ok() {
            eprintln!("screenshot: {}", path.display());
        }
    }

    /// Ends the session (Chromium exits), then chromedriver.
    pub async fn quit(mut self) {
        let _ = self.http.delete(self.url.clone()).send().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        let _ = std::fs::remove_dir_all(&self.profile);
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
    }
}

/// Where failure screenshots go: `target/browser-screenshots/`.
pub fn screenshot_dir() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .map_or_else(|| PathBuf::from("target"), Path::to_path_buf)
        .join("browser-screenshots")
}
