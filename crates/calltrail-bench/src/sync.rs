//! The `sync` scenario: what a 2xx on two machines costs. Ingest at 64 connections (no
//! projector) against a primary with a streaming standby on this machine, which `scripts/bench`
//! starts with `scripts/lib/replication.sh` and names in `CALLTRAIL_BENCH_PAIR_URL`: first with
//! the standby asynchronous (`synchronous_standby_names = ''`), then synchronous with
//! `synchronous_commit = on` (the standby has flushed the commit) and `remote_apply` (the
//! standby has applied it, so a read there sees it).

use std::str::FromStr;
use std::time::{Duration, Instant};

use anyhow::Context;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use crate::ingest;
use crate::loadgen::ClientKind;
use crate::report::Report;

/// Connections of every `sync` level.
const CONNECTIONS: usize = 64;

/// Runs the three levels; every row is an ingest row renamed `sync`.
pub async fn run(webhooks: usize, client: ClientKind, report: &mut Report) -> anyhow::Result<()> {
    let url = std::env::var("CALLTRAIL_BENCH_PAIR_URL").context(
        "the sync scenario needs a primary with a standby: run it through scripts/bench, which \
         starts them and sets CALLTRAIL_BENCH_PAIR_URL",
    )?;
    for (names, commit, label) in [
        ("", "on", "standby=async"),
        ("calltrail_standby", "on", "standby=sync commit=on"),
        (
            "calltrail_standby",
            "remote_apply",
            "standby=sync commit=remote_apply",
        ),
    ] {
        configure(&url, names, commit).await?;
        // ingest::level makes its database on the server of DATABASE_URL.
        let previous = std::env::var("DATABASE_URL").ok();
        std::env::set_var("DATABASE_URL", &url);
        let row = ingest::level(ingest::Level {
            connections: CONNECTIONS,
            webhooks,
            projector: false,
            client,
            mix: crate::workload::Mix::Bolna,
            log_level: None,
        })
        .await;
        match previous {
            Some(previous) => std::env::set_var("DATABASE_URL", previous),
            None => std::env::remove_var("DATABASE_URL"),
        }
        let mut row = row?;
        row.scenario = "sync".to_owned();
        row.params = format!("c={CONNECTIONS} {label}");
        report.push(row);
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    Ok(())
}

/// Sets the primary's synchronous standby and commit level, reloads, and waits until the
/// standby's `sync_state` says so.
async fn configure(url: &str, names: &str, commit: &str) -> anyhow::Result<()> {
    let admin = PgConnectOptions::from_str(url)?.database("postgres");
    let mut conn = admin.connect().await.context("cannot reach the primary")?;
    for setting in [
        format!("ALTER SYSTEM SET synchronous_standby_names = '{names}'"),
        format!("ALTER SYSTEM SET synchronous_commit = '{commit}'"),
    ] {
        sqlx::query(&setting).execute(&mut conn).await?;
    }
    sqlx::query("SELECT pg_reload_conf()")
        .execute(&mut conn)
        .await?;
    let want = if names.is_empty() { "async" } else { "sync" };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state: Option<String> = sqlx::query_scalar(
            "SELECT sync_state FROM pg_stat_replication
              WHERE application_name = 'calltrail_standby' AND state = 'streaming'",
        )
        .fetch_optional(&mut conn)
        .await?;
        let commit_now: String = sqlx::query_scalar("SHOW synchronous_commit")
            .fetch_one(&mut conn)
            .await?;
        if state.as_deref() == Some(want) && commit_now == commit {
            break;
        }
        anyhow::ensure!(
            Instant::now() < deadline,
            "the standby is {state:?}, not {want}, 30 s after the reload"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    conn.close().await?;
    Ok(())
}
