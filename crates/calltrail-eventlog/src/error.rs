//! The event log's error type: one variant per cause, the cause kept as its source. sqlx's
//! errors stay inside [`DbError`], an opaque type of this crate.

use std::fmt;

/// What can go wrong talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached in time (connection refused, pool timeout, I/O).
    #[error("the event log database is unavailable: {0}")]
    Unavailable(#[source] DbError),
    /// The database answered with an error.
    #[error("the event log database failed: {0}")]
    Database(#[source] DbError),
    /// `DATABASE_URL` could not be understood.
    #[error("invalid database URL: {0}")]
    Config(#[source] DbError),
    /// Applying `migrations/` failed.
    #[error("migration failed: {0}")]
    Migrate(#[source] DbError),
    /// The appender has shut down and takes no more events.
    #[error("the appender is shut down")]
    AppenderClosed,
    /// The batch this event was in failed; the event was not committed.
    #[error("append failed, the event was not recorded: {0}")]
    AppendFailed(#[source] std::sync::Arc<Error>),
    /// The database refused this event's content (e.g. a `\u0000` in its JSON).
    #[error("the event was refused by the database: {0}")]
    InvalidEvent(String),
    /// A stored row could not be decoded.
    #[error("corrupt event row at position {position}: {reason}")]
    Corrupt {
        /// The row's position.
        position: i64,
        /// What was wrong.
        reason: String,
    },
}

impl Error {
    /// True when retrying later may succeed (database down, pool exhausted, appender failed
    /// for a transient reason): HTTP callers map this to 503.
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) | Error::AppenderClosed => true,
            Error::AppendFailed(inner) => {
                inner.is_unavailable() || !matches!(**inner, Error::Corrupt { .. })
            }
            _ => false,
        }
    }
}

impl From<sqlx::Error> for Error {
    fn from(err: sqlx::Error) -> Self {
        if is_connection_error(&err) {
            Error::Unavailable(DbError(Inner::Sqlx(err)))
        } else {
            Error::Database(DbError(Inner::Sqlx(err)))
        }
    }
}

impl From<sqlx::migrate::MigrateError> for Error {
    fn from(err: sqlx::migrate::MigrateError) -> Self {
        Error::Migrate(DbError(Inner::Migrate(err)))
    }
}

/// A database failure of the event log, opaque to callers. Its message is sqlx's, which already
/// carries the server's or the system's cause, so it has no source of its own.
#[derive(Debug)]
pub struct DbError(Inner);

#[derive(Debug)]
enum Inner {
    Sqlx(sqlx::Error),
    Migrate(sqlx::migrate::MigrateError),
}

impl DbError {
    /// Wraps a driver error (e.g. a URL sqlx cannot parse).
    pub(crate) fn new(err: sqlx::Error) -> Self {
        DbError(Inner::Sqlx(err))
    }

    /// The driver's error, when it is one (not a migration failure).
    pub(crate) fn sqlx(&self) -> Option<&sqlx::Error> {
        match &self.0 {
            Inner::Sqlx(err) => Some(err),
            Inner::Migrate(_) => None,
        }
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Sqlx(err) => err.fmt(f),
            Inner::Migrate(err) => err.fmt(f),
        }
    }
}

impl std::error::Error for DbError {}

/// True for errors that mean "could not talk to the database" rather than "the database said no".
pub(crate) fn is_connection_error(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed
        | sqlx::Error::Tls(_) => true,
        sqlx::Error::Database(db) => {
            // Class 08: connection exception; 57P01..57P03: admin shutdown / crash / cannot connect now.
            db.code()
                .is_some_and(|code| code.starts_with("08") || code.starts_with("57P"))
        }
        _ => false,
    }
}
