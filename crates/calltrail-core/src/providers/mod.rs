//! Providers: one module per voice-AI provider, each implementing [`WebhookProvider`] (check a
//! request's signature over its raw bytes, parse the body, normalize it into a [`CallEvent`] and
//! its event key), all listed once in [`Provider`] and [`Provider::webhooks`].
//!
//! Adding a provider: write `providers/<name>.rs` with a unit struct implementing
//! [`WebhookProvider`], then add one variant to [`Provider`] and one line to each of
//! [`Provider::ALL`], [`Provider::as_str`] and [`Provider::webhooks`] below. Nothing else in the
//! workspace names a provider: the intake, the routes, the OpenAPI document and the admin
//! commands all go through this table.
//!
//! Modules:
//! - [`bolna`]: Bolna execution payloads (webhooks and the executions API share one shape; no signature).
//! - [`vapi`]: Vapi server messages; the shared secret or the HMAC credential.
//! - [`elevenlabs`]: ElevenLabs post-call webhooks; `ElevenLabs-Signature`, large audio streamed.
//! - [`twilio`]: Twilio status callbacks (forms); `X-Twilio-Signature` over the public URL and the fields.
//! - [`retell`]: Retell webhooks; `x-retell-signature`, `dial_*` endings.
//! - `lenient` (private): serde helpers that turn an odd optional value into `None` instead of an error.
//! - `signature` (private): streaming MACs over every configured secret, constant-time
//!   comparisons, the two-sided timestamp window.

pub mod bolna;
pub mod elevenlabs;
mod lenient;
pub use lenient::Stamp;
pub mod retell;
mod signature;
pub mod twilio;
pub mod vapi;

use chrono::{DateTime, Utc};

use crate::event::CallEvent;

/// A voice-AI provider that sends webhooks.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    /// Bolna (bolna.ai).
    Bolna,
    /// Vapi (vapi.ai).
    Vapi,
    /// ElevenLabs Agents (elevenlabs.io).
    ElevenLabs,
    /// Twilio Voice status callbacks (twilio.com).
    Twilio,
    /// Retell AI (retellai.com).
    Retell,
}

impl Provider {
    /// Every provider calltrail serves, in the order they are documented.
    pub const ALL: &'static [Provider] = &[
        Provider::Bolna,
        Provider::Vapi,
        Provider::ElevenLabs,
        Provider::Twilio,
        Provider::Retell,
    ];

    /// The provider's name as used in URLs, the CLI and the event log.
    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Bolna => "bolna",
            Provider::Vapi => "vapi",
            Provider::ElevenLabs => "elevenlabs",
            Provider::Twilio => "twilio",
            Provider::Retell => "retell",
        }
    }

    /// The provider's webhook implementation.
    pub fn webhooks(self) -> &'static dyn WebhookProvider {
        match self {
            Provider::Bolna => &bolna::Bolna,
            Provider::Vapi => &vapi::Vapi,
            Provider::ElevenLabs => &elevenlabs::ElevenLabs,
            Provider::Twilio => &twilio::Twilio,
            Provider::Retell => &retell::Retell,
        }
    }

    /// The names of every provider, comma-separated (for error messages and help texts).
    pub fn names() -> String {
        let names: Vec<&str> = Self::ALL.iter().map(|p| p.as_str()).collect();
        names.join(", ")
    }
}

impl std::fmt::Display for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Provider {
    type Err = UnknownProvider;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .iter()
            .copied()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProvider(s.to_owned()))
    }
}

/// A provider name calltrail does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider `{0}`")]
pub struct UnknownProvider(pub String);

/// What one provider's webhooks need: a signature check over the raw bytes, then parsing and
/// normalization. Implementations are pure (no I/O, no clock: the time comes in).
pub trait WebhookProvider: Sync {
    /// Which provider this is.
    fn provider(&self) -> Provider;

    /// Starts checking a request's signature. Fails at once when the headers or the
    /// configuration already settle it (no secret configured, no or malformed signature
    /// header, a timestamp outside the tolerance); otherwise the returned verifier is fed the
    /// body as it arrives and gives the verdict at the end. Providers without signatures
    /// (Bolna) return a verifier that accepts everything.
    fn verifier(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError>;

    /// Whether the provider signs its webhooks, so it needs a secret (`admin
    /// set-provider-secret`) and is fail-closed without one. Only Bolna does not.
    fn signs_webhooks(&self) -> bool {
        true
    }

    /// Whether the signature covers the URL the provider called, so `CALLTRAIL_PUBLIC_URL` is
    /// required once a tenant has this provider's secret (Twilio).
    fn signs_public_url(&self) -> bool {
        false
    }

    /// Whether a body larger than the webhook limit may still be a message that is answered
    /// without being stored (ElevenLabs `post_call_audio`), so it must be streamed through the
    /// verifier up to the audio limit instead of being refused at once.
    fn streams_large_bodies(&self) -> bool {
        false
    }

    /// For a body too large to keep whole: whether its first bytes (at most the webhook limit)
    /// show a message that is answered without storing. `None` means "no" or "cannot tell".
    fn ignorable_prefix(&self, _prefix: &[u8]) -> Option<Ignored> {
        None
    }

    /// Parses a verified body into the event to record, or a message to ignore.
    /// `received_at` is the event time when the payload carries none.
    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError>;
}

/// Case-insensitive read access to a request's headers (implemented by the HTTP layer).
pub trait Headers {
    /// The first value of the header `name` (ASCII case-insensitive) when it is visible text.
    fn header(&self, name: &str) -> Option<&str>;
}

impl Headers for [(&str, &str)] {
    fn header(&self, name: &str) -> Option<&str> {
        self.iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| *v)
    }
}

/// A reference to headers reads the same headers, so `&&[(name, value)]` can be a `&dyn Headers`.
impl<H: Headers + ?Sized> Headers for &H {
    fn header(&self, name: &str) -> Option<&str> {
        (**self).header(name)
    }
}

/// A tenant's secret for one provider, decrypted. Never printed: `Debug` shows only its length.
#[derive(Clone, PartialEq, Eq)]
pub struct ProviderSecret(Vec<u8>);

impl ProviderSecret {
    /// Wraps secret bytes.
    pub fn new(bytes: impl Into<Vec<u8>>) -> Self {
        Self(bytes.into())
    }

    /// The secret bytes, for a MAC key or a constant-time comparison.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for ProviderSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "ProviderSecret({} bytes)", self.0.len())
    }
}

/// Everything a signature check may use besides the body.
pub struct VerifyRequest<'a> {
    /// The request headers.
    pub headers: &'a dyn Headers,
    /// The tenant's currently valid secrets for this provider (the newest first; a rotated-out
    /// one while it is still valid). Empty when none is configured.
    pub secrets: &'a [ProviderSecret],
    /// The full URL the provider called: `CALLTRAIL_PUBLIC_URL` + path + query exactly as
    /// received (Twilio signs it). `None` when no public URL is configured.
    pub public_url: Option<&'a str>,
    /// The receive time, for timestamp tolerances.
    pub now: DateTime<Utc>,
}

/// Checks a body chunk by chunk, so a large body is never held whole.
pub trait BodyVerifier: Send {
    /// Feeds the next bytes of the body.
    fn update(&mut self, chunk: &[u8]);
    /// The verdict once the whole body has been fed.
    fn finish(self: Box<Self>) -> Result<(), SignatureError>;
}

/// A [`BodyVerifier`] for providers without signatures: accepts every body.
#[derive(Debug, Clone, Copy, Default)]
pub struct Unsigned;

impl BodyVerifier for Unsigned {
    fn update(&mut self, _chunk: &[u8]) {}
    fn finish(self: Box<Self>) -> Result<(), SignatureError> {
        Ok(())
    }
}

/// Why a request's signature is refused (answered 401, kept in the rejected log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// The tenant has no secret for this provider: the provider is fail-closed.
    #[error("no {0} signing secret is configured for this tenant: set one with `calltrail admin set-provider-secret`")]
    NotConfigured(Provider),
    /// The signature is checked against a URL, and `CALLTRAIL_PUBLIC_URL` is not set.
    #[error("{0} signs the public URL it calls, and CALLTRAIL_PUBLIC_URL is not set")]
    PublicUrlNotConfigured(Provider),
    /// The signature header is absent.
    #[error("the `{0}` header is missing")]
    Missing(&'static str),
    /// The signature header is present but not of the provider's form.
    #[error("the `{header}` header is malformed: {problem}")]
    Malformed {
        /// The header.
        header: &'static str,
        /// What is wrong with it.
        problem: &'static str,
    },
    /// The signed timestamp is outside the accepted window.
    #[error("the signature's timestamp is {seconds} s from the receive time, outside the accepted window of {tolerance} s")]
    Expired {
        /// How far the timestamp is from now, in seconds (negative: in the future).
        seconds: i64,
        /// The window in the past, in seconds (the future is limited to 5 min).
        tolerance: i64,
    },
    /// No configured secret produces this signature.
    #[error("the signature does not match the body")]
    Mismatch,
}

impl SignatureError {
    /// The stable code of CONTRACT §5: `signature_not_configured` or `invalid_signature`.
    pub fn code(&self) -> &'static str {
        match self {
            SignatureError::NotConfigured(_) | SignatureError::PublicUrlNotConfigured(_) => {
                "signature_not_configured"
            }
            _ => "invalid_signature",
        }
    }

    /// Whether other secrets could have passed this request: a secret missing or not matching
    /// (not a malformed, missing or expired signature, nor a missing public URL).
    pub fn may_pass_with_other_secrets(&self) -> bool {
        matches!(
            self,
            SignatureError::NotConfigured(_) | SignatureError::Mismatch
        )
    }
}

/// What a verified body says.
#[derive(Debug, Clone, PartialEq)]
pub enum Parsed {
    /// A call event to append.
    Event(Box<ProviderEvent>),
    /// A message that says nothing about the call's lifecycle: answered 200, not stored.
    Ignored(Ignored),
}

/// A message answered without being stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ignored {
    /// The provider's message type (`transcript`, `post_call_audio`, …).
    pub message_type: String,
    /// The call it is about, when the message names one.
    pub execution_id: Option<String>,
}

/// One webhook, parsed and normalized, ready to append.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderEvent {
    /// The event type of the key and the timeline: the provider's own status or message type
    /// exactly as sent (`completed`, `end-of-call-report`, `CallStatus`, …).
    pub event_type: String,
    /// The normalized event; its `execution_id` is the key's call id.
    pub event: CallEvent,
    /// What `events.payload` keeps, as JSON text: the body itself for JSON providers, the form
    /// fields in received order for form-encoded ones.
    pub payload: String,
}

/// Why a webhook body is not a usable provider payload (answered with 400 and kept in the rejected log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON at all (the parser's message says where it broke).
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is not a valid form (`application/x-www-form-urlencoded`).
    #[error("the body is not a valid form: {0}")]
    MalformedForm(String),
    /// The body is JSON, but its top level is not an object.
    #[error("the body is valid JSON but not a JSON object")]
    NotAnObject,
    /// A required field is absent, null, empty or of the wrong type.
    #[error(
        "the payload has no usable `{0}` field (it is absent, null, empty or of the wrong type)"
    )]
    MissingField(&'static str),
    /// The body is not UTF-8 text.
    #[error("the body is not UTF-8 text")]
    NotUtf8,
}

impl PayloadError {
    /// A stable snake_case code for API error bodies and the rejected-webhook log.
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::MalformedJson(_) => "malformed_json",
            PayloadError::MalformedForm(_) => "malformed_form",
            PayloadError::NotAnObject => "payload_not_an_object",
            PayloadError::MissingField(_) => "missing_field",
            PayloadError::NotUtf8 => "not_utf8",
        }
    }
}

/// The body as JSON text for `events.payload`: UTF-8, without a leading byte-order mark.
pub fn json_text(body: &[u8]) -> Result<String, PayloadError> {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    std::str::from_utf8(body)
        .map(str::to_owned)
        .map_err(|_| PayloadError::NotUtf8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_through_the_table() {
        for provider in Provider::ALL {
            assert_eq!(provider.as_str().parse::<Provider>(), Ok(*provider));
            assert_eq!(provider.webhooks().provider(), *provider);
        }
        assert_eq!(
            "acme".parse::<Provider>(),
            Err(UnknownProvider("acme".into()))
        );
    }

    #[test]
    fn the_table_lists_every_provider() {
        // The match has no wildcard: a new variant fails to compile here until it is in `every`,
        // and then this fails until it is in `Provider::ALL`.
        let every = [
            Provider::Bolna,
            Provider::Vapi,
            Provider::ElevenLabs,
            Provider::Twilio,
            Provider::Retell,
        ];
        for provider in every {
            match provider {
                Provider::Bolna
                | Provider::Vapi
                | Provider::ElevenLabs
                | Provider::Twilio
                | Provider::Retell => {}
            }
        }
        assert_eq!(Provider::ALL, every);
    }

    #[test]
    fn every_provider_but_bolna_signs_and_only_twilio_signs_the_url() {
        for provider in Provider::ALL {
            let webhooks = provider.webhooks();
            assert_eq!(webhooks.signs_webhooks(), *provider != Provider::Bolna);
            assert_eq!(webhooks.signs_public_url(), *provider == Provider::Twilio);
            // A provider that signs is fail-closed without a secret.
            let request = VerifyRequest {
                headers: &&[][..],
                secrets: &[],
                public_url: Some("https://calltrail.example.com/v1/webhooks/x/t"),
                now: chrono::Utc::now(),
            };
            let verdict = webhooks.verifier(&request).and_then(|v| v.finish());
            assert_eq!(verdict.is_err(), webhooks.signs_webhooks(), "{provider}");
        }
    }

    #[test]
    fn secrets_never_show_in_debug_output() {
        let secret = ProviderSecret::new(b"hunter2".to_vec());
        assert_eq!(format!("{secret:?}"), "ProviderSecret(7 bytes)");
    }

    #[test]
    fn header_slices_are_case_insensitive() {
        let headers: &[(&str, &str)] = &[("X-Vapi-Secret", "s"), ("content-type", "a")];
        assert_eq!(headers.header("x-vapi-secret"), Some("s"));
        assert_eq!(headers.header("Content-Type"), Some("a"));
        assert_eq!(headers.header("x-missing"), None);
    }
}
