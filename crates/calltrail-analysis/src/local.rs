//! The local analyzer: used when `OPENAI_API_KEY` is unset. A deterministic keyword heuristic
//! over the transcript — no network, no model — that fills the same LeadAnalytics fields.
//! Its `reasoning` says so, and its metadata is `analyzer: local`, no model, no tokens.
//!
//! # Reading the transcript
//! Lines start with a speaker: `user:`/`caller:`/`customer:` are the **caller**,
//! `assistant:`/`agent:`/`bot:`/`ai:` the agent; an unprefixed line continues the previous
//! turn (lines before the first prefixed one are skipped). A transcript with no speaker
//! prefix at all is taken as the caller's words.
//! A complete analysis reads the previous calls (at most the last 9) and the current one.
//! Phrases are matched on lowercase words (letters, digits, `'`). A phrase of a positive list
//! (all but the four negative ones) preceded within 3 words by a negator (`not no never
//! without don't dont doesn't didn't isn't aren't won't can't cannot cant`) does not count, so
//! "not interested" is no intent; negative lists count as said. Each phrase counts once
//! however often it occurs.
//!
//! # Scores (each 0–5, clamped)
//! - **intent** = min(P, 3) + 1 if a pricing, demo or sample CTA is set − 3 × N, where P counts
//!   [`INTENT_POSITIVE`] and N [`INTENT_NEGATIVE`] phrases.
//! - **urgency** = 2 × [`URGENCY_HIGH`] + [`URGENCY_MEDIUM`] − 2 × [`URGENCY_LOW`] + 1 if a demo
//!   CTA is set.
//! - **budget** = 2 + [`BUDGET_POSITIVE`] − 2 × [`BUDGET_NEGATIVE`].
//! - **fit** = 1 + min([`FIT_POSITIVE`], 3) + 1 if an e-mail or company was found in the
//!   caller's words − 2 × [`FIT_NEGATIVE`].
//! - **engagement** = min(caller turns / 2, 2) + 1 if the caller said ≥ 20 words + 1 if ≥ 60
//!   words + 1 if the caller asked a question (`?`). Words are whitespace-separated tokens.
//!
//! Labels: intent/urgency/engagement `high` (≥ 4), `medium` (≥ 2), `low`; fit `strong`,
//! `partial`, `weak` on the same cuts; budget `price_sensitive` (a negative phrase),
//! `budget_available` (a positive one), `pricing_requested` (pricing CTA) or `not_discussed`.
//!
//! **total_score** = round((30·intent + 20·urgency + 15·budget + 15·fit + 20·engagement) / 5),
//! 0–100. **Tag**: `Hot` ≥ 70, `Warm` ≥ 40, else `Cold`; always `Cold` when the caller used an
//! [`INTENT_NEGATIVE`] phrase and no [`INTENT_POSITIVE`] one.
//!
//! # CTA flags
//! A flag is set when the caller says one of its phrases ([`CTA_PRICING`], [`CTA_DEMO`],
//! [`CTA_FOLLOWUP`], [`CTA_SAMPLE`], [`CTA_HUMAN`]), or when an agent turn offers one of them
//! and the caller's next turn accepts ([`ACCEPT`]) without declining ([`DECLINE`]).
//!
//! # Extraction
//! - **e-mail**: the first `local@domain.tld` token in the caller's turns (newest call first),
//!   else in the agent's turns, else the contact hints, else a previous analysis. Spelled-out
//!   addresses ("rohan at acme dot com") are not recognised.
//! - **name**: capitalised words (≤ 2) after "my name is", "this is", "i'm", "i am", "it's",
//!   "name's" in the caller's turns; else the contact hints; else a previous analysis.
//! - **company**: capitalised words (≤ 4) after "from", "at", "with", "work for", "working for",
//!   "company is" in the caller's turns; else the hints; else a previous analysis.
//! - **demo_book_datetime** is never set: spoken times ("Thursday at three") are not resolved.

use calltrail_core::analysis::{is_plausible_email, MAX_SUB_SCORE, MAX_TOTAL_SCORE};
use calltrail_core::{AnalysisInput, AnalysisMeta, LeadAnalysis, LeadStatusTag};
use serde_json::{Map, Value};

mod transcript;

use transcript::{Speaker, Turn};

/// Phrases showing the caller wants the product (intent +1 each, at most 3).
pub const INTENT_POSITIVE: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "sure",
    "definitely",
    "absolutely",
    "interested",
    "sounds good",
    "sounds great",
    "works",
    "we are",
    "looking for",
    "looking at",
    "need",
    "want",
    "evaluating",
    "switch",
    "replace",
    "ready",
    "sign up",
    "let's do it",
    "go ahead",
];
/// Phrases refusing the product (intent −3 each; a refusal alone makes the lead Cold).
pub const INTENT_NEGATIVE: &[&str] = &[
    "not interested",
    "no thanks",
    "no thank you",
    "don't call",
    "do not call",
    "stop calling",
    "remove me",
    "take me off",
    "unsubscribe",
    "wrong number",
    "not looking",
    "not for us",
    "no need",
    "don't need",
    "do not need",
    "already have",
    "leave me alone",
    "never call",
];
/// Phrases of pressing need (urgency +2 each).
pub const URGENCY_HIGH: &[&str] = &[
    "asap",
    "as soon as possible",
    "urgent",
    "urgently",
    "immediately",
    "right away",
    "right now",
    "today",
    "tomorrow",
    "this week",
];
/// Phrases of near-term need (urgency +1 each).
pub const URGENCY_MEDIUM: &[&str] = &[
    "soon",
    "next week",
    "this month",
    "deadline",
    "quickly",
    "falling apart",
    "monday",
    "tuesday",
    "wednesday",
    "thursday",
    "friday",
];
/// Phrases of no hurry (urgency −2 each).
pub const URGENCY_LOW: &[&str] = &[
    "no rush",
    "no hurry",
    "not urgent",
    "next year",
    "next quarter",
    "maybe later",
    "someday",
];
/// Phrases of available budget (budget +1 each).
pub const BUDGET_POSITIVE: &[&str] = &[
    "budget", "approved", "afford", "worth it", "invest", "funding", "pay for",
];
/// Phrases of price sensitivity (budget −2 each).
pub const BUDGET_NEGATIVE: &[&str] = &[
    "too expensive",
    "expensive",
    "no budget",
    "can't afford",
    "cannot afford",
    "too much",
    "cheaper",
    "over budget",
    "tight budget",
];
/// Phrases showing a business with the need (fit +1 each, at most 3).
pub const FIT_POSITIVE: &[&str] = &[
    "team",
    "reps",
    "company",
    "business",
    "employees",
    "staff",
    "customers",
    "clients",
    "spreadsheet",
    "spreadsheets",
    "crm",
    "we use",
    "currently using",
    "workflow",
];
/// Phrases showing a poor fit (fit −2 each).
pub const FIT_NEGATIVE: &[&str] = &[
    "wrong number",
    "wrong person",
    "not the right person",
    "not relevant",
    "not for us",
    "just me",
];
/// Pricing CTA phrases.
pub const CTA_PRICING: &[&str] = &[
    "price", "prices", "pricing", "cost", "costs", "quote", "quotes", "how much", "rates", "fee",
    "fees",
];
/// Demo CTA phrases.
pub const CTA_DEMO: &[&str] = &[
    "demo",
    "demos",
    "demonstration",
    "walkthrough",
    "walk through",
    "walk me through",
    "meeting",
    "show me",
    "book a call",
    "schedule a call",
    "presentation",
];
/// Follow-up CTA phrases.
pub const CTA_FOLLOWUP: &[&str] = &[
    "call back",
    "call me back",
    "call me later",
    "follow up",
    "followup",
    "send me",
    "email me",
    "text me",
    "reach out",
    "get back to me",
    "touch base",
    "send over",
    "contact me",
];
/// Sample/trial CTA phrases.
pub const CTA_SAMPLE: &[&str] = &[
    "sample",
    "samples",
    "trial",
    "free trial",
    "try it",
    "pilot",
    "test drive",
];
/// Escalation-to-human CTA phrases.
pub const CTA_HUMAN: &[&str] = &[
    "human",
    "real person",
    "actual person",
    "live person",
    "manager",
    "supervisor",
    "representative",
    "speak to someone",
    "talk to someone",
    "speak with someone",
    "live agent",
    "operator",
];
/// Words accepting an agent's offer.
pub const ACCEPT: &[&str] = &[
    "yes",
    "yeah",
    "yep",
    "sure",
    "ok",
    "okay",
    "works",
    "sounds good",
    "great",
    "perfect",
    "please do",
    "let's",
    "absolutely",
    "definitely",
];
/// Words declining an agent's offer.
pub const DECLINE: &[&str] = &["no", "not", "don't", "nope", "never"];

/// Analyses the input with the keyword heuristic described in the module documentation.
pub fn analyze_locally(input: &AnalysisInput) -> (LeadAnalysis, AnalysisMeta) {
    let previous = input.recent_previous();
    // Oldest first for scoring; extraction below walks newest first.
    let calls: Vec<Vec<Turn>> = previous
        .iter()
        .map(|p| transcript::turns(&p.transcript))
        .chain(std::iter::once(transcript::turns(&input.transcript)))
        .collect();
    let caller: Vec<&Turn> = calls
        .iter()
        .flatten()
        .filter(|t| t.speaker == Speaker::Caller)
        .collect();
    // Positive phrases are negation-aware; the negative lists are matched as said.
    let count = |list: &'static [&'static str]| transcript::matched(&caller, list, true);
    let count_plain = |list: &'static [&'static str]| transcript::matched(&caller, list, false);

    let cta = |list: &'static [&'static str]| {
        !count(list).is_empty()
            || calls
                .iter()
                .any(|turns| transcript::accepted_offer(turns, list))
    };
    let (pricing, demo, followup, sample, human) = (
        cta(CTA_PRICING),
        cta(CTA_DEMO),
        cta(CTA_FOLLOWUP),
        cta(CTA_SAMPLE),
        cta(CTA_HUMAN),
    );

    let newest_first: Vec<&Vec<Turn>> = calls.iter().rev().collect();
    let email = transcript::find_email(&newest_first, Speaker::Caller);
    let company = transcript::find_after(&newest_first, transcript::COMPANY_CUES, 4);
    let fit_bonus = i32::from(email.is_some() || company.is_some());
    let email = email
        .or_else(|| transcript::find_email(&newest_first, Speaker::Agent))
        .or_else(|| {
            input
                .contact
                .email
                .clone()
                .filter(|e| is_plausible_email(e))
        })
        .or_else(|| {
            previous
                .iter()
                .rev()
                .find_map(|p| p.analysis.as_ref()?.extracted_email.clone())
        });
    let name = transcript::find_after(&newest_first, transcript::NAME_CUES, 2)
        .or_else(|| input.contact.name.clone())
        .or_else(|| {
            previous
                .iter()
                .rev()
                .find_map(|p| p.analysis.as_ref()?.extracted_name.clone())
        });
    let company = company
        .or_else(|| input.contact.company.clone())
        .or_else(|| {
            previous
                .iter()
                .rev()
                .find_map(|p| p.analysis.as_ref()?.company_name.clone())
        });

    let (pos, neg) = (count(INTENT_POSITIVE), count_plain(INTENT_NEGATIVE));
    let intent = clamp(len(&pos).min(3) + i32::from(pricing || demo || sample) - 3 * len(&neg));
    let (u_high, u_med, u_low) = (
        count(URGENCY_HIGH),
        count(URGENCY_MEDIUM),
        count_plain(URGENCY_LOW),
    );
    let urgency = clamp(2 * len(&u_high) + len(&u_med) - 2 * len(&u_low) + i32::from(demo));
    let (b_pos, b_neg) = (count(BUDGET_POSITIVE), count_plain(BUDGET_NEGATIVE));
    let budget = clamp(2 + len(&b_pos) - 2 * len(&b_neg));
    let (f_pos, f_neg) = (count(FIT_POSITIVE), count_plain(FIT_NEGATIVE));
    let fit = clamp(1 + len(&f_pos).min(3) + fit_bonus - 2 * len(&f_neg));
    let turns = caller.iter().filter(|t| !t.text.trim().is_empty()).count();
    let words: usize = caller
        .iter()
        .map(|t| t.text.split_whitespace().count())
        .sum();
    let questions = caller.iter().any(|t| t.text.contains('?'));
    let engagement = clamp(
        i32::try_from(turns / 2).unwrap_or(i32::MAX).min(2)
            + i32::from(words >= 20)
            + i32::from(words >= 60)
            + i32::from(questions),
    );

    let weighted = 30 * intent + 20 * urgency + 15 * budget + 15 * fit + 20 * engagement;
    let total = ((weighted + 2) / 5).clamp(0, MAX_TOTAL_SCORE);
    let tag = if !neg.is_empty() && pos.is_empty() {
        LeadStatusTag::Cold
    } else if total >= 70 {
        LeadStatusTag::Hot
    } else if total >= 40 {
        LeadStatusTag::Warm
    } else {
        LeadStatusTag::Cold
    };

    let mut actions = Vec::new();
    for (set, text) in [
        (pricing, "asked about pricing"),
        (demo, "wants a demo"),
        (followup, "asked for a follow-up"),
        (sample, "asked for a sample or trial"),
        (human, "asked for a human"),
    ] {
        if set {
            actions.push(text);
        }
    }
    let budget_label = if !b_neg.is_empty() {
        "price_sensitive"
    } else if !b_pos.is_empty() {
        "budget_available"
    } else if pricing {
        "pricing_requested"
    } else {
        "not_discussed"
    };

    let mut reasoning = Map::new();
    let mut why = |key: &str, text: String| {
        reasoning.insert(key.to_owned(), Value::String(text));
    };
    why("method", format!(
        "Local keyword heuristic, not an LLM (OPENAI_API_KEY is unset): scores come from phrases in the caller's words across {} call(s); see the calltrail-analysis `local` module for the rules.",
        calls.len()
    ));
    why(
        "intent",
        format!(
            "{intent}/5: positive {}; negative {}.",
            list(&pos),
            list(&neg)
        ),
    );
    why(
        "urgency",
        format!(
            "{urgency}/5: pressing {}; near-term {}; no hurry {}{}.",
            list(&u_high),
            list(&u_med),
            list(&u_low),
            if demo { "; demo agreed" } else { "" }
        ),
    );
    why(
        "budget",
        format!(
            "{budget}/5 ({budget_label}): available {}; constrained {}.",
            list(&b_pos),
            list(&b_neg)
        ),
    );
    why(
        "fit",
        format!(
            "{fit}/5: business signals {}; poor-fit {}{}.",
            list(&f_pos),
            list(&f_neg),
            if fit_bonus > 0 {
                "; contact details given"
            } else {
                ""
            }
        ),
    );
    why(
        "engagement",
        format!(
            "{engagement}/5: {turns} caller turn(s), {words} word(s){}.",
            if questions { ", asked questions" } else { "" }
        ),
    );
    why(
        "cta_behavior",
        if actions.is_empty() {
            "No call-to-action detected.".to_owned()
        } else {
            format!("Caller {}.", actions.join(", "))
        },
    );

    let who: Vec<&str> = [name.as_deref(), company.as_deref()]
        .into_iter()
        .flatten()
        .collect();
    let notification = format!(
        "{} lead (score {total}, local heuristic){}: {}{}",
        tag.as_str(),
        if who.is_empty() {
            String::new()
        } else {
            format!(" {}", who.join(", "))
        },
        if actions.is_empty() {
            "no call-to-action".to_owned()
        } else {
            actions.join(", ")
        },
        email
            .as_deref()
            .map(|e| format!("; e-mail {e}"))
            .unwrap_or_default(),
    );

    let analysis = LeadAnalysis {
        total_score: total,
        intent_level: Some(level(intent, "high", "medium", "low")),
        intent_score: intent,
        urgency_level: Some(level(urgency, "high", "medium", "low")),
        urgency_score: urgency,
        budget_constraint: Some(budget_label.to_owned()),
        budget_score: budget,
        fit_alignment: Some(level(fit, "strong", "partial", "weak")),
        fit_score: fit,
        engagement_health: Some(level(engagement, "high", "medium", "low")),
        engagement_score: engagement,
        lead_status_tag: tag,
        reasoning,
        company_name: company,
        extracted_name: name,
        extracted_email: email,
        smart_notification: Some(notification),
        cta_pricing_clicked: pricing,
        cta_demo_clicked: demo,
        cta_followup_clicked: followup,
        cta_sample_clicked: sample,
        cta_escalated_to_human: human,
        demo_book_datetime: None,
    };
    (analysis, AnalysisMeta::local())
}

fn clamp(score: i32) -> i32 {
    score.clamp(0, MAX_SUB_SCORE)
}

fn len(matches: &[&str]) -> i32 {
    i32::try_from(matches.len()).unwrap_or(i32::MAX)
}

fn list(matches: &[&str]) -> String {
    if matches.is_empty() {
        "none".to_owned()
    } else {
        matches
            .iter()
            .map(|m| format!("\"{m}\""))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn level(score: i32, high: &str, medium: &str, low: &str) -> String {
    match score {
        4.. => high,
        2..=3 => medium,
        _ => low,
    }
    .to_owned()
}
