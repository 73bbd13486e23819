//! The intake's signature, ignored-message and large-body paths, through a test-only signing
//! provider (so they do not depend on any real provider's scheme).

use std::sync::atomic::{AtomicUsize, Ordering};

use calltrail_core::providers::bolna::Bolna;
use calltrail_core::providers::{
    BodyVerifier, Ignored, Parsed, PayloadError, SignatureError, VerifyRequest,
};

use super::*;

const URL: &str = "https://calltrail.example.com/v1/webhooks/bolna/tok-a";
const SIGNATURE: &str = "x-test-signature";

/// Signs with `x-test-signature: <secret>:<body length>:<public URL>`, streams large bodies,
/// ignores `{"type":"transcript"…}` and (when too large to keep) `{"type":"audio"…}`; parses
/// everything else as Bolna does. Remembers the longest prefix it was shown.
#[derive(Default)]
struct Signed {
    longest_prefix: AtomicUsize,
}

/// Counts the body's bytes; valid when the count and the header's secret and URL all match.
struct Counting {
    expected: usize,
    seen: usize,
    signed_right: bool,
}

impl BodyVerifier for Counting {
    fn update(&mut self, chunk: &[u8]) {
        self.seen += chunk.len();
    }
    fn finish(self: Box<Self>) -> Result<(), SignatureError> {
        if self.signed_right && self.seen == self.expected {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

impl WebhookProvider for Signed {
    fn provider(&self) -> Provider {
        Provider::Bolna
    }

    fn verifier(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError> {
        if request.secrets.is_empty() {
            return Err(SignatureError::NotConfigured(self.provider()));
        }
        let url = request
            .public_url
            .ok_or(SignatureError::PublicUrlNotConfigured(self.provider()))?;
        let header = request
            .headers
            .header(SIGNATURE)
            .ok_or(SignatureError::Missing(SIGNATURE))?;
        let malformed = SignatureError::Malformed {
            header: SIGNATURE,
            problem: "expected secret:length:url",
        };
        let (secret, rest) = header.split_once(':').ok_or(malformed.clone())?;
        let (length, signed_url) = rest.split_once(':').ok_or(malformed.clone())?;
        let expected = length.parse().map_err(|_| malformed)?;
        let known = request
            .secrets
            .iter()
            .any(|s| s.expose() == secret.as_bytes());
        Ok(Box::new(Counting {
            expected,
            seen: 0,
            signed_right: known && signed_url == url,
        }))
    }

    fn streams_large_bodies(&self) -> bool {
        true
    }

    fn ignorable_prefix(&self, prefix: &[u8]) -> Option<Ignored> {
        self.longest_prefix
            .fetch_max(prefix.len(), Ordering::Relaxed);
        prefix.starts_with(br#"{"type":"audio""#).then(|| Ignored {
            message_type: "audio".into(),
            execution_id: None,
        })
    }

    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError> {
        if body.starts_with(br#"{"type":"transcript""#) {
            return Ok(Parsed::Ignored(Ignored {
                message_type: "transcript".into(),
                execution_id: Some("exec-9".into()),
            }));
        }
        Bolna.parse(body, received_at)
    }
}

fn signed_headers(secret: &str, body: &[u8]) -> HeaderMap {
    let signature = format!("{secret}:{}:{URL}", body.len());
    header_map(&[
        ("content-type", "application/json"),
        (SIGNATURE, &signature),
    ])
}

fn fake_with_secrets(secrets: &[&str]) -> (Fake, Uuid) {
    let (mut fake, tenant) = Fake::new();
    fake.secrets = secrets
        .iter()
        .map(|s| ProviderSecret::new(s.as_bytes().to_vec()))
        .collect();
    (fake, tenant)
}

const RINGING: &[u8] = br#"{"id":"exec-1","status":"ringing"}"#;

#[tokio::test]
async fn without_a_secret_or_a_public_url_a_signing_provider_is_fail_closed() {
    let provider = Signed::default();
    let (fake, tenant) = Fake::new();
    let result = Request::new(&provider, signed_headers("s1", RINGING))
        .send(&fake, RINGING)
        .await;
    assert_eq!(status_of(&result), Some(StatusCode::UNAUTHORIZED));
    let err = result.err();
    assert_eq!(
        err.as_ref().map(ApiError::code),
        Some("signature_not_configured")
    );
    let message = err.map(|e| e.message()).unwrap_or_default();
    assert!(message.contains("set-provider-secret"), "{message}");

    let (with_secret, _) = fake_with_secrets(&["s1"]);
    let no_url = Request {
        public_url: None,
        ..Request::new(&provider, signed_headers("s1", RINGING))
    };
    let result = no_url.send(&with_secret, RINGING).await;
    assert_eq!(
        result.err().map(|e| e.code()),
        Some("signature_not_configured")
    );

    let rejected = fake.rejected.borrow();
    assert_eq!(rejected.len(), 1);
    assert_eq!(rejected[0].status_code, 401);
    assert_eq!(rejected[0].tenant_id, Some(tenant));
    assert_eq!(rejected[0].reason, message);
    assert_eq!(rejected[0].body, RINGING);
    assert!(fake.appended.borrow().is_empty());
}

#[tokio::test]
async fn a_missing_malformed_or_wrong_signature_is_refused_before_parsing() {
    let provider = Signed::default();
    let (fake, _) = fake_with_secrets(&["s1"]);
    // Not a payload at all: a 401 rather than a 400 shows the parser never saw it.
    let body = b"{not json";
    let cases = [
        ("missing", header_map(&[])),
        ("malformed", header_map(&[(SIGNATURE, "s1")])),
        ("wrong secret", signed_headers("s2", body)),
        ("another length", signed_headers("s1", b"{not json!")),
    ];
    for (what, headers) in cases {
        let result = Request::new(&provider, headers).send(&fake, body).await;
        assert_eq!(
            result.err().map(|e| e.code()),
            Some("invalid_signature"),
            "{what}"
        );
    }
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected.len(), 4);
    assert!(rejected
        .iter()
        .all(|r| r.status_code == 401 && r.body == body));
    assert!(
        rejected[0].reason.contains(SIGNATURE),
        "{}",
        rejected[0].reason
    );
    assert_eq!(rejected[3].reason, "The signature does not match the body.");
    // The signature header itself is never stored.
    assert!(rejected.iter().all(|r| r.headers.get(SIGNATURE).is_none()));
    assert!(fake.appended.borrow().is_empty());
}

#[tokio::test]
async fn the_current_and_a_rotated_out_secret_both_verify() {
    let provider = Signed::default();
    let (fake, _) = fake_with_secrets(&["new", "old"]);
    let completed = br#"{"id":"exec-1","status":"completed"}"#;
    for (secret, body) in [("old", RINGING), ("new", &completed[..])] {
        let request = Request {
            chunk: 7,
            ..Request::new(&provider, signed_headers(secret, body))
        };
        let answer = receipt(request.send(&fake, body).await);
        assert_eq!(answer.ok().map(|r| r.status), Some("accepted".to_owned()));
    }
    let appended = fake.appended.borrow();
    assert_eq!(appended.len(), 2);
    assert_eq!(
        appended[0].payload.as_deref().map(str::as_bytes),
        Some(RINGING)
    );
    assert!(fake.rejected.borrow().is_empty());
}

#[tokio::test]
async fn a_secret_set_after_the_cache_was_filled_verifies_at_once() {
    let provider = Signed::default();
    let secrets = |names: &[&str]| {
        names
            .iter()
            .map(|s| ProviderSecret::new(s.as_bytes().to_vec()))
            .collect::<Vec<_>>()
    };
    // Cached: no secret, or only the old one; stored by now: the new one.
    for cached in [&[][..], &["old"][..]] {
        let (mut fake, _) = fake_with_secrets(cached);
        fake.fresher_secrets = Some(secrets(&["new", "old"]));
        let answer = receipt(
            Request::new(&provider, signed_headers("new", RINGING))
                .send(&fake, RINGING)
                .await,
        );
        assert_eq!(answer.map(|r| r.status).ok().as_deref(), Some("accepted"));
        assert_eq!(*fake.rereads.borrow(), 1);
    }

    // Unchanged secrets: the refusal stands. A malformed or missing signature cannot pass
    // with other secrets, so it costs no re-read.
    let (mut fake, _) = fake_with_secrets(&["old"]);
    fake.fresher_secrets = Some(secrets(&["old"]));
    let wrong = Request::new(&provider, signed_headers("guess", RINGING))
        .send(&fake, RINGING)
        .await;
    assert_eq!(wrong.err().map(|e| e.code()), Some("invalid_signature"));
    assert_eq!(*fake.rereads.borrow(), 1);
    let malformed = Request::new(&provider, header_map(&[(SIGNATURE, "nonsense")]))
        .send(&fake, RINGING)
        .await;
    assert_eq!(malformed.err().map(|e| e.code()), Some("invalid_signature"));
    assert_eq!(*fake.rereads.borrow(), 1);
    assert_eq!(fake.rejected.borrow().len(), 2);
}

#[tokio::test]
async fn a_message_about_nothing_is_answered_ignored_and_not_stored() {
    let provider = Signed::default();
    let (fake, _) = fake_with_secrets(&["s1"]);
    let body = br#"{"type":"transcript","text":"hello"}"#;
    let answer = Request::new(&provider, signed_headers("s1", body))
        .send(&fake, body)
        .await;
    assert_eq!(
        ignored(&answer),
        Some(&WebhookIgnored {
            status: "ignored".into(),
            message_type: "transcript".into(),
            execution_id: Some("exec-9".into()),
        })
    );
    assert!(fake.appended.borrow().is_empty());
    assert!(fake.rejected.borrow().is_empty());

    // Ignored only once verified.
    let answer = Request::new(&provider, signed_headers("s2", body))
        .send(&fake, body)
        .await;
    assert_eq!(answer.err().map(|e| e.code()), Some("invalid_signature"));
    assert_eq!(fake.rejected.borrow().len(), 1);
}

/// A JSON body of about `size` bytes starting with `{"type":"<kind>"`.
fn large(kind: &str, size: usize) -> Vec<u8> {
    let mut body = format!(r#"{{"type":"{kind}","data":""#).into_bytes();
    body.resize(size.saturating_sub(2), b'a');
    body.extend_from_slice(br#""}"#);
    body
}

#[tokio::test]
async fn a_large_ignorable_body_goes_through_the_check_without_being_kept() {
    let provider = Signed::default();
    let (fake, _) = fake_with_secrets(&["s1"]);
    // 60 KB against a 1 KB webhook limit (the audio limit is 64 KB): verified over every byte
    // (the signature covers the length), yet never more than 1 KB held.
    let body = large("audio", 60_000);
    let request = Request {
        limits: limits(1024),
        chunk: 4096,
        ..Request::new(&provider, signed_headers("s1", &body))
    };
    let answer = request.send(&fake, &body).await;
    assert_eq!(
        ignored(&answer).map(|i| i.message_type.as_str()),
        Some("audio")
    );
    assert_eq!(provider.longest_prefix.load(Ordering::Relaxed), 1024);
    assert!(fake.appended.borrow().is_empty());
    assert!(fake.rejected.borrow().is_empty());
}

#[tokio::test]
async fn any_other_oversized_body_answers_413_and_keeps_only_the_prefix() {
    let provider = Signed::default();
    let (fake, _) = fake_with_secrets(&["s1"]);
    let audio = large("audio", 60_000);
    let event = large("event", 60_000);
    let huge = large("audio", 70_000);
    let cases = [
        ("not ignorable", &event, signed_headers("s1", &event), 1024),
        ("not verified", &audio, signed_headers("s2", &audio), 1024),
        (
            "past the audio limit",
            &huge,
            signed_headers("s1", &huge),
            65_536,
        ),
    ];
    for (what, body, headers, limit) in cases {
        let request = Request {
            limits: limits(1024),
            chunk: 4096,
            ..Request::new(&provider, headers)
        };
        let result = request.send(&fake, body).await;
        assert_eq!(
            status_of(&result),
            Some(StatusCode::PAYLOAD_TOO_LARGE),
            "{what}"
        );
        let message = result.err().map(|e| e.message()).unwrap_or_default();
        assert!(
            message.contains(&format!(" {limit} bytes")),
            "{what}: {message}"
        );
    }
    let rejected = fake.rejected.borrow();
    assert_eq!(rejected.len(), 3);
    assert!(rejected
        .iter()
        .all(|r| r.status_code == 413 && r.body.len() == 1024));
    assert!(fake.appended.borrow().is_empty());
}

#[tokio::test]
async fn a_request_refused_from_its_headers_is_not_read_past_the_webhook_limit() {
    let provider = Signed::default();
    let (fake, _) = Fake::new();
    let body = large("audio", 60_000);
    let request = Request {
        limits: limits(1024),
        ..Request::new(&provider, signed_headers("s1", &body))
    };
    let result = request.send(&fake, &body).await;
    let message = result.err().map(|e| e.message()).unwrap_or_default();
    assert!(message.contains(" 1024 bytes"), "{message}");
    assert_eq!(provider.longest_prefix.load(Ordering::Relaxed), 0);
}
