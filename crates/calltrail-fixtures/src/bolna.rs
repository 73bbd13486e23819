//! Bolna fixtures as other calls: the same webhook with another execution id and contact number.

use serde_json::Value;

/// Gives a Bolna payload the execution id `id` and, when given, the contact number `phone`
/// in every field that carries it (`user_number`, `telephony_data.to_number`,
/// `context_details.recipient_phone_number`).
pub fn as_call(payload: &mut Value, id: &str, phone: Option<&str>) {
    payload["id"] = Value::from(id);
    if let Some(phone) = phone {
        payload["user_number"] = Value::from(phone);
        payload["telephony_data"]["to_number"] = Value::from(phone);
        payload["context_details"]["recipient_phone_number"] = Value::from(phone);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_number_field_is_replaced() {
        let mut payload = crate::json("bolna/success/05-completed.json");
        super::as_call(&mut payload, "call-2", Some("+14155550100"));
        let text = payload.to_string();
        assert_eq!(payload["id"], "call-2");
        assert!(
            !text.contains("+14155550132"),
            "no trace of the fixture's number: {text}"
        );
    }
}
