//! The commands' implementations.

pub mod admin;
pub mod analysis;
pub mod replay;

use anyhow::Context;
use calltrail_eventlog::{ConnectOptions, EventLog};

use crate::cli::ServeArgs;
use crate::startup::{Application, Settings};

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
