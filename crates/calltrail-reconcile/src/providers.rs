//! Each provider's call API (docs/CONTRACT.md §6, docs/PROVIDERS.md): the request for one call
//! ([`request`]: endpoint and authentication) and its answer as the provider events the
//! webhooks would have produced ([`events`]), each parsed by the provider's own webhook parser
//! (`calltrail_core::providers`), so a reconciled event has the key, `data` and meaning of the
//! webhook it stands for.
//!
//! | provider | request | authentication | events from the call object |
//! |---|---|---|---|
//! | bolna | `GET /executions/{id}` | `Authorization: Bearer K` | the execution itself (webhooks and the API share one shape): its `status` |
//! | vapi | `GET /call/{id}` | `Authorization: Bearer K` | `status-update` of `status`; once `ended`, also the `end-of-call-report` |
//! | retell | `GET /v2/get-call/{id}` | `Authorization: Bearer K` | `call_started` once it connected; `call_ended` once `ended`/`not_connected`/`error`; `call_analyzed` when `call_analysis` is present |
//! | twilio | `GET /2010-04-01/Accounts/{AccountSid}/Calls/{CallSid}.json` | Basic `AccountSid:AuthToken` | the status callback of `status` |
//! | elevenlabs | `GET /v1/convai/conversations/{id}` | `xi-api-key: K` | `post_call_transcription` once `done`; `call_initiation_failure` once `failed` |
//!
//! A call the API shows in a state no webhook reports yet (Retell `registered`, ElevenLabs
//! `initiated`/`in-progress`/`processing`) gives no event.

use base64::Engine as _;
use calltrail_core::providers::{Parsed, ProviderEvent};
use calltrail_core::Provider;
use chrono::{DateTime, Utc};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use serde_json::{json, Map, Value};

use crate::{ApiCredential, Error};

/// What a path segment keeps unencoded (RFC 3986 unreserved characters).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// The provider's own API base URL (`--base-url` replaces it).
pub fn default_base_url(provider: Provider) -> &'static str {
    match provider {
        Provider::Bolna => "https://api.bolna.ai",
        Provider::Vapi => "https://api.vapi.ai",
        Provider::ElevenLabs => "https://api.elevenlabs.io",
        Provider::Twilio => "https://api.twilio.com",
        Provider::Retell => "https://api.retellai.com",
    }
}

/// One GET to make: its URL and authentication header.
#[derive(Clone, PartialEq, Eq)]
pub struct Request {
    /// The full URL.
    pub url: String,
    /// The authentication header's name.
    pub header: &'static str,
    /// Its value (holds the key: never logged).
    pub value: String,
}

impl std::fmt::Debug for Request {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Request")
            .field("url", &self.url)
            .field("header", &self.header)
            .finish_non_exhaustive()
    }
}

/// The request for one call of `provider`.
pub fn request(
    provider: Provider,
    credential: &ApiCredential,
    call_id: &str,
) -> Result<Request, Error> {
    let base = credential
        .base_url()
        .unwrap_or(default_base_url(provider))
        .trim()
        .trim_end_matches('/');
    if !(base.starts_with("http://") || base.starts_with("https://")) {
        return Err(Error::InvalidBaseUrl {
            provider,
            url: base.to_owned(),
        });
    }
    let key = credential.expose().trim();
    if key.is_empty() {
        return Err(Error::InvalidKey {
            provider,
            reason: "it is empty",
        });
    }
    let id = utf8_percent_encode(call_id, SEGMENT);
    let bearer = || format!("Bearer {key}");
    let (path, header, value) = match provider {
        Provider::Bolna => (format!("/executions/{id}"), "authorization", bearer()),
        Provider::Vapi => (format!("/call/{id}"), "authorization", bearer()),
        Provider::Retell => (format!("/v2/get-call/{id}"), "authorization", bearer()),
        Provider::ElevenLabs => (
            format!("/v1/convai/conversations/{id}"),
            "xi-api-key",
            key.to_owned(),
        ),
        Provider::Twilio => {
            let (sid, token) = key
                .split_once(':')
                .filter(|(sid, token)| !sid.is_empty() && !token.is_empty())
                .ok_or(Error::InvalidKey {
                    provider,
                    reason: "a Twilio key is `AccountSid:AuthToken`",
                })?;
            let basic = base64::engine::general_purpose::STANDARD.encode(format!("{sid}:{token}"));
            let sid = utf8_percent_encode(sid, SEGMENT);
            (
                format!("/2010-04-01/Accounts/{sid}/Calls/{id}.json"),
                "authorization",
                format!("Basic {basic}"),
            )
        }
    };
    Ok(Request {
        url: format!("{base}{path}"),
        header,
        value,
    })
}

/// The provider events an API answer for `call_id` stands for; `fetched_at` is the event time
/// where the answer has none. Fails on anything that is not that call's object.
pub fn events(
    provider: Provider,
    call_id: &str,
    body: &[u8],
    fetched_at: DateTime<Utc>,
) -> Result<Vec<ProviderEvent>, Error> {
    let garbage = |reason: String| Error::Garbage { provider, reason };
    let call: Value =
        serde_json::from_slice(body).map_err(|e| garbage(format!("the body is not JSON ({e})")))?;
    let Value::Object(call) = call else {
        return Err(garbage("the body is not a JSON object".to_owned()));
    };
    let bodies = match provider {
        Provider::Bolna => vec![Body::Json(Value::Object(call))],
        Provider::Vapi => vapi(call),
        Provider::Retell => retell(call),
        Provider::ElevenLabs => elevenlabs(call, fetched_at),
        Provider::Twilio => vec![twilio(&call)?],
    };
    let mut events = Vec::with_capacity(bodies.len());
    for body in bodies {
        let bytes = match body {
            Body::Json(value) => value.to_string().into_bytes(),
            Body::Form(text) => text.into_bytes(),
        };
        match provider.webhooks().parse(&bytes, fetched_at) {
            Ok(Parsed::Event(event)) => {
                if event.event.execution_id != call_id {
                    return Err(garbage(format!(
                        "it is about call `{}`, not `{call_id}`",
                        event.event.execution_id
                    )));
                }
                events.push(*event);
            }
            Ok(Parsed::Ignored(_)) => {}
            Err(e) => return Err(garbage(e.to_string())),
        }
    }
    Ok(events)
}

/// A webhook body to hand to the provider's parser.
enum Body {
    Json(Value),
    Form(String),
}

fn text<'a>(object: &'a Map<String, Value>, key: &str) -> Option<&'a str> {
    object
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
}

/// Vapi's Call: `status-update` of its status; an ended call also has its
/// `end-of-call-report` (the report's fields are the Call's own).
fn vapi(call: Map<String, Value>) -> Vec<Body> {
    let status = text(&call, "status").map(str::to_owned);
    let Some(status) = status else {
        return Vec::new();
    };
    let field = |key: &str| call.get(key).cloned().unwrap_or(Value::Null);
    let ended = status == "ended";
    let at = if ended {
        field("endedAt")
    } else {
        field("updatedAt")
    };
    let update = json!({ "message": {
        "type": "status-update",
        "status": status,
        "endedReason": if ended { field("endedReason") } else { Value::Null },
        "timestamp": at,
        "customer": field("customer"),
        "call": Value::Object(call.clone()),
    }});
    let mut bodies = vec![Body::Json(update)];
    if ended {
        bodies.push(Body::Json(json!({ "message": {
            "type": "end-of-call-report",
            "endedReason": field("endedReason"),
            "startedAt": field("startedAt"),
            "endedAt": field("endedAt"),
            "timestamp": field("endedAt"),
            "cost": field("cost"),
            "artifact": field("artifact"),
            "analysis": field("analysis"),
            "customer": field("customer"),
            "call": Value::Object(call.clone()),
        }})));
    }
    bodies
}

/// Retell's call: `call_started` once connected, `call_ended` once over, `call_analyzed` once
/// analysed (a dial failure never started).
fn retell(call: Map<String, Value>) -> Vec<Body> {
    let status = text(&call, "call_status").unwrap_or_default();
    let reason = text(&call, "disconnection_reason").unwrap_or_default();
    let over = matches!(status, "ended" | "not_connected" | "error");
    let connected = status == "ongoing"
        || (over
            && call.get("start_timestamp").is_some_and(|v| !v.is_null())
            && !reason.starts_with("dial_")
            && status != "not_connected");
    let analyzed = over && call.get("call_analysis").is_some_and(Value::is_object);
    let mut names = Vec::new();
    if connected {
        names.push("call_started");
    }
    if over {
        names.push("call_ended");
    }
    if analyzed {
        names.push("call_analyzed");
    }
    names
        .into_iter()
        .map(|event| {
            let mut call = call.clone();
            if event != "call_analyzed" {
                // `call_ended` carries every field but the analysis (docs/PROVIDERS.md §5).
                call.remove("call_analysis");
            }
            Body::Json(json!({ "event": event, "call": Value::Object(call) }))
        })
        .collect()
}

/// ElevenLabs' conversation: the `data` of the post-call webhook.
fn elevenlabs(conversation: Map<String, Value>, fetched_at: DateTime<Utc>) -> Vec<Body> {
    let status = text(&conversation, "status").unwrap_or_default();
    let metadata = conversation.get("metadata").and_then(Value::as_object);
    let number = |key: &str| metadata.and_then(|m| m.get(key)).and_then(Value::as_i64);
    // The webhook is sent when the call is over: its start plus its length, when known.
    let ended_at = match (number("start_time_unix_secs"), number("call_duration_secs")) {
        (Some(start), Some(duration)) => start.saturating_add(duration),
        _ => fetched_at.timestamp(),
    };
    match status {
        "done" => vec![Body::Json(json!({
            "type": "post_call_transcription",
            "event_timestamp": ended_at,
            "data": Value::Object(conversation),
        }))],
        "failed" => {
            let reason = metadata
                .and_then(|m| text(m, "termination_reason"))
                .map(str::to_owned);
            let mut data = conversation.clone();
            data.insert("failure_reason".to_owned(), json!(reason));
            vec![Body::Json(json!({
                "type": "call_initiation_failure",
                "event_timestamp": ended_at,
                "data": Value::Object(data),
            }))]
        }
        _ => Vec::new(),
    }
}

/// Twilio's Call resource (snake_case JSON) as the status callback's form fields.
fn twilio(call: &Map<String, Value>) -> Result<Body, Error> {
    let value = |key: &str| match call.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let status = value("status");
    let mut fields: Vec<(&str, String)> = Vec::new();
    let mut put = |name: &'static str, v: Option<String>| {
        if let Some(v) = v {
            fields.push((name, v));
        }
    };
    put("CallSid", value("sid"));
    put("AccountSid", value("account_sid"));
    put("From", value("from"));
    put("To", value("to"));
    put("Direction", value("direction"));
    put("ApiVersion", value("api_version"));
    put("CallStatus", status.clone());
    if status.as_deref() == Some("completed") {
        put("CallDuration", value("duration"));
    }
    put(
        "Timestamp",
        value("end_time").or_else(|| value("date_updated")),
    );
    serde_urlencoded::to_string(&fields)
        .map(Body::Form)
        .map_err(|e| Error::Garbage {
            provider: Provider::Twilio,
            reason: e.to_string(),
        })
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn key(k: &str) -> ApiCredential {
        ApiCredential::new(k, Some("http://127.0.0.1:9/".to_owned()))
    }

    #[test]
    fn each_provider_is_asked_at_its_endpoint_with_its_authentication() {
        let cases = [
            (
                Provider::Bolna,
                "k",
                "/executions/abc",
                "authorization",
                "Bearer k",
            ),
            (
                Provider::Vapi,
                "k",
                "/call/abc",
                "authorization",
                "Bearer k",
            ),
            (
                Provider::Retell,
                "k",
                "/v2/get-call/abc",
                "authorization",
                "Bearer k",
            ),
            (
                Provider::ElevenLabs,
                "k",
                "/v1/convai/conversations/abc",
                "xi-api-key",
                "k",
            ),
            (
                Provider::Twilio,
                "AC1:tok",
                "/2010-04-01/Accounts/AC1/Calls/abc.json",
                "authorization",
                "Basic QUMxOnRvaw==",
            ),
        ];
        for (provider, k, path, header, value) in cases {
            let r = request(provider, &key(k), "abc").unwrap();
            assert_eq!(r.url, format!("http://127.0.0.1:9{path}"), "{provider}");
            assert_eq!((r.header, r.value.as_str()), (header, value), "{provider}");
        }
    }

    #[test]
    fn a_call_id_cannot_leave_its_path_segment() {
        let r = request(Provider::Vapi, &key("k"), "../admin?x=1#y").unwrap();
        assert_eq!(r.url, "http://127.0.0.1:9/call/..%2Fadmin%3Fx%3D1%23y");
    }

    #[test]
    fn unusable_credentials_are_refused_before_any_request() {
        let err = request(Provider::Twilio, &key("no-colon"), "CA1").unwrap_err();
        assert!(err.to_string().contains("AccountSid:AuthToken"), "{err}");
        let err = request(
            Provider::Bolna,
            &ApiCredential::new("k", Some("ftp://x".to_owned())),
            "a",
        )
        .unwrap_err();
        assert!(matches!(err, Error::InvalidBaseUrl { .. }));
        assert!(format!("{:?}", key("sekrit")).find("sekrit").is_none());
    }

    #[test]
    fn garbage_is_an_error_never_a_panic() {
        for body in [
            &b"<html>"[..],
            b"[]",
            b"{}",
            b"{\"id\":5}",
            b"\xff\xfe",
            b"",
        ] {
            for provider in Provider::ALL {
                // `{}` and friends may be "no event" for a provider that needs a status
                // to say anything; anything else must be a clean error.
                let _ = events(*provider, "abc", body, Utc::now());
            }
        }
        let err = events(
            Provider::Bolna,
            "abc",
            b"{\"id\":\"other\",\"status\":\"completed\"}",
            Utc::now(),
        )
        .unwrap_err();
        assert!(err.to_string().contains("not `abc`"), "{err}");
    }
}
