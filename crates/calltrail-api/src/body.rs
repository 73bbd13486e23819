//! Request bodies of the write routes: reading them within a limit, JSON objects read field by
//! field (an unknown field or a wrong type is answered naming the field), and the
//! `Idempotency-Key` header.

use actix_web::http::header::{HeaderMap, CONTENT_TYPE};
use actix_web::web;
use futures_util::StreamExt;
use serde_json::{Map, Value};
use uuid::Uuid;

use crate::error::ApiError;

/// Largest JSON body a write route reads.
pub const MAX_JSON_BYTES: usize = 256 * 1024;

/// Reads the whole body, refusing it beyond `limit` bytes (413 naming the limit).
pub async fn read(mut payload: web::Payload, limit: usize) -> Result<web::BytesMut, ApiError> {
    let mut body = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// Refuses a body whose `Content-Type` is present and not `expected` (parameters such as
/// `charset` are ignored; a missing header is taken as `expected`).
pub fn expect_content_type(headers: &HeaderMap, expected: &'static str) -> Result<(), ApiError> {
    let Some(value) = headers.get(CONTENT_TYPE) else {
        return Ok(());
    };
    let essence = value
        .to_str()
        .ok()
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase());
    match essence {
        Some(essence) if essence == expected => Ok(()),
        _ => Err(ApiError::UnsupportedMediaType { expected }),
    }
}

/// Reads a JSON object body of at most [`MAX_JSON_BYTES`] with no field outside `known`,
/// after checking its `Content-Type`; the raw bytes come back too (idempotency compares them).
pub async fn json_object(
    headers: &HeaderMap,
    payload: web::Payload,
    known: &[&str],
) -> Result<(web::BytesMut, JsonObject), ApiError> {
    expect_content_type(headers, "application/json")?;
    let bytes = read(payload, MAX_JSON_BYTES).await?;
    let object = JsonObject::parse(&bytes, known)?;
    Ok((bytes, object))
}

/// The OpenAPI schema of a text field as [`JsonObject::string`] reads it: 1 to `max`
/// characters, not all blank, no U+0000.
pub fn text_schema(max: usize) -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
    utoipa::openapi::ObjectBuilder::new()
        .schema_type(utoipa::openapi::schema::Type::String)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(r"^[^\u0000]*[^\u0000\s][^\u0000]*$"))
        .into()
}

/// A text field of the write routes as OpenAPI shows it, `$max` characters at most.
macro_rules! text_field {
    ($name:ident, $max:expr) => {
        #[doc = concat!("A text field of 1 to `", stringify!($max), "` characters, not all blank.")]
        pub struct $name;

        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                $crate::body::text_schema($max)
            }
        }

        impl utoipa::ToSchema for $name {}
    };
}
pub(crate) use text_field;

/// A JSON object body whose fields are read one by one.
#[derive(Debug)]
pub struct JsonObject(Map<String, Value>);

impl JsonObject {
    /// Parses `bytes` as a JSON object with no field outside `known`.
    pub fn parse(bytes: &[u8], known: &[&str]) -> Result<Self, ApiError> {
        let value: Value =
            serde_json::from_slice(bytes).map_err(|e| ApiError::InvalidJson(e.to_string()))?;
        let Value::Object(map) = value else {
            return Err(ApiError::InvalidJson("expected an object".into()));
        };
        if let Some(unknown) = map.keys().find(|k| !known.contains(&k.as_str())) {
            let shown: String = unknown.chars().take(64).collect();
            return Err(ApiError::UnknownField(shown));
        }
        Ok(Self(map))
    }

    /// A required string of 1 to `max` characters (trimmed).
    pub fn string(&self, field: &'static str, max: usize) -> Result<String, ApiError> {
        match self.0.get(field) {
            None | Some(Value::Null) => Err(invalid(field, "is required")),
            Some(value) => text(field, value, max),
        }
    }

    /// An optional list of strings of 1 to `max` characters each (trimmed, duplicates removed,
    /// order kept), at most `limit` of them.
    pub fn strings(
        &self,
        field: &'static str,
        max: usize,
        limit: usize,
    ) -> Result<Vec<String>, ApiError> {
        let items = match self.0.get(field) {
            None | Some(Value::Null) => return Ok(Vec::new()),
            Some(Value::Array(items)) => items,
            Some(_) => return Err(invalid(field, "must be an array of strings")),
        };
        if items.len() > limit {
            return Err(ApiError::TooMany {
                field,
                got: items.len(),
                limit,
            });
        }
        let mut out: Vec<String> = Vec::with_capacity(items.len());
        for item in items {
            let item = text(field, item, max)?;
            if !out.contains(&item) {
                out.push(item);
            }
        }
        Ok(out)
    }

    /// A required field that is a UUID or `null`.
    pub fn uuid_or_null(&self, field: &'static str) -> Result<Option<Uuid>, ApiError> {
        match self.0.get(field) {
            None => Err(invalid(field, "is required (a campaign id, or null)")),
            Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Uuid::parse_str(s.trim())
                .map(Some)
                .map_err(|_| invalid(field, "must be a campaign id (a UUID) or null")),
            Some(_) => Err(invalid(field, "must be a string (a UUID) or null")),
        }
    }
}

fn text(field: &'static str, value: &Value, max: usize) -> Result<String, ApiError> {
    let Value::String(s) = value else {
        return Err(invalid(field, "must be a string"));
    };
    let s = s.trim();
    if s.is_empty() {
        return Err(invalid(field, "must not be empty"));
    }
    if s.chars().count() > max {
        return Err(invalid(field, &format!("must be at most {max} characters")));
    }
    if s.contains('\0') {
        return Err(invalid(field, "must not contain U+0000"));
    }
    Ok(s.to_owned())
}

fn invalid(field: &'static str, problem: &str) -> ApiError {
    ApiError::InvalidField {
        field,
        problem: problem.to_owned(),
    }
}

/// The `Idempotency-Key` header: absent, or 1–255 visible ASCII characters.
pub fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else {
        return Ok(None);
    };
    let key = value
        .to_str()
        .map_err(|_| ApiError::InvalidIdempotencyKey)?
        .trim();
    if key.is_empty() || key.len() > 255 || !key.bytes().all(|b| b.is_ascii_graphic() || b == b' ')
    {
        return Err(ApiError::InvalidIdempotencyKey);
    }
    Ok(Some(key.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_named_in_every_refusal() {
        let code = |r: Result<JsonObject, ApiError>| r.err().map(|e| e.message());
        assert_eq!(
            code(JsonObject::parse(br#"{"name":"a","x":1}"#, &["name"])),
            Some("The body has an unknown field `x`.".into())
        );
        let body = JsonObject::parse(br#"{"name":5,"ids":"a","c":7}"#, &["name", "ids", "c"]);
        let Ok(body) = body else {
            panic!("an object");
        };
        let message = |r: Result<String, ApiError>| r.err().map(|e| e.message());
        assert_eq!(
            message(body.string("name", 10)),
            Some("`name` must be a string.".into())
        );
        assert!(body
            .strings("ids", 10, 5)
            .err()
            .is_some_and(|e| e.message().contains("`ids`")));
        assert!(body
            .uuid_or_null("c")
            .err()
            .is_some_and(|e| e.message().contains("`c`")));
        assert!(JsonObject::parse(b"[1]", &[]).is_err());
    }
}
