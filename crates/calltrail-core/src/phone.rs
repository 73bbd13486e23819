//! E.164 phone numbers.

use serde::{Deserialize, Serialize};

/// A phone number in E.164 form (`+` and 8–15 digits).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a string is not an E.164 phone number.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{input}` is not an E.164 phone number: {reason}")]
pub struct PhoneNumberError {
    /// What was given.
    pub input: String,
    /// What is wrong.
    pub reason: &'static str,
}

/// Fewest digits after the `+` we accept (short national numbers of small countries).
const MIN_DIGITS: usize = 8;
/// Most digits E.164 allows after the `+`.
const MAX_DIGITS: usize = 15;

impl PhoneNumber {
    /// Parses a number, tolerating spaces, dashes, dots and parentheses.
    ///
    /// The number must be international: `+` or the `00` prefix (which becomes `+`),
    /// then 8–15 digits, the first of which (the country code) is not `0`. No default
    /// country is ever assumed, so `4155550132` is an error rather than a guess.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let fail = |reason| PhoneNumberError {
            input: input.to_owned(),
            reason,
        };
        let mut compact = String::with_capacity(input.len());
        for c in input.chars() {
            match c {
                '0'..='9' | '+' => compact.push(c),
                c if c.is_whitespace() || matches!(c, '-' | '.' | '(' | ')') => {}
                _ => {
                    return Err(fail(
                        "it contains a character other than digits, `+` and the separators space, `-`, `.`, `(`, `)`",
                    ))
                }
            }
        }
        if compact.is_empty() {
            return Err(fail("it is empty"));
        }
        let digits = if let Some(rest) = compact.strip_prefix('+') {
            rest
        } else if let Some(rest) = compact.strip_prefix("00") {
            rest
        } else {
            return Err(fail(
                "it must start with `+` or `00` and a country code (no default country is assumed)",
            ));
        };
        if digits.contains('+') {
            return Err(fail("`+` may only appear once, at the start"));
        }
        if digits.len() < MIN_DIGITS {
            return Err(fail("it has fewer than 8 digits after the `+`"));
        }
        if digits.len() > MAX_DIGITS {
            return Err(fail("it has more than 15 digits after the `+`"));
        }
        if digits.starts_with('0') {
            return Err(fail("a country code cannot start with 0"));
        }
        Ok(PhoneNumber(format!("+{digits}")))
    }

    /// The E.164 text, e.g. `+14155550132`.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl std::str::FromStr for PhoneNumber {
    type Err = PhoneNumberError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PhoneNumber::parse(s)
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        PhoneNumber::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl AsRef<str> for PhoneNumber {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> String {
        match PhoneNumber::parse(input) {
            Ok(p) => p.as_str().to_owned(),
            Err(e) => panic!("{input:?} should parse: {e}"),
        }
    }

    fn reason(input: &str) -> &'static str {
        match PhoneNumber::parse(input) {
            Ok(p) => panic!("{input:?} should not parse, got {p}"),
            Err(e) => e.reason,
        }
    }

    #[test]
    fn accepts_e164_and_separators() {
        assert_eq!(ok("+14155550132"), "+14155550132");
        assert_eq!(ok("+1 (415) 555-0132"), "+14155550132");
        assert_eq!(ok("+1.415.555.0132"), "+14155550132");
        assert_eq!(ok("  +91 98765-43210 "), "+919876543210");
        assert_eq!(ok("0044 20 7946 0958"), "+442079460958");
        assert_eq!(ok("(+1) 415 555 0132"), "+14155550132");
    }

    #[test]
    fn length_bounds() {
        assert_eq!(ok("+12345678"), "+12345678");
        assert_eq!(ok("+123456789012345"), "+123456789012345");
        assert_eq!(
            reason("+1234567"),
            "it has fewer than 8 digits after the `+`"
        );
        assert_eq!(
            reason("+1234567890123456"),
            "it has more than 15 digits after the `+`"
        );
    }

    #[test]
    fn rejects_with_specific_reasons() {
        assert_eq!(reason(""), "it is empty");
        assert_eq!(reason(" - ( ) "), "it is empty");
        assert!(reason("4155550132").contains("no default country"));
        assert!(reason("0415550132").contains("no default country"));
        assert!(reason("+1415abc0132").contains("character other than digits"));
        assert!(reason("+1 415 555 0132 ext 5").contains("character other than digits"));
        assert_eq!(
            reason("+1415+5550132"),
            "`+` may only appear once, at the start"
        );
        assert_eq!(
            reason("++14155550132"),
            "`+` may only appear once, at the start"
        );
        assert_eq!(reason("+04155550132"), "a country code cannot start with 0");
        assert_eq!(
            reason("0004155550132"),
            "a country code cannot start with 0"
        );
    }

    #[test]
    fn error_message_names_input_and_reason() {
        let err = PhoneNumber::parse("12").err();
        let msg = err.map(|e| e.to_string()).unwrap_or_default();
        assert!(
            msg.starts_with("`12` is not an E.164 phone number: "),
            "{msg}"
        );
    }

    #[test]
    fn serde_round_trip_and_rejects_invalid() {
        let p = PhoneNumber::parse("+14155550132").ok();
        let json = serde_json::to_string(&p).unwrap_or_default();
        assert_eq!(json, "\"+14155550132\"");
        let back: Option<PhoneNumber> = serde_json::from_str("\"+1 415 555 0132\"").ok();
        assert_eq!(back, p);
        assert!(serde_json::from_str::<PhoneNumber>("\"555\"").is_err());
    }
}
