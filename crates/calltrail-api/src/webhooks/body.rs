//! Reading a webhook body as a stream: every byte goes through the signature check as it
//! arrives, at most the webhook limit is kept, and a provider that streams large messages may
//! send more (checked, then dropped) up to the audio limit.

use std::time::Duration;

use actix_web::web::Bytes;
use calltrail_core::providers::BodyVerifier;
use futures_util::{Stream, StreamExt};

use crate::error::ApiError;

/// Largest capacity reserved up front from a `Content-Length` (the rest grows as bytes arrive).
const MAX_PREALLOCATION: usize = 64 * 1024;

/// How much of a body is read, kept, and for how long.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct BodyLimits {
    /// Bytes kept: the webhook limit (`CALLTRAIL_MAX_BODY_BYTES`).
    pub keep: usize,
    /// Bytes read before the answer is 413: `keep`, or the audio limit for a provider that
    /// streams large messages through a started signature check.
    pub read: usize,
    /// How long the whole body may take.
    pub timeout: Duration,
}

/// A webhook body as far as it was read.
#[derive(Debug)]
pub(crate) struct ReceivedBody {
    /// The first bytes received, at most [`BodyLimits::keep`]: the whole body unless
    /// [`ReceivedBody::oversized`].
    pub bytes: Vec<u8>,
    /// How many bytes arrived (and went through the verifier) in all.
    pub received: usize,
    /// `payload_too_large` (beyond [`BodyLimits::read`]), `request_timeout` or `invalid_body`
    /// when the body is incomplete.
    pub problem: Option<ApiError>,
}

impl ReceivedBody {
    /// True when the body was complete but larger than what is kept.
    pub fn oversized(&self) -> bool {
        self.received > self.bytes.len()
    }
}

/// Reads `body`, feeding every byte to `verifier` (when the signature check started) and
/// keeping at most `limits.keep` bytes; `announced` is the `Content-Length`, if any.
pub(crate) async fn read_body<S, E>(
    mut body: S,
    announced: Option<usize>,
    limits: BodyLimits,
    mut verifier: Option<&mut dyn BodyVerifier>,
) -> ReceivedBody
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
    E: std::fmt::Display,
{
    let keep = limits.keep;
    let mut bytes = Vec::with_capacity(announced.unwrap_or(0).min(keep).min(MAX_PREALLOCATION));
    let mut received = 0_usize;
    let read = async {
        while let Some(chunk) = body.next().await {
            let chunk = match chunk {
                Ok(chunk) => chunk,
                Err(err) => return Some(ApiError::BodyRead(err.to_string())),
            };
            let fits = chunk.len().min(limits.read.saturating_sub(received));
            let room = keep.saturating_sub(bytes.len());
            bytes.extend_from_slice(&chunk[..fits.min(room)]);
            if fits < chunk.len() {
                return Some(ApiError::PayloadTooLarge { limit: limits.read });
            }
            if let Some(verifier) = verifier.as_deref_mut() {
                verifier.update(&chunk);
            }
            received += chunk.len();
        }
        None
    };
    let problem = match tokio::time::timeout(limits.timeout, read).await {
        Ok(problem) => problem,
        Err(_) => Some(ApiError::BodyTimeout {
            seconds: limits.timeout.as_secs(),
        }),
    };
    ReceivedBody {
        bytes,
        received,
        problem,
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;

    use calltrail_core::providers::SignatureError;
    use futures_util::stream;

    use super::*;

    /// Counts what it is fed.
    #[derive(Default)]
    struct Counting(usize);

    impl BodyVerifier for Counting {
        fn update(&mut self, chunk: &[u8]) {
            self.0 += chunk.len();
        }
        fn finish(self: Box<Self>) -> Result<(), SignatureError> {
            Ok(())
        }
    }

    fn chunks(sizes: &[usize]) -> impl Stream<Item = Result<Bytes, Infallible>> + Unpin {
        let chunks: Vec<_> = sizes
            .iter()
            .map(|n| Ok(Bytes::from(vec![b'a'; *n])))
            .collect();
        stream::iter(chunks)
    }

    fn limits(keep: usize, read: usize) -> BodyLimits {
        BodyLimits {
            keep,
            read,
            timeout: Duration::from_secs(5),
        }
    }

    #[tokio::test]
    async fn a_body_within_the_limit_is_kept_whole_and_verified() {
        let mut verifier = Counting::default();
        let body = read_body(chunks(&[3, 4]), Some(7), limits(8, 8), Some(&mut verifier)).await;
        assert_eq!((body.bytes.len(), body.received, verifier.0), (7, 7, 7));
        assert!(body.problem.is_none() && !body.oversized());
    }

    #[tokio::test]
    async fn past_the_read_limit_the_answer_is_413_with_the_kept_prefix() {
        let mut verifier = Counting::default();
        let body = read_body(chunks(&[6, 6]), None, limits(8, 8), Some(&mut verifier)).await;
        assert!(matches!(
            body.problem,
            Some(ApiError::PayloadTooLarge { limit: 8 })
        ));
        assert_eq!(body.bytes.len(), 8);
    }

    #[tokio::test]
    async fn between_the_limits_every_byte_is_verified_but_only_the_prefix_kept() {
        let mut verifier = Counting::default();
        let sizes = [1000; 50];
        let body = read_body(
            chunks(&sizes),
            None,
            limits(64, 50_000),
            Some(&mut verifier),
        )
        .await;
        assert!(body.problem.is_none());
        assert!(body.oversized());
        assert_eq!(body.bytes.len(), 64);
        assert!(body.bytes.capacity() <= 64, "{}", body.bytes.capacity());
        assert_eq!((body.received, verifier.0), (50_000, 50_000));
    }

    #[tokio::test]
    async fn a_broken_stream_is_an_invalid_body() {
        let broken = stream::iter(vec![Ok(Bytes::from_static(b"{")), Err("reset by peer")]);
        let body = read_body(broken, None, limits(8, 8), None).await;
        assert!(matches!(body.problem, Some(ApiError::BodyRead(ref m)) if m == "reset by peer"));
        assert_eq!(body.bytes, b"{");
    }
}
