//! Signature building blocks shared by the providers: one streaming MAC per configured secret,
//! constant-time comparisons, the two-sided timestamp window, and header parsing.
//!
//! Every comparison of a computed value with a presented one runs in constant time (`subtle`),
//! and every configured secret is tried (rotation keeps two valid for a while), so neither the
//! time taken nor the order of the secrets says which part of a signature was wrong.

use base64::Engine as _;
use chrono::{DateTime, Utc};
use hmac::digest::KeyInit;
use hmac::{Hmac, Mac};
use sha2::{Digest as _, Sha256};
use subtle::{Choice, ConstantTimeEq as _};

use super::{BodyVerifier, ProviderSecret, SignatureError};

/// HMAC-SHA256 (Vapi, ElevenLabs, Retell; Standard Webhooks).
pub(crate) type HmacSha256 = Hmac<Sha256>;
/// HMAC-SHA1 (Twilio).
pub(crate) type HmacSha1 = Hmac<sha1::Sha1>;

/// How far in the future a signed timestamp may be, for every provider (CONTRACT §5).
pub(crate) const MAX_FUTURE_SECONDS: i64 = 5 * 60;

/// One running MAC per configured secret, all fed the same bytes.
pub(crate) struct Macs<M> {
    macs: Vec<M>,
}

impl<M: Mac + KeyInit + Clone> Macs<M> {
    /// A MAC keyed with each secret (HMAC takes a key of any length, so none is left out).
    pub(crate) fn new(secrets: &[ProviderSecret]) -> Self {
        let macs = secrets
            .iter()
            .filter_map(|secret| <M as Mac>::new_from_slice(secret.expose()).ok())
            .collect();
        Self { macs }
    }

    /// Feeds the same bytes to every MAC.
    pub(crate) fn update(&mut self, bytes: &[u8]) {
        for mac in &mut self.macs {
            mac.update(bytes);
        }
    }

    /// Whether some secret's tag equals some presented tag. Every pair is compared, each in
    /// constant time.
    pub(crate) fn matches_any(self, presented: &[Vec<u8>]) -> bool {
        let mut matched = Choice::from(0);
        for mac in self.macs {
            let tag = mac.finalize().into_bytes();
            for candidate in presented {
                matched |= tag.as_slice().ct_eq(candidate);
            }
        }
        matched.into()
    }
}

/// A [`BodyVerifier`] for the HMAC schemes: the signed prefix (timestamp and separator) is fed
/// before the body, the signed suffix (Retell's timestamp) after it.
pub(crate) struct MacVerifier<M> {
    macs: Macs<M>,
    suffix: Vec<u8>,
    presented: Vec<Vec<u8>>,
}

impl<M: Mac + KeyInit + Clone> MacVerifier<M> {
    /// A verifier of `prefix ‖ body ‖ suffix` against the presented tags (already decoded).
    pub(crate) fn new(
        secrets: &[ProviderSecret],
        prefix: &[u8],
        suffix: Vec<u8>,
        presented: Vec<Vec<u8>>,
    ) -> Self {
        let mut macs = Macs::new(secrets);
        macs.update(prefix);
        Self {
            macs,
            suffix,
            presented,
        }
    }
}

impl<M: Mac + KeyInit + Clone + Send> BodyVerifier for MacVerifier<M> {
    fn update(&mut self, chunk: &[u8]) {
        self.macs.update(chunk);
    }

    fn finish(self: Box<Self>) -> Result<(), SignatureError> {
        let MacVerifier {
            mut macs,
            suffix,
            presented,
        } = *self;
        macs.update(&suffix);
        if macs.matches_any(&presented) {
            Ok(())
        } else {
            Err(SignatureError::Mismatch)
        }
    }
}

/// Whether `presented` equals one of the secrets. Both sides are hashed first, so the
/// comparison takes the same time whatever the lengths; every secret is compared.
pub(crate) fn secret_matches(presented: &[u8], secrets: &[ProviderSecret]) -> bool {
    let presented = Sha256::digest(presented);
    let mut matched = Choice::from(0);
    for secret in secrets {
        matched |= Sha256::digest(secret.expose()).ct_eq(&presented);
    }
    matched.into()
}

/// Checks a signed time (Unix milliseconds) against the receive time: not older than
/// `tolerance_seconds`, not more than [`MAX_FUTURE_SECONDS`] ahead. Both bounds are inclusive.
pub(crate) fn check_window(
    signed_at_millis: i64,
    now: DateTime<Utc>,
    tolerance_seconds: i64,
) -> Result<(), SignatureError> {
    let age_millis = now.timestamp_millis().saturating_sub(signed_at_millis);
    let too_old = age_millis > tolerance_seconds.saturating_mul(1000);
    let too_new = age_millis < MAX_FUTURE_SECONDS.saturating_mul(-1000);
    if too_old || too_new {
        return Err(SignatureError::Expired {
            seconds: age_millis.div_euclid(1000),
            tolerance: tolerance_seconds,
        });
    }
    Ok(())
}

/// A decimal Unix timestamp as sent in a header: ASCII digits only (no sign, no spaces), at most 18.
pub(crate) fn parse_unix(text: &str) -> Option<i64> {
    let digits_only =
        !text.is_empty() && text.len() <= 18 && text.bytes().all(|b| b.is_ascii_digit());
    digits_only.then(|| text.parse().ok()).flatten()
}

/// The `key=value` items of a comma-separated signature header (`t=…,v0=…`), trimmed; items
/// without `=` are skipped.
pub(crate) fn header_items(value: &str) -> impl Iterator<Item = (&str, &str)> {
    value
        .split(',')
        .filter_map(|item| item.split_once('='))
        .map(|(key, value)| (key.trim(), value.trim()))
}

/// Lower- or upper-case hex of exactly `len` bytes.
pub(crate) fn decode_hex(text: &str, len: usize) -> Option<Vec<u8>> {
    hex::decode(text).ok().filter(|bytes| bytes.len() == len)
}

/// Standard (padded) base64 of exactly `len` bytes.
pub(crate) fn decode_base64(text: &str, len: usize) -> Option<Vec<u8>> {
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .ok()
        .filter(|bytes| bytes.len() == len)
}

/// Bytes of an HMAC-SHA256 tag.
pub(crate) const SHA256_LEN: usize = 32;
/// Bytes of an HMAC-SHA1 tag.
pub(crate) const SHA1_LEN: usize = 20;

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use chrono::TimeZone as _;

    use super::*;

    fn secrets(keys: &[&[u8]]) -> Vec<ProviderSecret> {
        keys.iter()
            .map(|k| ProviderSecret::new(k.to_vec()))
            .collect()
    }

    /// A Standard Webhooks symmetric secret (`whsec_` + base64) as HMAC key bytes.
    fn standard_webhooks_key(secret: &str) -> Vec<u8> {
        let encoded = secret.strip_prefix("whsec_").unwrap();
        base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .unwrap()
    }

    /// Verifies a Standard Webhooks `v1,<base64>` signature list with the shared helpers,
    /// feeding the payload in small chunks as the intake does.
    fn standard_webhooks_verify(
        secret: &str,
        id: &str,
        timestamp: &str,
        payload: &str,
        header: &str,
    ) -> bool {
        let presented: Vec<Vec<u8>> = header
            .split(' ')
            .filter_map(|sig| sig.strip_prefix("v1,"))
            .filter_map(|sig| decode_base64(sig, SHA256_LEN))
            .collect();
        let prefix = format!("{id}.{timestamp}.");
        let mut verifier: Box<dyn BodyVerifier> = Box::new(MacVerifier::<HmacSha256>::new(
            &secrets(&[&standard_webhooks_key(secret)]),
            prefix.as_bytes(),
            Vec::new(),
            presented,
        ));
        for chunk in payload.as_bytes().chunks(3) {
            verifier.update(chunk);
        }
        verifier.finish().is_ok()
    }

    // docs/PROVIDERS.md §6, vector 1 (the Standard Webhooks libraries' "sign function works").
    #[test]
    fn standard_webhooks_vector_one() {
        let (secret, id, ts) = (
            "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
            "msg_p5jXN8AQM9LWM0D4loKWxJek",
            "1614265330",
        );
        let payload = r#"{"test": 2432232314}"#;
        let good = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
        let never = "v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc=";
        assert!(standard_webhooks_verify(secret, id, ts, payload, good));
        assert!(!standard_webhooks_verify(secret, id, ts, payload, never));
        // A list mixing invalid entries with one valid one verifies.
        let mixed = format!("v1,Ceo5qEr07ixe2NLpvHk3FH9bwy/WavXrAFQ/9tdO6mc= v2,abc {good}");
        assert!(standard_webhooks_verify(secret, id, ts, payload, &mixed));
        // One byte of the payload changed: no match.
        assert!(!standard_webhooks_verify(
            secret,
            id,
            ts,
            r#"{"test": 2432232315}"#,
            good
        ));
    }

    // docs/PROVIDERS.md §6, vector 2 (the Rust library's `test_sign`).
    #[test]
    fn standard_webhooks_vector_two() {
        assert!(standard_webhooks_verify(
            "whsec_C2FVsBQIhrscChlQIMV+b5sSYspob7oD",
            "msg_27UH4WbU6Z5A5EzD8u03UvzRbpk",
            "1649367553",
            r#"{"email":"test@example.com","username":"test_user"}"#,
            "v1,tZ1I4/hDygAJgO5TYxiSd6Sd0kDW6hPenDe+bTa3Kkw=",
        ));
    }

    #[test]
    fn every_secret_is_tried() {
        let mut mac = <HmacSha256 as Mac>::new_from_slice(b"new").unwrap();
        mac.update(b"body");
        let tag = mac.finalize().into_bytes().to_vec();
        let mut both = Macs::<HmacSha256>::new(&secrets(&[b"old", b"new"]));
        both.update(b"body");
        assert!(both.matches_any(std::slice::from_ref(&tag)));
        let mut old_only = Macs::<HmacSha256>::new(&secrets(&[b"old"]));
        old_only.update(b"body");
        assert!(!old_only.matches_any(&[tag]));
        assert!(!Macs::<HmacSha256>::new(&[]).matches_any(&[vec![0; 32]]));
    }

    #[test]
    fn shared_secrets_compare_exactly() {
        let configured = secrets(&[b"s3cret", b"rotated"]);
        assert!(secret_matches(b"s3cret", &configured));
        assert!(secret_matches(b"rotated", &configured));
        assert!(!secret_matches(b"s3cre", &configured));
        assert!(!secret_matches(b"s3cret ", &configured));
        assert!(!secret_matches(b"", &configured));
        assert!(!secret_matches(b"s3cret", &[]));
    }

    #[test]
    fn the_window_is_two_sided_and_inclusive() {
        let now = Utc.timestamp_millis_opt(1_700_000_000_000).unwrap();
        let at = |offset_ms: i64| 1_700_000_000_000 - offset_ms;
        assert!(check_window(at(0), now, 300).is_ok());
        assert!(check_window(at(300_000), now, 300).is_ok());
        assert_eq!(
            check_window(at(300_001), now, 300),
            Err(SignatureError::Expired {
                seconds: 300,
                tolerance: 300
            })
        );
        assert!(check_window(at(1_800_000), now, 1800).is_ok());
        assert!(check_window(at(-300_000), now, 1800).is_ok());
        assert_eq!(
            check_window(at(-300_001), now, 1800),
            Err(SignatureError::Expired {
                seconds: -301,
                tolerance: 1800
            })
        );
        assert!(check_window(i64::MIN, now, 300).is_err());
        assert!(check_window(i64::MAX, now, 300).is_err());
    }

    #[test]
    fn header_values_parse_strictly() {
        assert_eq!(parse_unix("1700000000"), Some(1_700_000_000));
        for bad in ["", "-1", "+1", " 1", "1.5", "0x10", "9999999999999999999"] {
            assert_eq!(parse_unix(bad), None, "{bad:?}");
        }
        let items: Vec<_> = header_items("t=1, v0=ab ,junk,v0=cd").collect();
        assert_eq!(items, [("t", "1"), ("v0", "ab"), ("v0", "cd")]);
        assert_eq!(decode_hex("00ff", 2), Some(vec![0, 255]));
        assert_eq!(decode_hex("00FF", 2), Some(vec![0, 255]));
        assert_eq!(decode_hex("00f", 2), None);
        assert_eq!(decode_hex("00ff", 3), None);
        assert_eq!(decode_base64("AAE=", 2), Some(vec![0, 1]));
        assert_eq!(decode_base64("AAE", 2), None);
    }
}
