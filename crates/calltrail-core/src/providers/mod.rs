//! Provider payload types and their normalization into [`crate::CallEvent`].
//!
//! Modules:
//! - [`bolna`]: Bolna execution payloads (webhooks and the executions API share one shape).
//! - `lenient` (private): serde helpers that turn an odd optional value into `None` instead of an error.

pub mod bolna;
mod lenient;

/// Why a webhook body is not a usable provider payload (answered with 400 and kept in the rejected log).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    /// The body is not JSON at all (the parser's message says where it broke).
    #[error("the body is not valid JSON: {0}")]
    MalformedJson(String),
    /// The body is JSON, but its top level is not an object.
    #[error("the body is valid JSON but not a JSON object")]
    NotAnObject,
    /// A required field is absent, null, empty or of the wrong type.
    #[error(
        "the payload has no usable `{0}` field (it is absent, null, empty or of the wrong type)"
    )]
    MissingField(&'static str),
}

impl PayloadError {
    /// A stable snake_case code for API error bodies and the rejected-webhook log.
    pub fn code(&self) -> &'static str {
        match self {
            PayloadError::MalformedJson(_) => "malformed_json",
            PayloadError::NotAnObject => "payload_not_an_object",
            PayloadError::MissingField(_) => "missing_field",
        }
    }
}
