//! Signing webhooks as each provider does (docs/CONTRACT.md §5), for tests and the benchmark:
//! the headers a provider would send with a body, for a secret and a signing time.
//!
//! These are written from the providers' descriptions in docs/PROVIDERS.md, independently of
//! the verifiers in `calltrail_core::providers`; the unit tests below pin them to the signatures
//! published in `fixtures/*/README.md`.

use base64::Engine as _;
use hmac::{Hmac, Mac};
use percent_encoding::percent_decode;
use sha2::Sha256;

/// One request header: name and value.
pub type Header = (&'static str, String);

/// A provider, by the name it has in URLs (`bolna`, `vapi`, `elevenlabs`, `twilio`, `retell`).
pub type ProviderName<'a> = &'a str;

fn hmac_sha256_hex(secret: &str, parts: &[&[u8]]) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    for part in parts {
        mac.update(part);
    }
    hex::encode(mac.finalize().into_bytes())
}

/// Vapi's HMAC credential: `x-timestamp` (Unix ms) and `x-signature` = hex
/// HMAC-SHA256(secret, `{x-timestamp}.{body}`).
pub fn vapi_hmac(secret: &str, unix_millis: i64, body: &[u8]) -> Vec<Header> {
    let timestamp = unix_millis.to_string();
    let signature = hmac_sha256_hex(secret, &[timestamp.as_bytes(), b".", body]);
    vec![("x-timestamp", timestamp), ("x-signature", signature)]
}

/// Vapi's shared-secret credential: the secret itself in `X-Vapi-Secret`.
pub fn vapi_shared(secret: &str) -> Vec<Header> {
    vec![("x-vapi-secret", secret.to_owned())]
}

/// `ElevenLabs-Signature: t=<unix s>,v0=<hex HMAC-SHA256(secret, "t.body")>`.
pub fn elevenlabs(secret: &str, unix_seconds: i64, body: &[u8]) -> Vec<Header> {
    let t = unix_seconds.to_string();
    let v0 = hmac_sha256_hex(secret, &[t.as_bytes(), b".", body]);
    vec![("elevenlabs-signature", format!("t={t},v0={v0}"))]
}

/// `x-retell-signature: v=<unix ms>,d=<hex HMAC-SHA256(API key, body + ms)>`.
pub fn retell(secret: &str, unix_millis: i64, body: &[u8]) -> Vec<Header> {
    let v = unix_millis.to_string();
    let d = hmac_sha256_hex(secret, &[body, v.as_bytes()]);
    vec![("x-retell-signature", format!("v={v},d={d}"))]
}

/// `X-Twilio-Signature` = base64 HMAC-SHA1(Auth Token, `url` + every form field's name and
/// value, decoded, sorted by name). `url` is the full URL Twilio called, query included.
pub fn twilio(auth_token: &str, url: &str, form: &[u8]) -> Vec<Header> {
    let mut pairs = form_pairs(form);
    pairs.sort();
    let mut mac =
        Hmac::<sha1::Sha1>::new_from_slice(auth_token.as_bytes()).expect("HMAC takes any key");
    mac.update(url.as_bytes());
    for (name, value) in &pairs {
        mac.update(name);
        mac.update(value);
    }
    let signature = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    vec![("x-twilio-signature", signature)]
}

/// The decoded `name=value` fields of a form body (`+` is a space, then percent-decoding).
fn form_pairs(body: &[u8]) -> Vec<(Vec<u8>, Vec<u8>)> {
    let decode = |raw: &[u8]| -> Vec<u8> {
        let spaced: Vec<u8> = raw
            .iter()
            .map(|b| if *b == b'+' { b' ' } else { *b })
            .collect();
        percent_decode(&spaced).collect()
    };
    body.split(|b| *b == b'&')
        .filter(|field| !field.is_empty())
        .map(|field| match field.iter().position(|b| *b == b'=') {
            Some(i) => (decode(&field[..i]), decode(&field[i + 1..])),
            None => (decode(field), Vec::new()),
        })
        .collect()
}

/// The headers `provider` sends with `body` signed at `unix_millis` under `secret`, plus its
/// content type. Vapi uses its HMAC credential; Twilio needs the full `url` it called; Bolna
/// signs nothing.
pub fn sign(
    provider: ProviderName<'_>,
    secret: &str,
    unix_millis: i64,
    url: &str,
    body: &[u8],
) -> Vec<Header> {
    let mut headers = match provider {
        "vapi" => vapi_hmac(secret, unix_millis, body),
        "elevenlabs" => elevenlabs(secret, unix_millis.div_euclid(1000), body),
        "twilio" => twilio(secret, url, body),
        "retell" => retell(secret, unix_millis, body),
        _ => Vec::new(),
    };
    headers.push(("content-type", content_type(provider).to_owned()));
    headers
}

/// The content type a provider's webhooks carry: a form for Twilio, JSON for the others.
pub fn content_type(provider: ProviderName<'_>) -> &'static str {
    if provider == "twilio" {
        "application/x-www-form-urlencoded"
    } else {
        "application/json"
    }
}

/// Milliseconds since the Unix epoch, now.
pub fn now_millis() -> i64 {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("the clock is after 1970");
    i64::try_from(since.as_millis()).expect("a time in range")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixtures;

    fn value(headers: &[Header], name: &str) -> String {
        headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.clone())
            .unwrap()
    }

    // The signatures of fixtures/vapi/README.md.
    #[test]
    fn vapi_matches_the_fixture_signatures() {
        let secret = "vapi_fixture_3c9e1a7f5b2d4e6081a3c5e7f9b1d2e4";
        let signed = vapi_hmac(
            secret,
            1_759_914_908_512,
            &fixtures::read("vapi/status-update.json"),
        );
        assert_eq!(value(&signed, "x-timestamp"), "1759914908512");
        assert_eq!(
            value(&signed, "x-signature"),
            "555ab5c53f9d5aa643e2c732efa153bab1767790c0679a6d522a025ea1f1b987"
        );
    }

    // fixtures/elevenlabs/README.md.
    #[test]
    fn elevenlabs_matches_the_fixture_signature() {
        let signed = elevenlabs(
            "wsec_fixture_7d1f0c9a2b4e6f8a1c3e5d7f9b0a2c4e",
            1_759_914_946,
            &fixtures::read("elevenlabs/post_call_transcription.json"),
        );
        assert_eq!(
            value(&signed, "elevenlabs-signature"),
            "t=1759914946,v0=2a6515f48c8aa7bd29e5c99e3b78fddb8b4a3a854be61049b787cc2bf5149697"
        );
    }

    // fixtures/retell/README.md and the SDK's published vector.
    #[test]
    fn retell_matches_the_fixture_and_sdk_signatures() {
        let signed = retell(
            "key_fixture_9b2e7d4c1a6f3e8b5d0c2a7f4e1b9d6c",
            1_759_914_908_655,
            &fixtures::read("retell/answered/01-call_started.json"),
        );
        assert_eq!(
            value(&signed, "x-retell-signature"),
            "v=1759914908655,d=2d5f43678a048b4958c9cd671822d033d82e9d00aa4116fc7948a12de5d225cf"
        );
        let sdk = retell(
            "test-api-key",
            1_700_000_000_000,
            br#"{"event":"call_ended"}"#,
        );
        assert_eq!(
            value(&sdk, "x-retell-signature"),
            "v=1700000000000,d=07024cabe7dd8f6d1c6e4a8324ca92c812e6ad4a7ee506c04f7e462e3321823e"
        );
    }

    // fixtures/twilio/README.md and twilio-python's vector.
    #[test]
    fn twilio_matches_the_fixture_and_published_signatures() {
        let url = "https://hooks.example.com/webhooks/twilio/voice-status?tenant=acme";
        let token = "5f0a9c3e7b1d4f62a8c0e4b7d9f1a3c5";
        for (file, expected) in [
            ("twilio/01-ringing.form", "YcCDEMzIpyUHHOY/lRhdcVCNBfM="),
            ("twilio/03-completed.form", "ZJum0oucuW3nrNoQjQCEeMZsRMs="),
        ] {
            let signed = twilio(token, url, &fixtures::read(file));
            assert_eq!(value(&signed, "x-twilio-signature"), expected, "{file}");
        }
        let form = b"CallSid=CA1234567890ABCDE&Caller=%2B14158675309&Digits=1234&From=%2B14158675309&To=%2B18005551212";
        let signed = twilio("12345", "https://mycompany.com/myapp.php?foo=1&bar=2", form);
        assert_eq!(
            value(&signed, "x-twilio-signature"),
            "RSOYDt4T1cUTdK1PDd93/VVr8B8="
        );
    }

    #[test]
    fn sign_adds_the_content_type_and_bolna_signs_nothing() {
        assert_eq!(
            sign("bolna", "s", 0, "", b"{}"),
            [("content-type", "application/json".to_owned())]
        );
        let twilio = sign("twilio", "s", 0, "https://h.example/p", b"a=1");
        assert_eq!(
            value(&twilio, "content-type"),
            "application/x-www-form-urlencoded"
        );
        let eleven = sign("elevenlabs", "s", 1_700_000_000_999, "", b"{}");
        assert!(value(&eleven, "elevenlabs-signature").starts_with("t=1700000000,"));
    }
}
