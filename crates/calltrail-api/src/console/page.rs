//! The page shell every console page shares (head, navigation, sign-out form), the security
//! headers of every console answer, and [`PageError`]: the API's error table rendered as a page.

use actix_web::body::BoxBody;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, HttpResponseBuilder, ResponseError};
use maud::{html, Markup, DOCTYPE};

use super::assets;
use super::session::{self, Session};
use crate::error::ApiError;

/// The Content-Security-Policy of every console answer: only our own script, style and images;
/// no inline script or style (no `unsafe-inline`, no hashes needed: the pages have none), no
/// framing, forms post only to us.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; \
     style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; \
     frame-ancestors 'none'; base-uri 'none'";

/// The sections of the navigation bar.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Nav {
    /// `/`
    Dashboard,
    /// `/calls`
    Calls,
    /// `/unattributed`
    Unattributed,
    /// `/campaigns`
    Campaigns,
    /// `/contacts`
    Contacts,
    /// `/credits`
    Credits,
    /// Pages outside the navigation (sign-in, errors).
    None,
}

const NAV: [(Nav, &str, &str); 6] = [
    (Nav::Dashboard, "/", "Dashboard"),
    (Nav::Calls, "/calls", "Calls"),
    (Nav::Unattributed, "/unattributed", "Unattributed"),
    (Nav::Campaigns, "/campaigns", "Campaigns"),
    (Nav::Contacts, "/contacts", "Contacts"),
    (Nav::Credits, "/credits", "Credits"),
];

/// A page of a signed-in user: navigation, sign-out, then `body`.
pub fn page(session: &Session, nav: Nav, title: &str, body: Markup) -> HttpResponse {
    respond(StatusCode::OK, shell(Some(session), nav, title, body))
}

/// The whole document.
pub fn shell(session: Option<&Session>, nav: Nav, title: &str, body: Markup) -> Markup {
    html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta name="viewport" content="width=device-width, initial-scale=1";
                title { (title) " · calltrail" }
                link rel="stylesheet" href=(assets::path(assets::STYLE));
                link rel="icon" href=(assets::path(assets::ICON)) type="image/svg+xml";
                script src=(assets::path(assets::SCRIPT)) defer {}
            }
            body {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href="/" { "calltrail" }
                    @if let Some(session) = session {
                        nav aria-label="Main" {
                            ul {
                                @for (item, href, label) in NAV {
                                    li {
                                        @if item == nav {
                                            a href=(href) aria-current="page" { (label) }
                                        } @else {
                                            a href=(href) { (label) }
                                        }
                                    }
                                }
                            }
                        }
                        form.signout method="post" action="/signout" {
                            input type="hidden" name="csrf" value=(session.csrf());
                            button type="submit" { "Sign out" }
                        }
                    }
                }
                main id="main" tabindex="-1" {
                    (body)
                }
                footer.bottom {
                    p { "All dates and times are UTC." }
                }
            }
        }
    }
}

/// An HTML answer with the console's security headers.
pub fn respond(status: StatusCode, markup: Markup) -> HttpResponse {
    let mut response = HttpResponse::build(status);
    secure(&mut response);
    response
        .content_type("text/html; charset=utf-8")
        .body(markup.into_string())
}

/// Adds the console's security headers. Pages hold a tenant's data: never cached, never framed,
/// no referrer sent along (list URLs carry filters such as phone numbers).
pub fn secure(response: &mut HttpResponseBuilder) {
    response
        .insert_header((
            header::CONTENT_SECURITY_POLICY,
            HeaderValue::from_static(CONTENT_SECURITY_POLICY),
        ))
        .insert_header((
            header::X_CONTENT_TYPE_OPTIONS,
            HeaderValue::from_static("nosniff"),
        ))
        .insert_header((header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY")))
        .insert_header((
            header::REFERRER_POLICY,
            HeaderValue::from_static("no-referrer"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")));
}

/// A 303 to `location` (after a form post, or to the sign-in page).
pub fn see_other(location: &str) -> HttpResponseBuilder {
    let mut response = HttpResponse::SeeOther();
    secure(&mut response);
    response.insert_header((header::LOCATION, location.to_owned()));
    response
}

/// Why a console page could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum PageError {
    /// No live session: the browser is sent to the sign-in page (a stale cookie is cleared).
    #[error("sign-in required")]
    SignIn {
        /// Whether the request carried a session cookie that is no longer valid.
        stale_cookie: bool,
    },
    /// A form came without the right CSRF token.
    #[error("invalid or missing CSRF token")]
    Csrf,
    /// A form that cannot be done as sent (nothing picked); the message says what to do.
    #[error("{0}")]
    Invalid(&'static str),
    /// Anything the JSON API could answer: rendered with its status and message.
    #[error(transparent)]
    Api(#[from] ApiError),
}

impl ResponseError for PageError {
    fn status_code(&self) -> StatusCode {
        match self {
            PageError::SignIn { .. } => StatusCode::SEE_OTHER,
            PageError::Csrf => StatusCode::FORBIDDEN,
            PageError::Invalid(_) => StatusCode::BAD_REQUEST,
            PageError::Api(err) => err.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        match self {
            PageError::SignIn { stale_cookie } => {
                let mut response = see_other("/signin");
                if *stale_cookie {
                    response.cookie(session::removal_cookie());
                }
                response.finish()
            }
            PageError::Csrf => error_page(
                StatusCode::FORBIDDEN,
                "Form expired",
                "This form was not issued for your session (it may be from an older page). \
                 Go back, reload the page and try again.",
            ),
            PageError::Invalid(message) => error_page(
                StatusCode::BAD_REQUEST,
                "Nothing was changed",
                &format!("{message} Go back and try again."),
            ),
            PageError::Api(err) => {
                err.log_cause();
                let (_, status, message) = err.row();
                let title = match status {
                    StatusCode::NOT_FOUND => "Not found",
                    StatusCode::SERVICE_UNAVAILABLE => "Temporarily unavailable",
                    s if s.is_client_error() => "Cannot show this page",
                    _ => "Something went wrong",
                };
                let message = match err {
                    ApiError::NotFound | ApiError::RouteNotFound => {
                        "There is nothing at this address in your account."
                    }
                    _ => &message,
                };
                error_page(status, title, message)
            }
        }
    }
}

/// A page that only says what went wrong, with a way back.
pub fn error_page(status: StatusCode, title: &str, message: &str) -> HttpResponse {
    let body = html! {
        h1 { (title) }
        p { (message) }
        p { a href="/" { "Back to the dashboard" } }
    };
    respond(status, shell(None, Nav::None, title, body))
}

/// The HTML 404 of a path no route matches (for browsers; API clients keep the JSON one).
pub fn not_found() -> HttpResponse {
    PageError::Api(ApiError::RouteNotFound).error_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_policy_allows_nothing_inline_and_nothing_foreign() {
        for directive in [
            "default-src 'none'",
            "script-src 'self'",
            "style-src 'self'",
            "frame-ancestors 'none'",
            "form-action 'self'",
        ] {
            assert!(CONTENT_SECURITY_POLICY.contains(directive), "{directive}");
        }
        assert!(!CONTENT_SECURITY_POLICY.contains("unsafe"));
        assert!(!CONTENT_SECURITY_POLICY.contains("http"));
    }

    #[test]
    fn a_missing_session_is_a_redirect_to_sign_in() {
        let response = PageError::SignIn { stale_cookie: true }.error_response();
        assert_eq!(response.status(), StatusCode::SEE_OTHER);
        assert_eq!(
            response
                .headers()
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok()),
            Some("/signin")
        );
        let cleared = response
            .headers()
            .get(header::SET_COOKIE)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default();
        assert!(cleared.contains("Max-Age=0"), "{cleared}");
    }

    #[test]
    fn api_errors_keep_their_status_on_the_page() {
        let response = PageError::Api(ApiError::NotFound).error_response();
        assert_eq!(response.status(), StatusCode::NOT_FOUND);
        assert!(response
            .headers()
            .contains_key(header::CONTENT_SECURITY_POLICY));
    }
}
