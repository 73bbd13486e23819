//! Twilio Voice status callbacks (`application/x-www-form-urlencoded`): the `X-Twilio-Signature`
//! check and the normalization of `CallStatus` into a [`CallEvent`] (CONTRACT §5,
//! docs/PROVIDERS.md §4).
//!
//! The signature is base64 HMAC-SHA1, keyed with the account's Auth Token, over the URL Twilio
//! called followed by every form field's name and value (decoded, sorted by name). The URL is
//! `CALLTRAIL_PUBLIC_URL` + path + query, tried with and without the default port as Twilio's own
//! validator does. A request whose URL carries `bodySHA256` (Twilio's JSON-body webhooks) is
//! signed over the URL alone, and the body must hash to that value. There is no timestamp to check.
//!
//! What the log keeps (`events.payload`) is the form's fields, decoded, in received order:
//! `{"form":[[name,value],…]}` — enough to verify and parse the request again later.
//!
//! Only `CallSid` and `CallStatus` are required; every other field is lenient.

use std::borrow::Cow;

use chrono::{DateTime, Utc};
use percent_encoding::percent_decode;
use sha2::{Digest as _, Sha256};
use subtle::ConstantTimeEq as _;

use super::lenient::{non_blank, owned_non_blank as owned};
use super::signature::{self, HmacSha1, Macs, SHA1_LEN, SHA256_LEN};
use super::Stamp;
use super::{
    BodyVerifier, Parsed, PayloadError, ProviderEvent, ProviderSecret, SignatureError,
    VerifyRequest, WebhookProvider,
};
use crate::event::{CallEvent, Ending, LeadType, Provider};
use crate::lifecycle::LifecycleStatus;
use crate::phone::PhoneNumber;

/// The signature header.
pub const SIGNATURE_HEADER: &str = "X-Twilio-Signature";

/// Twilio's status callbacks: HMAC-SHA1 over the URL and the form.
#[derive(Debug, Clone, Copy, Default)]
pub struct Twilio;

impl WebhookProvider for Twilio {
    fn provider(&self) -> Provider {
        Provider::Twilio
    }

    fn signs_public_url(&self) -> bool {
        true
    }

    fn verifier(
        &self,
        request: &VerifyRequest<'_>,
    ) -> Result<Box<dyn BodyVerifier>, SignatureError> {
        if request.secrets.is_empty() {
            return Err(SignatureError::NotConfigured(Provider::Twilio));
        }
        let url = request
            .public_url
            .ok_or(SignatureError::PublicUrlNotConfigured(Provider::Twilio))?;
        let header = request
            .headers
            .header(SIGNATURE_HEADER)
            .ok_or(SignatureError::Missing(SIGNATURE_HEADER))?;
        let presented =
            signature::decode_base64(header.trim(), SHA1_LEN).ok_or(SignatureError::Malformed {
                header: SIGNATURE_HEADER,
                problem: "it is not the base64 of an HMAC-SHA1 (28 characters)",
            })?;
        let body = match query_value(url, "bodySHA256") {
            Some(hash) => Body::Hashed {
                hasher: Sha256::new(),
                expected: signature::decode_hex(hash, SHA256_LEN),
            },
            None => Body::Form(Vec::new()),
        };
        Ok(Box::new(FormVerifier {
            urls: url_variants(url),
            secrets: request.secrets.to_vec(),
            presented,
            body,
        }))
    }

    fn parse(&self, body: &[u8], received_at: DateTime<Utc>) -> Result<Parsed, PayloadError> {
        let fields = decode_form(body)?;
        let field = |name: &str| {
            fields
                .iter()
                .find(|(n, _)| n == name)
                .and_then(|(_, v)| non_blank(Some(v)))
        };
        let call_sid = field("CallSid").ok_or(PayloadError::MissingField("CallSid"))?;
        let call_status = field("CallStatus").ok_or(PayloadError::MissingField("CallStatus"))?;
        let direction = field("Direction");
        let (phone, agent, lead_type) = match direction {
            Some("inbound") => (field("From"), field("To"), Some(LeadType::Inbound)),
            Some(d) if d.starts_with("outbound") => {
                (field("To"), field("From"), Some(LeadType::Outbound))
            }
            _ => (None, None, None),
        };
        let status = status(call_status);
        let event = CallEvent {
            provider: Provider::Twilio,
            execution_id: call_sid.to_owned(),
            ending: ending(&status, field("AnsweredBy")),
            status,
            occurred_at: received_at,
            call_created_at: None,
            // The business's own number, as registered with `add-agent --external-id +E164`.
            agent_id: agent
                .map(|a| PhoneNumber::parse(a).map_or_else(|_| a.to_owned(), String::from)),
            phone_number: phone.and_then(|p| PhoneNumber::parse(p).ok()),
            lead_type,
            conversation_seconds: field("CallDuration")
                .and_then(|d| d.parse::<f64>().ok())
                .filter(|d| d.is_finite() && *d >= 0.0),
            hangup_by: None,
            hangup_reason: None,
            hangup_provider_code: field("SipResponseCode").and_then(|c| c.parse().ok()),
            recording_url: owned(field("RecordingUrl")),
            transcript: None,
            contact_name: None,
            contact_company: None,
            contact_email: None,
            batch_id: None,
            anomalies: Vec::new(),
            // Status callbacks carry no price (Twilio reports it on the REST call only).
            cost: None,
        };
        let mut event = event;
        let sent_at = match field("Timestamp").map(str::trim) {
            None | Some("") => Stamp::Absent,
            Some(t) => DateTime::parse_from_rfc2822(t)
                .map_or(Stamp::Unreadable, |t| Stamp::At(t.with_timezone(&Utc))),
        };
        if let Some(at) = sent_at.noted(&mut event) {
            event.occurred_at = at;
        }
        let payload = serde_json::to_string(&StoredForm { form: &fields })
            .map_err(|e| PayloadError::MalformedForm(e.to_string()))?;
        Ok(Parsed::Event(Box::new(ProviderEvent {
            event_type: call_status.to_owned(),
            event,
            payload,
        })))
    }
}

/// What `events.payload` keeps of a callback: its fields, decoded, in received order.
#[derive(serde::Serialize)]
struct StoredForm<'a> {
    form: &'a [(String, String)],
}

/// `CallStatus`: `queued`/`initiated` → `initiated`, Twilio's other statuses are Bolna's words
/// already; a status Twilio adds later reads as in Bolna's vocabulary when it is a word of it,
/// else timeline only.
fn status(call_status: &str) -> LifecycleStatus {
    match call_status {
        "queued" | "initiated" => LifecycleStatus::Initiated,
        other => LifecycleStatus::parse(other),
    }
}

/// How the call ended: a missed or failed `CallStatus` says it; else answering-machine
/// detection's `AnsweredBy` `machine_*` (or `fax`) is a voicemail.
fn ending(status: &LifecycleStatus, answered_by: Option<&str>) -> Option<Ending> {
    Ending::of_status(status).or_else(|| {
        let answered_by = answered_by?.trim();
        (answered_by.starts_with("machine") || answered_by == "fax").then_some(Ending::Voicemail)
    })
}

/// Checks the signature once the body is read: a form is buffered (bounded by the intake's
/// body limit) since its fields are signed sorted; a hashed body is only hashed.
struct FormVerifier {
    urls: Vec<String>,
    secrets: Vec<ProviderSecret>,
    presented: Vec<u8>,
    body: Body,
}

/// What the signature covers besides the URL.
enum Body {
    /// The form's fields (status callbacks).
    Form(Vec<u8>),
    /// Nothing: the URL's `bodySHA256` stands for the body, which must hash to it.
    Hashed {
        hasher: Sha256,
        expected: Option<Vec<u8>>,
    },
}

impl BodyVerifier for FormVerifier {
    fn update(&mut self, chunk: &[u8]) {
        match &mut self.body {
            Body::Form(body) => body.extend_from_slice(chunk),
            Body::Hashed { hasher, .. } => hasher.update(chunk),
        }
    }

    fn finish(self: Box<Self>) -> Result<(), SignatureError> {
        let (mut pairs, body_matches) = match self.body {
            Body::Form(body) => (form_pairs(&body), true),
            Body::Hashed { hasher, expected } => {
                let digest = hasher.finalize();
                let matches = expected.is_some_and(|e| bool::from(digest.as_slice().ct_eq(&e)));
                (Vec::new(), matches)
            }
        };
        // Sorted by name (then value, as Twilio's validator orders repeated names), exact
        // duplicates once.
        pairs.sort();
        pairs.dedup();
        let presented = [self.presented];
        let mut matched = false;
        for url in &self.urls {
            let mut macs = Macs::<HmacSha1>::new(&self.secrets);
            macs.update(url.as_bytes());
            for (name, value) in &pairs {
                macs.update(name);
                macs.update(value);
            }
            matched |= macs.matches_any(&presented);
        }
        if matched && body_matches {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// The raw value of the first `name=` parameter in a URL's query.
fn query_value<'u>(url: &'u str, name: &str) -> Option<&'u str> {
    let (_, query) = url.split_once('?')?;
    let query = query.split('#').next().unwrap_or_default();
    query
        .split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(key, _)| *key == name)
        .map(|(_, value)| value)
}

/// The form's fields as decoded bytes, in received order: `&`-separated, `name=value` (a
/// field without `=` has an empty value), `+` is a space, then percent-decoding.
fn form_pairs(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    body.split(|b| *b == b'&')
        .filter(|field| !field.is_empty())
        .map(|field| {
            let (name, value) = match field.iter().position(|b| *b == b'=') {
                Some(i) => (&field[..i], &field[i + 1..]),
                None => (field, &field[field.len()..]),
            };
            (form_decode(name), form_decode(value))
        })
        .collect()
}

fn form_decode(raw: &[u8]) -> Vec<u8> {
    let spaced: Cow<'_, [u8]> = if raw.contains(&b'+') {
        Cow::Owned(
            raw.iter()
                .map(|b| if *b == b'+' { b' ' } else { *b })
                .collect(),
        )
    } else {
        Cow::Borrowed(raw)
    };
    percent_decode(&spaced).collect()
}

/// The form's fields as text, in received order; a field that is not UTF-8 once decoded is refused.
fn decode_form(body: &[u8]) -> Result<Vec<(String, String)>, PayloadError> {
    form_pairs(body)
        .into_iter()
        .map(|(name, value)| {
            let text = |bytes: Vec<u8>| {
                String::from_utf8(bytes).map_err(|_| {
                    PayloadError::MalformedForm("a field is not UTF-8 text once decoded".into())
                })
            };
            Ok((text(name)?, text(value)?))
        })
        .collect()
}

/// The URL as given, plus the same without its port when it has one, or with the scheme's
/// default port when it has none (Twilio's validator tries both).
fn url_variants(url: &str) -> Vec<String> {
    let mut variants = vec![url.to_owned()];
    let Some((scheme, rest)) = url.split_once("://") else {
        return variants;
    };
    let authority_len = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_len);
    let host_start = authority.rfind('@').map_or(0, |at| at + 1);
    let (userinfo, host_port) = authority.split_at(host_start);
    let port_start = match host_port.rfind(':') {
        // An IPv6 literal's colons are inside its brackets.
        Some(colon) if !host_port[colon..].contains(']') => Some(colon),
        _ => None,
    };
    let variant = match port_start {
        Some(colon) => {
            let port = &host_port[colon + 1..];
            if port.is_empty() || !port.bytes().all(|b| b.is_ascii_digit()) {
                return variants;
            }
            format!("{scheme}://{userinfo}{}{tail}", &host_port[..colon])
        }
        None => {
            let default = match scheme.to_ascii_lowercase().as_str() {
                "https" => 443,
                "http" => 80,
                _ => return variants,
            };
            format!("{scheme}://{userinfo}{host_port}:{default}{tail}")
        }
    };
    variants.push(variant);
    variants
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_tried_with_and_without_the_default_port() {
        let cases = [
            ("https://h.example/p?q=1", "https://h.example:443/p?q=1"),
            ("https://h.example:443/p", "https://h.example/p"),
            ("http://h.example", "http://h.example:80"),
            ("https://h.example:8443/p", "https://h.example/p"),
            ("https://u:pw@h.example/p", "https://u:pw@h.example:443/p"),
            ("https://[::1]:8080/p", "https://[::1]/p"),
            ("https://[::1]/p", "https://[::1]:443/p"),
            ("HTTPS://h.example#f", "HTTPS://h.example:443#f"),
        ];
        for (url, other) in cases {
            assert_eq!(url_variants(url), [url, other], "{url}");
        }
        for odd in [
            "no scheme",
            "ftp://h.example/p",
            "https://h.example:/p",
            "https://h:x/p",
            "",
        ] {
            assert_eq!(url_variants(odd), [odd], "{odd}");
        }
    }

    #[test]
    fn query_values_are_found_by_name() {
        let url = "https://h.example/p?a=1&bodySHA256=ab&c#bodySHA256=no";
        assert_eq!(query_value(url, "bodySHA256"), Some("ab"));
        assert_eq!(query_value(url, "a"), Some("1"));
        assert_eq!(query_value(url, "c"), None);
        assert_eq!(
            query_value("https://h.example/p#bodySHA256=x", "bodySHA256"),
            None
        );
    }

    #[test]
    fn forms_decode_plus_and_percent_and_keep_their_order() {
        let pairs = form_pairs(b"b=%2B1+415&a=&flag&&c=%zz%41");
        let text: Vec<(String, String)> = pairs
            .into_iter()
            .map(|(n, v)| {
                (
                    String::from_utf8(n).unwrap_or_default(),
                    String::from_utf8(v).unwrap_or_default(),
                )
            })
            .collect();
        let expected = [("b", "+1 415"), ("a", ""), ("flag", ""), ("c", "%zzA")];
        let expected: Vec<(String, String)> = expected
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect();
        assert_eq!(text, expected);
        assert!(matches!(
            decode_form(b"a=%ff"),
            Err(PayloadError::MalformedForm(_))
        ));
    }
}
