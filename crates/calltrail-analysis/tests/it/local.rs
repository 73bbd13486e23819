//! The local analyzer's documented rules on real-shaped transcripts.

use calltrail_analysis::analyze_locally;
use calltrail_core::{AnalysisInput, AnalysisKind, Analyzer, LeadStatusTag, PreviousCall};
use serde_json::Value;

use crate::support::{bolna_completed, bolna_input};

fn transcript(text: &str) -> AnalysisInput {
    AnalysisInput::individual("exec-1", "+14155550132", text)
}

#[test]
fn the_bolna_fixture_is_a_promising_lead() {
    let (a, meta) = analyze_locally(&bolna_input());
    assert_eq!(
        a.extracted_email.as_deref(),
        Some("rohan@acme-logistics.example")
    );
    assert!(a.cta_pricing_clicked, "asked to send pricing");
    assert!(a.cta_demo_clicked, "accepted the demo slot");
    assert!(!a.cta_sample_clicked && !a.cta_escalated_to_human && !a.cta_followup_clicked);
    assert!(
        matches!(a.lead_status_tag, LeadStatusTag::Warm | LeadStatusTag::Hot),
        "{a:#?}"
    );
    assert!((40..=100).contains(&a.total_score), "{a:#?}");
    assert_eq!(a.demo_book_datetime, None);
    assert_eq!(
        (
            meta.analyzer,
            meta.model,
            meta.response_id,
            meta.tokens_used
        ),
        (Analyzer::Local, None, None, None)
    );
    let method = a.reasoning.get("method").and_then(Value::as_str).unwrap();
    assert!(
        method.contains("heuristic") && method.contains("not an LLM"),
        "{method}"
    );
    for key in [
        "intent",
        "urgency",
        "budget",
        "fit",
        "engagement",
        "cta_behavior",
    ] {
        assert!(a.reasoning.get(key).is_some_and(Value::is_string), "{key}");
    }
    assert_eq!(analyze_locally(&bolna_input()).0, a, "deterministic");
}

#[test]
fn contact_hints_fill_name_and_company() {
    let payload = bolna_completed();
    let mut input = bolna_input();
    input.contact.name = payload
        .pointer("/context_details/recipient_data/lead_name")
        .and_then(Value::as_str)
        .map(str::to_owned);
    input.contact.company = payload
        .pointer("/context_details/recipient_data/company")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let (a, _) = analyze_locally(&input);
    assert_eq!(a.extracted_name.as_deref(), Some("Rohan Mehta"));
    assert_eq!(a.company_name.as_deref(), Some("Acme Logistics"));
    assert!(a
        .smart_notification
        .unwrap()
        .contains("Rohan Mehta, Acme Logistics"));
}

#[test]
fn an_uninterested_caller_is_cold() {
    let (a, _) = analyze_locally(&transcript(
        "assistant: Hi, this is Maya from Brightline CRM. Do you have a minute to talk about a demo?\n\
         user: No. Not interested, please take me off your list.\n\
         assistant: Understood, sorry to bother you.\n",
    ));
    assert_eq!(a.lead_status_tag, LeadStatusTag::Cold, "{a:#?}");
    assert!(a.total_score < 40);
    assert_eq!(a.intent_score, 0);
    assert!(!a.cta_demo_clicked && !a.cta_pricing_clicked);
    assert_eq!(a.extracted_email, None);
}

#[test]
fn voicemail_without_caller_words_is_cold() {
    let (a, _) = analyze_locally(&transcript(
        "assistant: Hi, this is Maya. Please call us back at your convenience.\n",
    ));
    assert_eq!(a.lead_status_tag, LeadStatusTag::Cold);
    assert_eq!(a.engagement_score, 0);
    assert!(!a.cta_followup_clicked, "only the agent spoke");
}

#[test]
fn the_caller_names_themself_and_asks_for_things() {
    let (a, _) = analyze_locally(&transcript(
        "assistant: Thanks for calling Brightline.\n\
         user: Hi, this is Priya Shah from Northwind Traders. We need a quote and a free trial\n\
         for our team of forty, and can a real person call me back today? Mail me at Priya.Shah@Northwind.example.\n",
    ));
    assert_eq!(a.extracted_name.as_deref(), Some("Priya Shah"));
    assert_eq!(a.company_name.as_deref(), Some("Northwind Traders"));
    assert_eq!(
        a.extracted_email.as_deref(),
        Some("priya.shah@northwind.example")
    );
    assert!(
        a.cta_pricing_clicked
            && a.cta_sample_clicked
            && a.cta_escalated_to_human
            && a.cta_followup_clicked
    );
    assert!(!a.cta_demo_clicked);
    assert!(a.urgency_score >= 2, "today");
}

#[test]
fn negated_requests_do_not_count() {
    let (a, _) = analyze_locally(&transcript(
        "assistant: Would you like a demo?\nuser: No, I don't want a demo and I'm not looking for pricing either.\n",
    ));
    assert!(!a.cta_demo_clicked && !a.cta_pricing_clicked, "{a:#?}");
    assert_eq!(a.lead_status_tag, LeadStatusTag::Cold);
}

#[test]
fn unlabelled_transcripts_count_as_the_caller() {
    let (a, _) = analyze_locally(&transcript(
        "Yes I'm interested, what's the price? Send me details at a@b.example",
    ));
    assert!(a.cta_pricing_clicked && a.cta_followup_clicked);
    assert_eq!(a.extracted_email.as_deref(), Some("a@b.example"));
}

#[test]
fn complete_analyses_combine_previous_calls() {
    let earlier = PreviousCall {
        execution_id: "earlier".to_owned(),
        transcript:
            "assistant: Can I send you a sample?\nuser: Sure, send it to ops@acme.example.\n"
                .to_owned(),
        call_date: None,
        call_duration_seconds: None,
        analysis: None,
    };
    let mut input = transcript("assistant: Hi again, how did it go?\nuser: Good, we liked it.\n");
    input.previous = vec![earlier];
    let (individual, _) = analyze_locally(&input);
    assert_eq!(
        individual.extracted_email, None,
        "individual analyses ignore previous calls"
    );
    assert!(!individual.cta_sample_clicked);

    input.kind = AnalysisKind::Complete;
    let (complete, _) = analyze_locally(&input);
    assert_eq!(
        complete.extracted_email.as_deref(),
        Some("ops@acme.example")
    );
    assert!(
        complete.cta_sample_clicked,
        "accepted the sample offer in the earlier call"
    );
    assert!(complete.reasoning["method"]
        .as_str()
        .unwrap()
        .contains("2 call(s)"));
}
