//! The commands' implementations: `migrate` and `serve` here, and
//! - [`admin`]: `calltrail admin …` (tenants, agents, keys, credits, secrets, the rejected and
//!   conflict logs);
//! - [`analysis`]: `calltrail analysis retry`;
//! - [`reconcile`]: `calltrail reconcile`, one reconciliation run now;
//! - [`replay`]: `calltrail replay` with its progress bar and summary.

pub mod admin;
pub mod analysis;
pub mod reconcile;
pub mod replay;

use anyhow::Context;
use calltrail_eventlog::{ConnectOptions, EventLog};
use calltrail_projections::ReadStore;

use crate::cli::ServeArgs;
use crate::startup::{Application, Settings};

/// Checks, before a command starts, that the database answers and (with `schema`) has been
/// migrated: one sentence naming the server and the cause otherwise, at once (no pool wait,
/// no retries), the same for every command.
pub async fn check_database(url: &str, schema: bool) -> anyhow::Result<()> {
    let store = ReadStore::connect(url, 1)?;
    if let Err(error) = store.ping().await {
        let servers = store.servers();
        let at = match servers.as_slice() {
            [] => String::new(),
            [one] => format!(" at {one}"),
            many => format!(" at any of {}", many.join(", ")),
        };
        anyhow::bail!("cannot reach the database{at}: {}", root_cause(&error));
    }
    if schema && !store.has_schema().await? {
        anyhow::bail!("the database has no calltrail schema: run `calltrail migrate`");
    }
    Ok(())
}

/// The innermost cause of an error, as a sentence fragment (`connection refused`,
/// `password authentication failed for user "x"`).
fn root_cause(error: &(dyn std::error::Error + 'static)) -> String {
    let mut cause = error;
    while let Some(source) = cause.source() {
        cause = source;
    }
    // The drivers' texts nest their causes (`cannot open a connection: error connecting to
    // server: Connection refused (os error 111)`): the last part is the cause itself.
    let text = cause.to_string();
    let text = text.rsplit(": ").next().unwrap_or(&text).to_owned();
    // `Connection refused (os error 111)` → `connection refused`.
    let text = match text.rfind(" (os error ") {
        Some(at) if text.ends_with(')') => text[..at].to_owned(),
        _ => text,
    };
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_lowercase().chain(chars).collect(),
        None => text,
    }
}

/// `calltrail migrate`.
pub async fn migrate(url: &str) -> anyhow::Result<()> {
    let log = EventLog::connect(url, &ConnectOptions::default())?;
    log.migrate().await.context("could not apply migrations")?;
    log.close().await;
    tracing::info!("migrations applied");
    Ok(())
}

/// `calltrail serve`: runs until SIGTERM or ctrl-c, then shuts down gracefully.
pub async fn serve(url: &str, args: ServeArgs) -> anyhow::Result<()> {
    let settings = Settings::from_serve_args(url, &args)?;
    crate::startup::raise_open_files_limit(settings.http_workers);
    let app = Application::build(settings).await?;
    let shutdown = app.shutdown_token();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::info!("shutdown requested");
        shutdown.cancel();
    });
    app.run_until_stopped().await
}

async fn wait_for_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Prints one JSON line on stdout.
pub(crate) fn print_json(value: &impl serde::Serialize) {
    match serde_json::to_string(value) {
        Ok(line) => println!("{line}"),
        Err(error) => eprintln!("calltrail: cannot print JSON: {error}"),
    }
}
