//! The worker loop against an in-memory queue and store, and the mock Responses API server.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use calltrail_analysis::worker::{Job, StoreError};
use calltrail_analysis::{
    analyze_locally, Backoff, JobContext, JobQueue, LeadAnalyzer, OpenAiClient, PromptIds,
    ResultStore, Worker, WorkerConfig,
};
use calltrail_core::{AnalysisEvent, AnalysisKind, PreviousCall};
use calltrail_testkit::responses::{Behaviour, MockResponses};
use tokio::sync::oneshot;

use crate::support::{bolna_input, config, PROMPT};

const COMPLETE_PROMPT: &str = "pmpt_complete01";

#[derive(Debug, Clone)]
struct FakeJob {
    kind: AnalysisKind,
    execution_id: String,
    attempts: u32,
}

impl Job for FakeJob {
    fn kind(&self) -> AnalysisKind {
        self.kind
    }
    fn execution_id(&self) -> &str {
        &self.execution_id
    }
    fn attempts(&self) -> u32 {
        self.attempts
    }
}

#[derive(Default)]
struct State {
    queue: VecDeque<FakeJob>,
    context: Option<JobContext>,
    already_recorded: bool,
    recorded: Vec<AnalysisEvent>,
    completed: usize,
    retried: usize,
    failed: Vec<String>,
    released: usize,
    /// Delays asked of `retry_later`, in order.
    retry_delays: Vec<Duration>,
    /// Claims still to fail, then claims that did.
    claim_failures: usize,
    failed_claims: usize,
    /// Records still to fail, then records that did.
    record_failures: usize,
    failed_records: usize,
}

/// Queue and store in one, shared with the test.
#[derive(Clone, Default)]
struct Fake(Arc<Mutex<State>>);

impl Fake {
    fn with(job: AnalysisKind, context: JobContext) -> Self {
        let fake = Fake::default();
        {
            let mut s = fake.0.lock().unwrap();
            s.queue.push_back(FakeJob {
                kind: job,
                execution_id: "exec-1".into(),
                attempts: 0,
            });
            s.context = Some(context);
        }
        fake
    }

    fn state<T>(&self, f: impl FnOnce(&State) -> T) -> T {
        f(&self.0.lock().unwrap())
    }
}

impl JobQueue for Fake {
    type Job = FakeJob;
    async fn claim(&self, _lease: Duration) -> Result<Option<FakeJob>, StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.claim_failures > 0 {
            s.claim_failures -= 1;
            s.failed_claims += 1;
            return Err("the job table is unreachable".into());
        }
        Ok(s.queue.pop_front().map(|mut job| {
            job.attempts += 1;
            job
        }))
    }
    async fn extend(&self, _job: &FakeJob, _lease: Duration) -> Result<bool, StoreError> {
        Ok(true)
    }
    async fn complete(&self, _job: &FakeJob) -> Result<(), StoreError> {
        self.0.lock().unwrap().completed += 1;
        Ok(())
    }
    async fn retry_later(
        &self,
        job: &FakeJob,
        delay: Duration,
        _r: &str,
    ) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        s.retried += 1;
        s.retry_delays.push(delay);
        s.queue.push_back(job.clone());
        Ok(())
    }
    async fn fail(&self, _job: &FakeJob, reason: &str) -> Result<(), StoreError> {
        self.0.lock().unwrap().failed.push(reason.to_owned());
        Ok(())
    }
    async fn release(&self, _job: &FakeJob) -> Result<(), StoreError> {
        self.0.lock().unwrap().released += 1;
        Ok(())
    }
}

impl ResultStore<FakeJob> for Fake {
    async fn already_recorded(&self, _job: &FakeJob) -> Result<bool, StoreError> {
        Ok(self.0.lock().unwrap().already_recorded)
    }
    async fn load_context(
        &self,
        _job: &FakeJob,
        _max: usize,
    ) -> Result<Option<JobContext>, StoreError> {
        Ok(self.0.lock().unwrap().context.clone())
    }
    async fn record(&self, _job: &FakeJob, event: AnalysisEvent) -> Result<(), StoreError> {
        let mut s = self.0.lock().unwrap();
        if s.record_failures > 0 {
            s.record_failures -= 1;
            s.failed_records += 1;
            return Err("the event log is unreachable".into());
        }
        s.recorded.push(event);
        Ok(())
    }
}

fn context(previous: usize) -> JobContext {
    let mut input = bolna_input();
    let (analysis, meta) = analyze_locally(&input);
    input.previous = (0..previous)
        .map(|i| PreviousCall {
            execution_id: format!("earlier-{i}"),
            transcript: format!("user: earlier call number {i}"),
            call_date: None,
            call_duration_seconds: None,
            analysis: Some(analysis.clone()),
        })
        .collect();
    JobContext {
        input,
        prompts: PromptIds {
            individual: Some(PROMPT.to_owned()),
            complete: Some(COMPLETE_PROMPT.to_owned()),
        },
        current: Some((analysis, meta)),
        other_analysed_calls: u32::try_from(previous).unwrap(),
    }
}

fn fast() -> WorkerConfig {
    WorkerConfig {
        poll_interval: Duration::from_millis(5),
        lease: Duration::from_secs(5),
        max_attempts: 2,
        retry: Backoff::new(Duration::from_millis(1), Duration::from_millis(5)),
        shutdown_grace: Duration::from_millis(50),
        ..WorkerConfig::default()
    }
}

/// Runs a worker until `done` holds for the fake, then stops it.
async fn run_until(
    fake: &Fake,
    analyzer: LeadAnalyzer,
    config: WorkerConfig,
    done: impl Fn(&State) -> bool,
) {
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new("test", fake.clone(), fake.clone(), analyzer, config);
    let task = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while !fake.state(&done) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the worker did not get there"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
}

fn openai(mock: &MockResponses) -> LeadAnalyzer {
    LeadAnalyzer::OpenAi(OpenAiClient::new(config(mock.base_url())).unwrap())
}

fn recorded(event: &AnalysisEvent) -> &calltrail_core::AnalysisRecorded {
    match event {
        AnalysisEvent::Recorded(r) => r,
        AnalysisEvent::Failed(f) => panic!("failed: {f:?}"),
    }
}

#[tokio::test]
async fn an_individual_analysis_is_one_request_with_the_user_s_prompt() {
    let mock = MockResponses::start().await;
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    run_until(&fake, openai(&mock), fast(), |s| s.completed == 1).await;
    let event = fake.state(|s| s.recorded[0].clone());
    let r = recorded(&event);
    assert_eq!(
        (r.kind, r.previous_calls_analyzed),
        (AnalysisKind::Individual, 0)
    );
    assert_eq!(r.phone_number.as_deref(), Some("+14155550132"));
    assert_eq!(mock.requests()[0].prompt_id(), Some(PROMPT));
}

#[tokio::test]
async fn the_first_call_of_a_contact_needs_no_second_request() {
    let mock = MockResponses::start().await;
    let fake = Fake::with(AnalysisKind::Complete, context(0));
    run_until(&fake, openai(&mock), fast(), |s| s.completed == 1).await;
    let event = fake.state(|s| s.recorded[0].clone());
    let r = recorded(&event);
    assert_eq!(
        (r.kind, r.previous_calls_analyzed),
        (AnalysisKind::Complete, 1)
    );
    assert_eq!(r.meta.tokens_used, None);
    assert_eq!(mock.request_count(), 0);
}

#[tokio::test]
async fn a_later_call_sends_every_transcript_with_the_complete_prompt() {
    let mock = MockResponses::start().await;
    let fake = Fake::with(AnalysisKind::Complete, context(2));
    run_until(&fake, openai(&mock), fast(), |s| s.completed == 1).await;
    let event = fake.state(|s| s.recorded[0].clone());
    assert_eq!(recorded(&event).previous_calls_analyzed, 3);
    let request = &mock.requests()[0];
    assert_eq!(request.prompt_id(), Some(COMPLETE_PROMPT));
    let text = request.input_text();
    assert!(text.contains("earlier call number 0") && text.contains("earlier call number 1"));
}

#[tokio::test]
async fn a_recorded_result_is_not_paid_for_again() {
    let mock = MockResponses::start().await;
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    fake.0.lock().unwrap().already_recorded = true;
    run_until(&fake, openai(&mock), fast(), |s| s.completed == 1).await;
    assert_eq!(mock.request_count(), 0);
    assert!(fake.state(|s| s.recorded.is_empty()));
}

#[tokio::test]
async fn no_prompt_id_anywhere_fails_at_once_without_a_request() {
    let mock = MockResponses::start().await;
    let mut ctx = context(0);
    ctx.prompts = PromptIds::default();
    let fake = Fake::with(AnalysisKind::Individual, ctx);
    run_until(&fake, openai(&mock), fast(), |s| !s.failed.is_empty()).await;
    let event = fake.state(|s| s.recorded[0].clone());
    let AnalysisEvent::Failed(failed) = event else {
        panic!("{event:?}");
    };
    assert_eq!(failed.code, "missing_prompt_id");
    assert!(failed.message.contains("OPENAI_INDIVIDUAL_PROMPT_ID"));
    assert_eq!(mock.request_count(), 0);

    // The system-wide prompt id fills in.
    let mut ctx = context(0);
    ctx.prompts = PromptIds::default();
    let fake = Fake::with(AnalysisKind::Individual, ctx);
    let mut config = fast();
    config.system_prompts.individual = Some("pmpt_system01".into());
    run_until(&fake, openai(&mock), config, |s| s.completed == 1).await;
    assert_eq!(mock.requests()[0].prompt_id(), Some("pmpt_system01"));
}

#[tokio::test]
async fn transient_failures_run_again_up_to_the_attempt_limit() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::ServerError);
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    run_until(&fake, openai(&mock), fast(), |s| !s.failed.is_empty()).await;
    let (delays, reason) = fake.state(|s| (s.retry_delays.clone(), s.failed[0].clone()));
    assert_eq!(
        delays,
        [Duration::from_millis(1)],
        "one retry, the backoff's first delay"
    );
    assert!(reason.contains("gave up after 2 attempts"), "{reason}");
    // 2 job attempts × (1 request + 3 client retries).
    assert_eq!(mock.request_count(), 8);
}

#[tokio::test]
async fn shutdown_puts_a_hanging_job_back() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::Hang(Duration::from_secs(30)));
    let mut client = config(mock.base_url());
    client.timeout = Duration::from_secs(20);
    let analyzer = LeadAnalyzer::OpenAi(OpenAiClient::new(client).unwrap());
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    let (stop, stopped) = oneshot::channel::<()>();
    let worker = Worker::new("test", fake.clone(), fake.clone(), analyzer, fast());
    let task = tokio::spawn(worker.run(async move {
        let _ = stopped.await;
    }));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while mock.request_count() == 0 {
        assert!(tokio::time::Instant::now() < deadline);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    stop.send(()).unwrap();
    task.await.unwrap();
    assert_eq!(fake.state(|s| (s.released, s.completed)), (1, 0));
}

#[tokio::test]
async fn the_local_analyzer_needs_no_prompt() {
    let mut ctx = context(0);
    ctx.prompts = PromptIds::default();
    let fake = Fake::with(AnalysisKind::Individual, ctx);
    run_until(&fake, LeadAnalyzer::Local, fast(), |s| s.completed == 1).await;
    let event = fake.state(|s| s.recorded[0].clone());
    assert_eq!(
        recorded(&event).meta.analyzer,
        calltrail_core::Analyzer::Local
    );
}

#[tokio::test]
async fn later_attempts_wait_longer_up_to_the_cap() {
    let mock = MockResponses::start().await;
    mock.set_default(Behaviour::ServerError);
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    let config = WorkerConfig {
        max_attempts: 5,
        retry: Backoff::new(Duration::from_millis(1), Duration::from_millis(3)),
        ..fast()
    };
    run_until(&fake, openai(&mock), config, |s| !s.failed.is_empty()).await;
    let ms = Duration::from_millis;
    assert_eq!(
        fake.state(|s| s.retry_delays.clone()),
        [ms(1), ms(2), ms(3), ms(3)]
    );
}

#[tokio::test]
async fn a_failed_claim_is_retried_with_backoff() {
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    fake.0.lock().unwrap().claim_failures = 3;
    let started = tokio::time::Instant::now();
    run_until(&fake, LeadAnalyzer::Local, fast(), |s| s.completed == 1).await;
    assert_eq!(fake.state(|s| s.failed_claims), 3);
    // The poll interval (5 ms), doubled after each failure: 5 + 10 + 20 ms at least.
    assert!(started.elapsed() >= Duration::from_millis(35));
}

#[tokio::test]
async fn a_result_that_cannot_be_recorded_yet_is_kept_by_retrying() {
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    fake.0.lock().unwrap().record_failures = 2;
    let started = tokio::time::Instant::now();
    run_until(&fake, LeadAnalyzer::Local, fast(), |s| s.completed == 1).await;
    assert_eq!(fake.state(|s| (s.failed_records, s.recorded.len())), (2, 1));
    // 0.2 s, then 0.4 s: a paid result is not given up on a blip.
    assert!(started.elapsed() >= Duration::from_millis(600));
}

#[tokio::test]
async fn a_result_still_unrecordable_after_five_retries_is_left_to_the_lease() {
    let fake = Fake::with(AnalysisKind::Individual, context(0));
    fake.0.lock().unwrap().record_failures = usize::MAX;
    run_until(&fake, LeadAnalyzer::Local, fast(), |s| {
        s.failed_records == 6
    })
    .await;
    // Stopped right after the sixth failure: a worker still retrying would have put the job
    // back on shutdown (`released`); one that gave up leaves it to its lease.
    let state = fake.state(|s| (s.failed_records, s.completed, s.failed.len(), s.released));
    assert_eq!(
        state,
        (6, 0, 0, 0),
        "1 try + 5 retries, then the job is left alone"
    );
}
