//! The OpenAPI shapes of the webhook route: the provider names (from the provider table), the
//! request bodies, and the 200 answer. Documentation only: the intake reads raw bytes and each
//! provider's own parser decides what it accepts.

use calltrail_core::Provider;
use utoipa::openapi::schema::{
    AdditionalProperties, AnyOfBuilder, ObjectBuilder, OneOfBuilder, Schema, Type,
};
use utoipa::openapi::{Ref, RefOr};
use utoipa::ToSchema;

use crate::params::WHITESPACE;

/// The `provider` parameter: one of the names in `calltrail_core::Provider::ALL`; with
/// `blank_is_absent` (a query filter), also the empty value.
pub fn provider_schema(blank_is_absent: bool) -> RefOr<Schema> {
    let blank = blank_is_absent.then_some("");
    ObjectBuilder::new()
        .schema_type(Type::String)
        .enum_values(Some(Provider::ALL.iter().map(|p| p.as_str()).chain(blank)))
        .into()
}

/// The documented shape of a Bolna webhook body. Only for the OpenAPI document: the handler
/// reads the raw bytes with `bolna::parse`, which needs `id` and `status` and reads every other
/// field leniently (a value of an unexpected type is ignored, never refused). U+0000 is refused
/// anywhere in the body (400 `invalid_payload`), as PostgreSQL cannot store it; the patterns
/// below say so for `id` and `status`, the description for the rest.
#[derive(Debug)]
pub struct BolnaWebhookBody;

impl utoipa::PartialSchema for BolnaWebhookBody {
    fn schema() -> RefOr<Schema> {
        // Not blank (at least one character that `str::trim` keeps), and no U+0000.
        let not_blank = || {
            ObjectBuilder::new()
                .schema_type(Type::String)
                .pattern(Some(format!(
                    r"^[^\u0000]*[^\u0000{WHITESPACE}][^\u0000]*$"
                )))
        };
        let id = AnyOfBuilder::new()
            .item(not_blank())
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .description(Some(
                "The execution id: a string that is not blank (trimmed), or a number (stringified)",
            ));
        let status = not_blank().description(Some(
            "The lifecycle status, e.g. `ringing`; a status calltrail does not know is still recorded",
        ));
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .property("id", id)
            .property("status", status)
            .required("id")
            .required("status")
            .additional_properties(Some(AdditionalProperties::FreeForm(true)))
            .description(Some(
                "A Bolna execution payload (`provider` = `bolna`); `id` and `status` are required. \
                 Every other key is optional, read leniently and kept as sent. No string or key \
                 may contain U+0000, which PostgreSQL cannot store (400 `invalid_payload`). The \
                 other JSON providers' payloads are described in docs/CONTRACT.md §5.",
            ))
            .examples([serde_json::json!({
                "id": "b3f1c2d4-7a8e-4c61-9f25-3e0d8a6b51c7",
                "agent_id": "9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18",
                "status": "ringing",
                "updated_at": "2025-10-08T09:15:02.118734",
            })])
            .into()
    }
}

impl ToSchema for BolnaWebhookBody {}

/// A form-encoded webhook body (Twilio's status callbacks): field names and values as sent.
#[derive(Debug)]
pub struct FormBody;

impl utoipa::PartialSchema for FormBody {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::Object)
            .additional_properties(Some(ObjectBuilder::new().schema_type(Type::String)))
            .description(Some(
                "The fields of a form-encoded provider (Twilio: `CallSid`, `CallStatus`, …), \
                 stored in the order received. A provider that posts JSON refuses a form \
                 (400 `invalid_payload`).",
            ))
            .into()
    }
}

impl ToSchema for FormBody {}

/// The body of a 200 answer: a duplicate's receipt or an ignored message.
#[derive(Debug)]
pub struct WebhookOkBody;

impl utoipa::PartialSchema for WebhookOkBody {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(Ref::from_schema_name("WebhookReceipt"))
            .item(Ref::from_schema_name("WebhookIgnored"))
            .into()
    }
}

impl ToSchema for WebhookOkBody {}
