//! Reading the model's answer: the fixture, and no panics on anything.

use calltrail_core::{parse_model_output, LeadStatusTag};
use calltrail_testkit::responses::FIXTURE_OUTPUT_TEXT;
use proptest::prelude::*;
use serde_json::Value;

use crate::support::openai_fixture;

#[test]
fn the_fixture_text_is_the_fixture_answer() {
    let response: Value = serde_json::from_str(&openai_fixture("response-completed.json")).unwrap();
    let text = response
        .pointer("/output/0/content/0/text")
        .and_then(Value::as_str)
        .unwrap();
    assert_eq!(
        text, FIXTURE_OUTPUT_TEXT,
        "responses::FIXTURE_OUTPUT_TEXT mirrors the fixture"
    );
    let a = parse_model_output(text).unwrap();
    assert_eq!(
        (
            a.total_score,
            a.intent_score,
            a.urgency_score,
            a.budget_score,
            a.fit_score,
            a.engagement_score
        ),
        (82, 4, 3, 2, 4, 4)
    );
    assert_eq!(a.lead_status_tag, LeadStatusTag::Hot);
    assert_eq!(a.extracted_name.as_deref(), Some("Rohan Mehta"));
    assert!(a
        .smart_notification
        .unwrap()
        .starts_with("Hot lead: Acme Logistics"));
    assert_eq!(a.reasoning.len(), 6);
}

fn leaf() -> impl Strategy<Value = Value> {
    prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from),
        ".{0,12}".prop_map(Value::from),
        Just(serde_json::json!({"nested": [1, "x"]})),
    ]
}

proptest! {
    #[test]
    fn never_panics_on_arbitrary_text(text in any::<String>()) {
        let _ = parse_model_output(&text);
    }

    #[test]
    fn never_panics_on_a_damaged_fixture(cut in 0usize..1300, insert in ".{0,8}") {
        let cut = cut.min(FIXTURE_OUTPUT_TEXT.len());
        let (head, tail) = FIXTURE_OUTPUT_TEXT.split_at(cut);
        let _ = parse_model_output(&format!("{head}{insert}{tail}"));
    }

    #[test]
    fn any_field_of_any_type_gives_a_result_in_range(
        changes in proptest::collection::vec((0usize..21, leaf()), 0..6)
    ) {
        let mut value: Value = serde_json::from_str(FIXTURE_OUTPUT_TEXT).unwrap();
        let keys: Vec<String> = value.as_object().unwrap().keys().cloned().collect();
        for (i, leaf) in changes {
            if let Some(key) = keys.get(i % keys.len()) {
                value[key] = leaf;
            }
        }
        if let Ok(a) = parse_model_output(&value.to_string()) {
            prop_assert!((0..=100).contains(&a.total_score));
            for s in [a.intent_score, a.urgency_score, a.budget_score, a.fit_score, a.engagement_score] {
                prop_assert!((0..=5).contains(&s));
            }
        }
    }
}
