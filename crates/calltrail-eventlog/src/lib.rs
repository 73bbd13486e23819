//! calltrail-eventlog — the write side: the immutable `events` table and everything that touches it.
//!
//! Modules:
//! - [`append`]: the group-commit [`Appender`]: concurrent appends become one multi-row insert and one commit.
//! - [`compact`]: the compact binary copy of an event's `data` (`events.compact`) and its checks.
//! - [`read`]: gap-safe reads in `(txid, position)` order and the [`Checkpoint`] pair.
//! - [`notify`]: LISTEN/NOTIFY wake-ups with a polling fallback.
//! - [`lookup`]: key lookups: whether an event exists, which provider streams carry some ids.
//! - [`payloads`]: raw payloads as received, by position (the console's call page).
//! - [`rejected`]: the log of refused webhook requests.
//! - [`conflicts`]: conflicting re-deliveries (same key, different body) and what differs.
//! - `connect` (private): `DATABASE_URL` with one or several hosts, and following a failover.
//! - [`error`]: the crate's [`Error`] (one variant per cause) and [`DbError`], its opaque
//!   database failure.
//!
//! This crate owns the only migration runner (`migrations/` at the workspace root).

pub mod append;
pub mod compact;
pub mod conflicts;
mod connect;
pub mod error;
pub mod lookup;
pub mod notify;
pub mod payloads;
pub mod read;
pub mod rejected;

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;

pub use append::{
    AppendOutcome, Appender, AppenderConfig, BatchObserver, BatchReport, NewEvent,
    RECONCILIATION_SOURCE,
};
pub use conflicts::ConflictRow;
pub use error::{DbError, Error};
pub use notify::Wakeups;
pub use payloads::EventPayload;
pub use read::{Checkpoint, StoredEvent};
pub use rejected::{RejectedWebhook, RejectedWebhookRow};

/// The NOTIFY channel raised after every committed append batch.
pub const NOTIFY_CHANNEL: &str = "calltrail_events";

/// How to connect to the event log.
#[derive(Debug, Clone)]
pub struct ConnectOptions {
    /// Maximum pooled connections.
    pub max_connections: u32,
    /// How long an operation waits for a connection before failing with [`Error::Unavailable`].
    pub acquire_timeout: Duration,
}

impl Default for ConnectOptions {
    fn default() -> Self {
        Self {
            max_connections: 16,
            acquire_timeout: Duration::from_secs(3),
        }
    }
}

/// A handle on the event log (cheap to clone).
#[derive(Debug, Clone)]
pub struct EventLog {
    pool: PgPool,
    /// With several hosts: keeps the failover watcher running while any handle lives.
    _watcher: Option<std::sync::Arc<connect::WatcherGuard>>,
}

impl EventLog {
    /// Connects lazily: the pool opens connections on first use, so a database that is down
    /// at start-up surfaces as [`Error::Unavailable`] on each call rather than here.
    ///
    /// `database_url` may list several hosts with `target_session_attrs=read-write` (URL or
    /// key=value form, as libpq reads them): the log then uses the first host that accepts
    /// writes and, after a failover, finds the new one by itself (call this inside a tokio
    /// runtime for that). Docs: docs/scaling.md.
    pub fn connect(database_url: &str, options: &ConnectOptions) -> Result<Self, Error> {
        let mut target = connect::parse(database_url)?;
        target.hosts = (target.hosts.into_iter())
            .map(|host: PgConnectOptions| {
                host.application_name("calltrail")
                    .options([("idle_in_transaction_session_timeout", "30000")])
            })
            .collect();
        let pool_options = PgPoolOptions::new()
            .max_connections(options.max_connections)
            .acquire_timeout(options.acquire_timeout);
        let (pool, watcher) = connect::pool(target, pool_options);
        Ok(Self {
            pool,
            _watcher: watcher.map(std::sync::Arc::new),
        })
    }

    /// Applies every migration in `migrations/` that is not applied yet.
    pub async fn migrate(&self) -> Result<(), Error> {
        sqlx::migrate!("../../migrations").run(&self.pool).await?;
        Ok(())
    }

    /// Answers when the database answers a trivial query.
    pub async fn ping(&self) -> Result<(), Error> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for checked-out connections to return.
    pub async fn close(&self) {
        self.pool.close().await;
    }

    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }
}
