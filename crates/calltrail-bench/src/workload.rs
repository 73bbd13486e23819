//! The workload every scenario shares: realistic Bolna call lifecycles built from the fixtures
//! in `fixtures/bolna`, each call with its own execution id and contact number; and for the
//! `mixed` scenario, [`MixedWorkload`]: calls of all five providers out of their fixtures.
//!
//! Each fixture is parsed and normalized once; its text and its normalized `data` are then cut
//! into a [`Template`] around the fixture's own id and phone number, so a million distinct
//! events cost a few string copies each, not a parse and a normalization.

use anyhow::Context;
use calltrail_core::providers::{bolna, Parsed};
use calltrail_core::Provider;
use calltrail_testkit::fixtures;
use chrono::{DateTime, Utc};

/// Distinct contact numbers the calls are spread over.
pub const CONTACTS: u64 = 50_000;

/// What kind of call a lifecycle is. The mix: 70 % answered (5 webhooks; half of them with a
/// transcript), 15 % no answer and 15 % busy (3 webhooks each): 4.4 webhooks a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CallKind {
    /// Answered, transcript in `call-disconnected` and `completed`.
    AnsweredWithTranscript,
    /// Answered, no transcript.
    AnsweredWithoutTranscript,
    /// Not answered.
    NoAnswer,
    /// Busy.
    Busy,
}

impl CallKind {
    /// Every kind, in [`Workload::steps`] order.
    pub const ALL: [CallKind; 4] = [
        CallKind::AnsweredWithTranscript,
        CallKind::AnsweredWithoutTranscript,
        CallKind::NoAnswer,
        CallKind::Busy,
    ];

    /// The kind of call number `call` (deterministic, spread evenly).
    pub fn of_call(call: u64) -> CallKind {
        match mix(call ^ 0x5eed_ca11) % 100 {
            0..=34 => CallKind::AnsweredWithTranscript,
            35..=69 => CallKind::AnsweredWithoutTranscript,
            70..=84 => CallKind::NoAnswer,
            _ => CallKind::Busy,
        }
    }

    /// Whether the call was answered.
    pub fn answered(self) -> bool {
        matches!(
            self,
            CallKind::AnsweredWithTranscript | CallKind::AnsweredWithoutTranscript
        )
    }

    /// Its position in [`CallKind::ALL`].
    pub fn index(self) -> usize {
        match self {
            CallKind::AnsweredWithTranscript => 0,
            CallKind::AnsweredWithoutTranscript => 1,
            CallKind::NoAnswer => 2,
            CallKind::Busy => 3,
        }
    }
}

/// The execution id of call number `call` of run `run`.
pub fn call_id(run: &str, call: u64) -> String {
    format!("bench-{run}-{call:08}")
}

/// The contact number of call number `call` (E.164, same length as the fixtures' numbers).
pub fn phone(call: u64) -> String {
    format!("+1415{:07}", mix(call) % CONTACTS)
}

/// A text with the call's execution id and contact number cut out.
#[derive(Debug, Clone)]
pub struct Template {
    pieces: Vec<Piece>,
    len: usize,
}

#[derive(Debug, Clone)]
enum Piece {
    Text(String),
    Id,
    Phone,
}

impl Template {
    /// Cuts `text` around every occurrence of `id` and `phone`.
    fn cut(text: &str, id: &str, phone: Option<&str>) -> Template {
        let mut pieces = Vec::new();
        let mut rest = text;
        loop {
            let at_id = rest.find(id).map(|i| (i, id.len(), Piece::Id));
            let at_phone = phone.and_then(|p| rest.find(p).map(|i| (i, p.len(), Piece::Phone)));
            let next = match (at_id, at_phone) {
                (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
                (a, b) => a.or(b),
            };
            let Some((at, len, piece)) = next else { break };
            pieces.push(Piece::Text(rest[..at].to_owned()));
            pieces.push(piece);
            rest = &rest[at + len..];
        }
        pieces.push(Piece::Text(rest.to_owned()));
        Template {
            pieces,
            len: text.len(),
        }
    }

    /// Appends the text for one call to `out`.
    pub fn render_into(&self, out: &mut Vec<u8>, id: &str, phone: &str) {
        for piece in &self.pieces {
            out.extend_from_slice(match piece {
                Piece::Text(text) => text.as_bytes(),
                Piece::Id => id.as_bytes(),
                Piece::Phone => phone.as_bytes(),
            });
        }
    }

    /// The text for one call.
    pub fn render(&self, id: &str, phone: &str) -> String {
        let mut out = Vec::with_capacity(self.len + 32);
        self.render_into(&mut out, id, phone);
        // Only UTF-8 text was put together.
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Length of the fixture it was cut from.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether it holds the call's id (a template that does not cannot make distinct events).
    fn has_id(&self) -> bool {
        self.pieces.iter().any(|p| matches!(p, Piece::Id))
    }
}

/// One webhook of a lifecycle.
#[derive(Debug, Clone)]
pub struct Step {
    /// Event type: the normalized status, as the webhook handler stores it.
    pub status: String,
    /// The webhook body.
    pub payload: Template,
    /// The normalized `CallEvent` JSON (the `data` column).
    pub data: Template,
    /// The event time (the payload's `updated_at`).
    pub occurred_at: DateTime<Utc>,
}

/// The lifecycles of every [`CallKind`], ready to render.
#[derive(Debug)]
pub struct Workload {
    kinds: Vec<Vec<Step>>,
}

impl Workload {
    /// Parses and normalizes each fixture once.
    pub fn new() -> anyhow::Result<Workload> {
        let mut kinds = Vec::new();
        for kind in CallKind::ALL {
            let (scenario, transcript) = match kind {
                CallKind::AnsweredWithTranscript => ("bolna/success", true),
                CallKind::AnsweredWithoutTranscript => ("bolna/success", false),
                CallKind::NoAnswer => ("bolna/no-answer", true),
                CallKind::Busy => ("bolna/busy", true),
            };
            let steps = fixtures::files(scenario)
                .into_iter()
                .map(|file| step(&fixtures::text(file), transcript))
                .collect::<anyhow::Result<Vec<_>>>()?;
            kinds.push(steps);
        }
        Ok(Workload { kinds })
    }

    /// The webhooks of a call of this kind, in lifecycle order.
    pub fn steps(&self, kind: CallKind) -> &[Step] {
        self.kinds.get(kind.index()).map_or(&[], Vec::as_slice)
    }
}

/// One fixture as a [`Step`]; without its transcript unless `transcript`.
fn step(fixture: &str, transcript: bool) -> anyhow::Result<Step> {
    let mut value: serde_json::Value =
        serde_json::from_str(fixture).context("a Bolna fixture is not JSON")?;
    let text_of = |key: &str| {
        value
            .get(key)
            .and_then(serde_json::Value::as_str)
            .map(str::to_owned)
    };
    let id = text_of("id").context("a Bolna fixture has no id")?;
    let phone = text_of("user_number");
    let text = match value.get_mut("transcript") {
        Some(t) if !transcript && !t.is_null() => {
            *t = serde_json::Value::Null;
            serde_json::to_string_pretty(&value)?
        }
        _ => fixture.to_owned(),
    };
    let event = bolna::parse(text.as_bytes())
        .context("a Bolna fixture does not parse")?
        .normalize(Utc::now());
    let data = serde_json::to_string(&event)?;
    let step = Step {
        status: event.status.as_str().to_owned(),
        payload: Template::cut(&text, &id, phone.as_deref()),
        data: Template::cut(&data, &id, phone.as_deref()),
        occurred_at: event.occurred_at,
    };
    anyhow::ensure!(
        step.payload.has_id() && step.data.has_id(),
        "the fixture's id {id} is not in its normalized event"
    );
    Ok(step)
}

/// Which webhooks a load generator run posts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mix {
    /// Bolna's lifecycles only (unsigned): the [`CallKind`] mix.
    Bolna,
    /// Calls of all five providers in equal shares, every one but Bolna's signed.
    Mixed,
}

impl std::str::FromStr for Mix {
    type Err = anyhow::Error;
    fn from_str(s: &str) -> anyhow::Result<Self> {
        match s {
            "bolna" => Ok(Mix::Bolna),
            "mixed" => Ok(Mix::Mixed),
            other => anyhow::bail!("unknown mix {other} (bolna or mixed)"),
        }
    }
}

impl Mix {
    /// Its name on the command line.
    pub fn as_str(self) -> &'static str {
        match self {
            Mix::Bolna => "bolna",
            Mix::Mixed => "mixed",
        }
    }
}

/// The signing secret the `mixed` scenario gives its tenant for `provider` (a bench database's
/// made-up value).
pub fn bench_secret(provider: Provider) -> String {
    format!("bench-{provider}-signing-secret")
}

/// One webhook of a [`MixedWorkload`] call.
#[derive(Debug, Clone)]
pub struct MixedStep {
    /// The event type of its key, as the intake stores it.
    pub event_type: String,
    /// The body, around the call's id and contact number.
    pub payload: Template,
    /// Whether the body is a form (Twilio), where the number is percent-encoded.
    pub form: bool,
}

impl MixedStep {
    /// The body for one call.
    pub fn render(&self, id: &str, phone: &str) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.payload.len() + 32);
        if self.form {
            let encoded = phone.replacen('+', "%2B", 1);
            self.payload.render_into(&mut out, id, &encoded);
        } else {
            self.payload.render_into(&mut out, id, phone);
        }
        out
    }
}

/// Whole calls of every provider out of their fixtures: for each, an answered call and a missed
/// one (Bolna no-answer, Vapi no-answer, ElevenLabs initiation failure, Twilio busy, Retell
/// no-answer), 70 % answered.
#[derive(Debug)]
pub struct MixedWorkload {
    /// Per provider of [`Provider::ALL`]: `[answered, missed]`.
    calls: Vec<(Provider, [Vec<MixedStep>; 2])>,
}

impl MixedWorkload {
    /// Parses each fixture once with its provider's own parser.
    pub fn new() -> anyhow::Result<MixedWorkload> {
        let mut calls = Vec::new();
        for &provider in Provider::ALL {
            let (answered, missed) = match provider {
                Provider::Bolna => (
                    fixtures::scenario("bolna/success"),
                    fixtures::scenario("bolna/no-answer"),
                ),
                Provider::Vapi => (fixtures::vapi::answered(), fixtures::vapi::no_answer()),
                Provider::ElevenLabs => (
                    fixtures::elevenlabs::answered(),
                    vec![fixtures::elevenlabs::initiation_failure(
                        "conv_bench_missed",
                        Some("no_answer"),
                    )],
                ),
                Provider::Twilio => (fixtures::twilio::answered(), fixtures::twilio::busy()),
                Provider::Retell => (fixtures::retell::answered(), fixtures::retell::no_answer()),
            };
            let steps = |bodies: Vec<Vec<u8>>| -> anyhow::Result<Vec<MixedStep>> {
                bodies
                    .iter()
                    .map(|body| mixed_step(provider, body))
                    .collect()
            };
            calls.push((provider, [steps(answered)?, steps(missed)?]));
        }
        Ok(MixedWorkload { calls })
    }

    /// The provider and webhooks of call number `call` (deterministic, spread evenly).
    pub fn call(&self, call: u64) -> (Provider, &[MixedStep]) {
        let count = u64::try_from(self.calls.len()).unwrap_or(1).max(1);
        let index = usize::try_from(mix(call ^ 0xC0FF_EE00) % count).unwrap_or(0);
        let answered = mix(call ^ 0x5eed_ca11) % 100 < 70;
        match self.calls.get(index) {
            Some((provider, [answered_steps, missed])) => {
                let steps = if answered { answered_steps } else { missed };
                (*provider, steps.as_slice())
            }
            None => (Provider::Bolna, &[]),
        }
    }
}

/// One provider webhook as a [`MixedStep`]: its key's type from the provider's parser, its
/// text cut around the call id and contact number the parser found.
fn mixed_step(provider: Provider, body: &[u8]) -> anyhow::Result<MixedStep> {
    let parsed = provider
        .webhooks()
        .parse(body, Utc::now())
        .with_context(|| format!("a {provider} fixture does not parse"))?;
    let Parsed::Event(parsed) = parsed else {
        anyhow::bail!("a {provider} fixture is a message that is not stored");
    };
    let text = std::str::from_utf8(body).context("a fixture is not UTF-8")?;
    let form = provider == Provider::Twilio;
    let phone = parsed.event.phone_number.as_ref().map(|p| {
        let p = p.as_str();
        if form {
            p.replacen('+', "%2B", 1)
        } else {
            p.to_owned()
        }
    });
    let payload = Template::cut(text, &parsed.event.execution_id, phone.as_deref());
    anyhow::ensure!(
        payload.has_id(),
        "a {provider} fixture does not hold its call id"
    );
    Ok(MixedStep {
        event_type: parsed.event_type,
        payload,
        form,
    })
}

/// A small deterministic generator (SplitMix64): reproducible runs without a dependency.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    /// A generator from a seed.
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    /// The next number.
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        let n64 = u64::try_from(n).unwrap_or(u64::MAX);
        if n64 == 0 {
            return 0;
        }
        usize::try_from(self.next_u64() % n64).unwrap_or(0)
    }

    /// True with probability `per_mille` / 1000.
    pub fn per_mille(&mut self, per_mille: u64) -> bool {
        self.next_u64() % 1000 < per_mille
    }

    /// Shuffles `items` in place (Fisher–Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = self.below(i + 1);
            items.swap(i, j);
        }
    }
}

/// SplitMix64's finalizer: a well-spread hash of `x`.
pub fn mix(x: u64) -> u64 {
    let mut z = x;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]
    use super::*;

    #[test]
    fn rendered_events_carry_the_new_id_and_phone() {
        let workload = Workload::new().unwrap();
        for kind in CallKind::ALL {
            for step in workload.steps(kind) {
                let body = step.payload.render("bench-x-00000001", "+14150000042");
                let parsed = bolna::parse(body.as_bytes()).unwrap();
                assert_eq!(parsed.execution_id(), "bench-x-00000001");
                assert_eq!(parsed.status().as_str(), step.status);
                let data = step.data.render("bench-x-00000001", "+14150000042");
                let event = parsed.normalize(Utc::now());
                let expected: serde_json::Value =
                    serde_json::from_str(&serde_json::to_string(&event).unwrap()).unwrap();
                let got: serde_json::Value = serde_json::from_str(&data).unwrap();
                assert_eq!(got, expected, "{kind:?} {}", step.status);
            }
        }
        assert_eq!(workload.steps(CallKind::AnsweredWithTranscript).len(), 5);
        assert_eq!(workload.steps(CallKind::Busy).len(), 3);
    }

    #[test]
    fn mixed_calls_are_every_provider_each_parsing_as_its_own_call() {
        let workload = MixedWorkload::new().unwrap();
        let mut seen = std::collections::BTreeMap::new();
        for call in 0..500 {
            let (provider, steps) = workload.call(call);
            *seen.entry(provider).or_insert(0) += 1;
            assert!(!steps.is_empty());
            let id = call_id("x", call);
            for step in steps {
                let body = step.render(&id, "+14150000042");
                let Parsed::Event(parsed) = provider.webhooks().parse(&body, Utc::now()).unwrap()
                else {
                    panic!("{provider}: not an event");
                };
                assert_eq!(parsed.event.execution_id, id, "{provider}");
                assert_eq!(parsed.event_type, step.event_type, "{provider}");
                assert_eq!(
                    parsed.event.phone_number.map(|p| p.as_str().to_owned()),
                    Some("+14150000042".to_owned()),
                    "{provider} {}",
                    step.event_type
                );
            }
        }
        assert_eq!(seen.len(), 5, "{seen:?}");
        assert!(seen.values().all(|n| *n > 60), "{seen:?}");
    }

    #[test]
    fn answered_calls_without_transcript_have_none() {
        let workload = Workload::new().unwrap();
        let last = workload
            .steps(CallKind::AnsweredWithoutTranscript)
            .last()
            .unwrap();
        assert!(!last.data.render("i", "+14150000001").contains("assistant:"));
        let last = workload
            .steps(CallKind::AnsweredWithTranscript)
            .last()
            .unwrap();
        assert!(last.data.render("i", "+14150000001").contains("assistant:"));
    }
}
