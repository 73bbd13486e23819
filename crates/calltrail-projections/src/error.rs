//! The read side's error type.

/// What can go wrong on the read side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached (pool timeout, connection refused, I/O).
    #[error("the database is unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error.
    #[error("database error: {0}")]
    Database(#[from] tokio_postgres::Error),
    /// Something the caller asked for does not exist (e.g. an unknown user id).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing state (e.g. an agent owned by another user).
    #[error("{0}")]
    Conflict(String),
    /// The caller passed something invalid (e.g. a malformed cursor).
    #[error("{0}")]
    Invalid(String),
    /// A replay is already running.
    #[error("another replay is already running")]
    ReplayRunning,
    /// The event log failed.
    #[error(transparent)]
    EventLog(#[from] calltrail_eventlog::Error),
}

impl Error {
    /// True when retrying later may succeed (map to HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::Database(e) => e.is_closed() || e.code().is_none(),
            Error::EventLog(e) => e.is_unavailable(),
            _ => false,
        }
    }
}
