//! Console sessions: sign in with an API key, exchanged for a random session id (stored hashed
//! by `calltrail_projections::sessions`) held in an `HttpOnly; SameSite=Strict` cookie, `Secure`
//! when the request came over TLS or through a proxy saying `X-Forwarded-Proto: https`.
//!
//! CSRF: every form of a signed-in page carries a token derived from the session id
//! (sha256 of it with a label), so it needs no storage and dies with the session. The sign-in
//! form, which has no session yet, uses a double-submit token: a random value both in a
//! short-lived cookie and in the form.

use std::future::Future;
use std::pin::Pin;

use actix_web::cookie::{time, Cookie, SameSite};
use actix_web::http::StatusCode;
use actix_web::{web, FromRequest, HttpRequest, HttpResponse};
use chrono::TimeDelta;
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;
use uuid::Uuid;

use super::page::{respond, see_other, shell, Nav, PageError};
use crate::error::ApiError;
use crate::AppState;

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "calltrail_session";
/// The sign-in form's double-submit cookie.
pub const SIGN_IN_COOKIE: &str = "calltrail_signin";
/// How long a session lasts at most (absolute, however active).
pub const SESSION_LIFETIME: TimeDelta = TimeDelta::hours(12);
/// How long a sign-in form stays valid.
const SIGN_IN_FORM_SECONDS: i64 = 3600;

/// A signed-in console user.
pub struct Session {
    tenant: Uuid,
    /// The secret session id (the cookie's value): never logged, never rendered.
    id: String,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Session")
            .field("tenant", &self.tenant)
            .finish_non_exhaustive()
    }
}

impl Session {
    /// The tenant this session reads as.
    pub fn tenant(&self) -> Uuid {
        self.tenant
    }

    /// The CSRF token every form of this session carries.
    pub fn csrf(&self) -> String {
        csrf_token(&self.id)
    }

    /// Refuses a form whose token is not this session's.
    pub fn check_csrf(&self, token: Option<&str>) -> Result<(), PageError> {
        match token {
            Some(token) if same(token, &self.csrf()) => Ok(()),
            _ => Err(PageError::Csrf),
        }
    }
}

impl FromRequest for Session {
    type Error = PageError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let id = req.cookie(SESSION_COOKIE).map(|c| c.value().to_owned());
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let Some(id) = id.filter(|id| !id.is_empty()) else {
                return Err(PageError::SignIn {
                    stale_cookie: false,
                });
            };
            let Some(state) = state else {
                return Err(PageError::SignIn {
                    stale_cookie: false,
                });
            };
            match session_user(&state, &id).await? {
                Some(tenant) => Ok(Session { tenant, id }),
                None => Err(PageError::SignIn { stale_cookie: true }),
            }
        })
    }
}

/// The user of a live session. Always asks the primary database: a session must end the
/// moment it is revoked, and must work the moment it starts.
async fn session_user(state: &AppState, id: &str) -> Result<Option<Uuid>, ApiError> {
    let store = state.store().clone();
    let id = id.to_owned();
    state
        .on_db_runtime(async move { store.tenancy().console_session_user(&id).await })
        .await?
        .map_err(ApiError::from_store)
}

/// The sign-in form's fields.
#[derive(Debug, Default, Deserialize)]
pub struct SignInForm {
    /// The API key (`ct_live_…`).
    #[serde(default)]
    api_key: Option<String>,
    /// The double-submit token.
    #[serde(default)]
    csrf: Option<String>,
}

/// A form that only carries the CSRF token (sign-out).
#[derive(Debug, Default, Deserialize)]
pub struct CsrfForm {
    /// The session's CSRF token.
    #[serde(default)]
    pub csrf: Option<String>,
}

/// `GET /signin`: the form (a signed-in browser goes to the dashboard instead).
pub async fn sign_in_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, PageError> {
    if let Some(id) = req.cookie(SESSION_COOKIE) {
        if session_user(&state, id.value()).await?.is_some() {
            return Ok(see_other("/").finish());
        }
    }
    sign_in_form(&req, StatusCode::OK, None)
}

/// `POST /signin`: exchanges a valid API key for a session.
pub async fn sign_in(
    req: HttpRequest,
    state: web::Data<AppState>,
    form: web::Form<SignInForm>,
) -> Result<HttpResponse, PageError> {
    let expected = req.cookie(SIGN_IN_COOKIE).map(|c| c.value().to_owned());
    let submitted = form.csrf.as_deref().unwrap_or_default();
    if !expected.is_some_and(|expected| !expected.is_empty() && same(submitted, &expected)) {
        return sign_in_form(
            &req,
            StatusCode::FORBIDDEN,
            Some("The sign-in form expired. Please enter your API key again."),
        );
    }
    let key = form.api_key.as_deref().map(str::trim).unwrap_or_default();
    let tenant = if key.is_empty() || key.contains('\0') {
        None
    } else {
        state.tenant_by_api_key(key).await?
    };
    let Some(tenant) = tenant else {
        return sign_in_form(
            &req,
            StatusCode::UNAUTHORIZED,
            Some("That API key is not valid. Check it and try again."),
        );
    };
    let store = state.store().clone();
    let issued = state
        .on_db_runtime(async move {
            store
                .tenancy()
                .start_console_session(tenant, SESSION_LIFETIME)
                .await
        })
        .await?
        .map_err(ApiError::from_store)?;
    tracing::info!(user_id = %tenant, "console session started");
    let secure = is_secure(&req);
    let cookie = Cookie::build(SESSION_COOKIE, issued.id)
        .path("/")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::seconds(SESSION_LIFETIME.num_seconds()))
        .finish();
    Ok(see_other("/")
        .cookie(cookie)
        .cookie(expired(SIGN_IN_COOKIE, "/signin", secure))
        .finish())
}

/// `POST /signout`: ends the session on the server, clears the cookie.
pub async fn sign_out(
    req: HttpRequest,
    state: web::Data<AppState>,
    session: Session,
    form: web::Form<CsrfForm>,
) -> Result<HttpResponse, PageError> {
    session.check_csrf(form.csrf.as_deref())?;
    let store = state.store().clone();
    let id = session.id.clone();
    state
        .on_db_runtime(async move { store.tenancy().revoke_console_session(&id).await })
        .await?
        .map_err(ApiError::from_store)?;
    tracing::info!(user_id = %session.tenant, "console session ended");
    Ok(see_other("/signin")
        .cookie(expired(SESSION_COOKIE, "/", is_secure(&req)))
        .finish())
}

/// The sign-in page with a fresh double-submit token (and a message after a failed attempt).
fn sign_in_form(
    req: &HttpRequest,
    status: StatusCode,
    message: Option<&str>,
) -> Result<HttpResponse, PageError> {
    let token = random_token()?;
    let body = html! {
        section.signin {
            h1 { "Sign in" }
            p { "Sign in with your calltrail API key. The key is sent once and exchanged for a session; it is never stored in your browser." }
            @if let Some(message) = message {
                p.alert role="alert" { (message) }
            }
            form method="post" action="/signin" {
                input type="hidden" name="csrf" value=(token);
                label for="api_key" { "API key" }
                input id="api_key" name="api_key" type="password" required
                    autocomplete="off" spellcheck="false" placeholder="ct_live_…" autofocus;
                button type="submit" { "Sign in" }
            }
        }
    };
    let cookie = Cookie::build(SIGN_IN_COOKIE, token)
        .path("/signin")
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(is_secure(req))
        .max_age(time::Duration::seconds(SIGN_IN_FORM_SECONDS))
        .finish();
    let mut response = respond(status, shell(None, Nav::None, "Sign in", body));
    response
        .add_cookie(&cookie)
        .map_err(|e| PageError::Api(ApiError::Internal(Box::new(e))))?;
    Ok(response)
}

/// A cookie that removes the session cookie (sent with redirects to the sign-in page).
pub fn removal_cookie() -> Cookie<'static> {
    expired(SESSION_COOKIE, "/", false)
}

fn expired(name: &'static str, path: &'static str, secure: bool) -> Cookie<'static> {
    Cookie::build(name, "")
        .path(path)
        .http_only(true)
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::ZERO)
        .finish()
}

/// Whether the browser reached us over HTTPS: TLS on the connection, or a proxy's
/// `X-Forwarded-Proto: https` / `Forwarded: proto=https`.
fn is_secure(req: &HttpRequest) -> bool {
    req.connection_info().scheme().eq_ignore_ascii_case("https")
}

/// The CSRF token of a session id.
fn csrf_token(session_id: &str) -> String {
    let mut hasher = Sha256::new();
    hasher.update(b"calltrail console csrf\0");
    hasher.update(session_id.as_bytes());
    hex::encode(hasher.finalize())
}

/// 32 random bytes as hex.
fn random_token() -> Result<String, PageError> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(|e| {
        PageError::Api(ApiError::Internal(
            format!("the system random number generator failed: {e}").into(),
        ))
    })?;
    Ok(hex::encode(bytes))
}

/// Constant-time equality of two tokens.
fn same(a: &str, b: &str) -> bool {
    a.as_bytes().ct_eq(b.as_bytes()).into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn csrf_tokens_are_per_session_and_do_not_reveal_it() {
        let a = csrf_token("cts_aaaa");
        assert_eq!(a, csrf_token("cts_aaaa"));
        assert_ne!(a, csrf_token("cts_aaab"));
        assert!(!a.contains("aaaa"));
        let session = Session {
            tenant: Uuid::nil(),
            id: "cts_aaaa".into(),
        };
        assert!(session.check_csrf(Some(&a)).is_ok());
        assert!(session.check_csrf(Some("")).is_err());
        assert!(session.check_csrf(None).is_err());
        assert!(!format!("{session:?}").contains("cts_aaaa"));
    }

    #[test]
    fn https_is_recognised_behind_a_proxy() {
        let plain = TestRequest::default().to_http_request();
        assert!(!is_secure(&plain));
        let proxied = TestRequest::default()
            .insert_header(("x-forwarded-proto", "https"))
            .to_http_request();
        assert!(is_secure(&proxied));
    }
}
