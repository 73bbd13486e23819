//! Twilio calls out of `fixtures/twilio/`: the fixtures' three status callbacks, and the other
//! callbacks of a call made from them (form bodies, fields in Twilio's order).

/// The fixtures' CallSid.
pub const CALL_SID: &str = "CA7b2e9d4f1a6c3e8b0d5f2a9c4e7b1d6f";
/// The fixtures' business number (`From` of their outbound calls): the agent.
pub const BUSINESS_NUMBER: &str = "+14155550187";

/// `form` with each `(name, value)` replacing that field's value, or appended when absent.
pub fn with_fields(form: &[u8], fields: &[(&str, &str)]) -> Vec<u8> {
    let text = String::from_utf8_lossy(form);
    let mut pairs: Vec<(String, String)> = text
        .split('&')
        .filter(|f| !f.is_empty())
        .map(|f| {
            let (n, v) = f.split_once('=').unwrap_or((f, ""));
            (n.to_owned(), v.to_owned())
        })
        .collect();
    for (name, value) in fields {
        let value = encode(value);
        match pairs.iter_mut().find(|(n, _)| n == name) {
            Some(pair) => pair.1 = value,
            None => pairs.push(((*name).to_owned(), value)),
        }
    }
    let joined: Vec<String> = pairs.into_iter().map(|(n, v)| format!("{n}={v}")).collect();
    joined.join("&").into_bytes()
}

/// `application/x-www-form-urlencoded` encoding of one value.
pub fn encode(value: &str) -> String {
    let mut out = String::new();
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(byte));
            }
            b' ' => out.push('+'),
            other => out.push_str(&format!("%{other:02X}")),
        }
    }
    out
}

/// A callback of the fixture call: the ringing one with `fields` changed.
pub fn callback(fields: &[(&str, &str)]) -> Vec<u8> {
    with_fields(&crate::read("twilio/01-ringing.form"), fields)
}

/// The answered call in delivery order: `queued`, then the fixtures' `ringing`, `in-progress`
/// and `completed` (29 s, a recording, SIP 200).
pub fn answered() -> Vec<Vec<u8>> {
    vec![
        callback(&[
            ("CallStatus", "queued"),
            ("SequenceNumber", "0"),
            ("Timestamp", "Wed, 08 Oct 2025 09:14:59 +0000"),
        ]),
        crate::read("twilio/01-ringing.form"),
        crate::read("twilio/02-in-progress.form"),
        crate::read("twilio/03-completed.form"),
    ]
}

/// The call busy: `initiated`, then `busy` with SIP 486 after no talk time.
pub fn busy() -> Vec<Vec<u8>> {
    vec![
        callback(&[
            ("CallStatus", "initiated"),
            ("SequenceNumber", "0"),
            ("Timestamp", "Wed, 08 Oct 2025 09:15:00 +0000"),
        ]),
        callback(&[
            ("CallStatus", "busy"),
            ("SequenceNumber", "2"),
            ("Timestamp", "Wed, 08 Oct 2025 09:15:31 +0000"),
            ("CallDuration", "0"),
            ("SipResponseCode", "486"),
        ]),
    ]
}

/// Gives a callback the CallSid `sid` (and the contact's number `phone`: `To` and `Called` of
/// the fixtures' outbound calls).
pub fn as_call(form: &[u8], sid: &str, phone: Option<&str>) -> Vec<u8> {
    let mut fields = vec![("CallSid", sid)];
    if let Some(phone) = phone {
        fields.extend([("To", phone), ("Called", phone)]);
    }
    with_fields(form, &fields)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_replaced_in_place_or_appended_encoded() {
        let form = with_fields(b"A=1&B=2", &[("B", "+1 415"), ("C", "x&y")]);
        assert_eq!(form, b"A=1&B=%2B1+415&C=x%26y");
        let busy = String::from_utf8(busy().pop().unwrap()).unwrap();
        assert!(busy.contains("CallStatus=busy") && busy.contains("SipResponseCode=486"));
        assert!(
            busy.starts_with("AccountSid="),
            "Twilio's field order is kept"
        );
    }
}
