//! The `analysis` scenario: answered calls analysed by `calltrail serve`'s workers against a
//! local Responses API server with a fixed latency; analyses/s and the queue's drain time.

use std::time::{Duration, Instant};

use calltrail_testkit::{fixtures, MockResponses, TestDb};

use crate::report::Row;
use crate::server::{create_user, Server};

/// Posts `calls` answered calls (each to its own number, so every complete analysis starts from
/// the individual one) and waits until every transcript's analysis is completed.
pub async fn run(calls: usize, workers: usize, latency: Duration) -> anyhow::Result<Row> {
    let db = TestDb::new().await;
    let mock = MockResponses::start().await;
    mock.set_latency(latency);
    let tenant = create_user(db.url()).await?;
    let dir = std::env::var_os("CALLTRAIL_BENCH_DIR")
        .map_or_else(|| "target/bench".into(), std::path::PathBuf::from);
    std::fs::create_dir_all(&dir)?;
    let env = [
        ("OPENAI_API_KEY", "sk-bench-not-a-real-key".to_owned()),
        ("OPENAI_BASE_URL", mock.base_url()),
        (
            "OPENAI_INDIVIDUAL_PROMPT_ID",
            "pmpt_benchindividual".to_owned(),
        ),
        ("OPENAI_COMPLETE_PROMPT_ID", "pmpt_benchcomplete".to_owned()),
        ("CALLTRAIL_ANALYSIS_WORKERS", workers.to_string()),
    ];
    let server = Server::start_with(
        db.url(),
        true,
        &env,
        &dir.join(format!("analysis-w{workers}.serve.log")),
    )
    .await?;

    let template = fixtures::json("bolna/success/05-completed.json");
    let client = reqwest::Client::new();
    let url = format!(
        "http://{}/v1/webhooks/bolna/{}",
        server.addr(),
        tenant.webhook_token
    );
    let started = Instant::now();
    for call in 0..calls {
        let mut body = template.clone();
        let phone = format!("+1415{call:07}");
        fixtures::bolna::as_call(&mut body, &format!("analysis-{call}"), Some(&phone));
        let response = client.post(&url).json(&body).send().await?;
        anyhow::ensure!(
            response.status().as_u16() == 202,
            "webhook answered {}",
            response.status()
        );
    }

    let pool = sqlx::PgPool::connect(db.url()).await?;
    let deadline = Instant::now() + Duration::from_secs(1800);
    loop {
        let done: i64 = sqlx::query_scalar(
            "SELECT count(*) FROM transcripts WHERE analysis_status IN ('completed', 'failed')",
        )
        .fetch_one(&pool)
        .await?;
        if usize::try_from(done)? >= calls {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "only {done} of {calls} analyses finished in 30 minutes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = started.elapsed();
    let failed: i64 =
        sqlx::query_scalar("SELECT count(*) FROM transcripts WHERE analysis_status = 'failed'")
            .fetch_one(&pool)
            .await?;
    pool.close().await;
    server.stop().await?;
    let mut row = Row::new(
        "analysis",
        format!("workers={workers}"),
        calls,
        drain,
        Vec::new(),
    );
    row.details.insert(
        "model_requests".into(),
        serde_json::json!(mock.request_count()),
    );
    row.details
        .insert("failed".into(), serde_json::json!(failed));
    row.details.insert(
        "mock_latency_ms".into(),
        serde_json::json!(latency.as_millis()),
    );
    Ok(row)
}
