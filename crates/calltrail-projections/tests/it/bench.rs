//! Replay throughput on a generated log (ignored by default; run with
//! `REPLAY_BENCH_EVENTS=200000 cargo test --release -p calltrail-projections --test it -- --ignored bench --nocapture`).

use std::time::Instant;

use calltrail_projections::{replay, ReplayOptions};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::support::{fixture_as, fixture_bytes, TestApp};

#[tokio::test]
#[ignore = "benchmark"]
async fn bench_replay_throughput() {
    let events: usize = std::env::var("REPLAY_BENCH_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100_000);
    let app = TestApp::new().await;
    let tenants: Vec<Uuid> = vec![
        app.user("a@example.com").await,
        app.user("b@example.com").await,
    ];
    let (client, connection) = tokio_postgres::connect(app.db.url(), tokio_postgres::NoTls)
        .await
        .unwrap();
    tokio::spawn(connection);

    let names = [
        "01-initiated",
        "02-ringing",
        "03-in-progress",
        "04-call-disconnected",
        "05-completed",
    ];
    let payloads: Vec<String> = names
        .iter()
        .map(|n| String::from_utf8(fixture_bytes("success", n)).unwrap())
        .collect();
    let started = Instant::now();
    let mut written = 0;
    let mut call = 0;
    while written < events {
        let (mut tenant, mut stream, mut kind, mut occurred, mut data, mut payload, mut hash) =
            (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
        while tenant.len() < 5000 && written < events {
            let id = format!("bench-{call}");
            let phone = format!("+1415{:07}", call % 50_000);
            for (i, name) in names.iter().enumerate() {
                let event = fixture_as("success", name, &id, Some(&phone));
                tenant.push(tenants[call % 2]);
                stream.push(id.clone());
                kind.push(event.status.as_str().to_owned());
                occurred.push(event.occurred_at);
                data.push(serde_json::to_string(&event).unwrap());
                payload.push(payloads[i].clone());
                hash.push(Sha256::digest(format!("{id}{name}")).to_vec());
                written += 1;
            }
            call += 1;
        }
        client
            .execute(
                "INSERT INTO events (tenant_id, provider, stream_id, event_type, schema_version,
                        occurred_at, data, payload, payload_hash)
                 SELECT t, 'bolna', s, k, 1, o, d::jsonb, p::jsonb, h
                   FROM unnest($1::uuid[], $2::text[], $3::text[], $4::timestamptz[], $5::text[],
                               $6::text[], $7::bytea[]) AS u(t, s, k, o, d, p, h)",
                &[&tenant, &stream, &kind, &occurred, &data, &payload, &hash],
            )
            .await
            .unwrap();
    }
    client.batch_execute("VACUUM ANALYZE events").await.unwrap();
    eprintln!(
        "generated {written} events in {:.1}s",
        started.elapsed().as_secs_f64()
    );

    let batch_size = std::env::var("REPLAY_BENCH_BATCH")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(10_000);
    let summary = replay(
        &app.log,
        &app.store,
        ReplayOptions {
            batch_size,
            ..ReplayOptions::default()
        },
        |_, _| {},
    )
    .await
    .unwrap();
    eprintln!("replay: {}", serde_json::to_string(&summary).unwrap());
}
