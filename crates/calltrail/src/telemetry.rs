//! Tracing set-up: human-readable on a terminal, JSON lines otherwise; filter from `RUST_LOG`.
//!
//! actix-http refuses some requests itself, before any route runs (a request line longer
//! than 64 KiB, a head beyond its buffer, bytes that are not HTTP), and logs each as an ERROR
//! of its connection dispatcher. Those are the client's mistakes: they are logged here as one
//! WARN line instead (target `calltrail::http`), never as an ERROR.

use std::io::{IsTerminal, Write};
use std::sync::Mutex;

use indicatif::ProgressBar;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{filter, EnvFilter, Layer};

/// The target of actix-http's per-connection errors.
const ACTIX_DISPATCHER: &str = "actix_http::h1::dispatcher";

/// Installs the global subscriber (logs go to stderr so stdout stays machine-readable).
pub fn init() {
    let env = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let format = if std::io::stderr().is_terminal() {
        tracing_subscriber::fmt::layer()
            .with_writer(|| AboveTheBar(Vec::new()))
            .boxed()
    } else {
        tracing_subscriber::fmt::layer()
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .with_writer(std::io::stderr)
            .boxed()
    };
    let installed = tracing_subscriber::registry()
        .with(env)
        .with(format.with_filter(filter::filter_fn(|meta| !is_actix_refusal(meta))))
        .with(ActixRefusalsAsWarnings)
        .try_init();
    // A subscriber already set (e.g. by a test harness) is fine.
    drop(installed);
}

/// An ERROR of actix-http's dispatcher: a connection it gave up on (a malformed request, a
/// client gone), not a failure of calltrail's.
fn is_actix_refusal(meta: &Metadata<'_>) -> bool {
    *meta.level() == Level::ERROR && meta.target() == ACTIX_DISPATCHER
}

/// Logs each of actix-http's dispatcher ERRORs again as a WARN of `calltrail::http`.
struct ActixRefusalsAsWarnings;

impl<S: Subscriber> Layer<S> for ActixRefusalsAsWarnings {
    fn on_event(&self, event: &Event<'_>, _ctx: Context<'_, S>) {
        if !is_actix_refusal(event.metadata()) {
            return;
        }
        let mut message = Message(String::new());
        event.record(&mut message);
        tracing::warn!(
            target: "calltrail::http",
            reason = %message.0,
            "a request was refused before routing (malformed or too large) or its connection failed"
        );
    }
}

/// The `message` field of an event, as text.
struct Message(String);

impl Visit for Message {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            value.clone_into(&mut self.0);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.0 = format!("{value:?}");
        }
    }
}

/// The progress bar on the terminal, if one is drawn: log lines are printed above it.
static PROGRESS_BAR: Mutex<Option<ProgressBar>> = Mutex::new(None);

/// Prints the terminal's log lines above `bar` while it is shown (`None` once it is cleared),
/// so that no line is glued to it or overwritten.
pub fn log_above(bar: Option<ProgressBar>) {
    if let Ok(mut shown) = PROGRESS_BAR.lock() {
        *shown = bar;
    }
}

/// One formatted log line for the terminal, written out when dropped (above the progress bar
/// when one is shown).
struct AboveTheBar(Vec<u8>);

impl Write for AboveTheBar {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for AboveTheBar {
    fn drop(&mut self) {
        let bar = PROGRESS_BAR.lock().ok().and_then(|shown| shown.clone());
        let line = std::mem::take(&mut self.0);
        let write = || {
            let _ = std::io::stderr().write_all(&line);
        };
        match bar {
            Some(bar) => bar.suspend(write),
            None => write(),
        }
    }
}
