//! The event log's error type.

/// What can go wrong talking to the event log.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached in time (connection refused, pool timeout, I/O).
    #[error("the event log database is unavailable: {0}")]
    Unavailable(#[source] sqlx::Error),
    /// The database answered with an error.
    #[error("the event log database failed: {0}")]
    Database(#[source] sqlx::Error),
    /// `DATABASE_URL` could not be understood.
    #[error("invalid database URL: {0}")]
    Config(#[source] sqlx::Error),
    /// Applying `migrations/` failed.
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
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
            Error::Unavailable(err)
        } else {
            Error::Database(err)
        }
    }
}

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
