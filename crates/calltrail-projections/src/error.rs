//! The read side's error type: one variant per cause, the cause kept as its source.
//!
//! Each message ends with its cause's own message, so one line in a log says everything; the
//! driver's error stays inside [`DbError`], an opaque type of this crate (no tokio-postgres or
//! deadpool type crosses the crate boundary).

use std::fmt;

/// What can go wrong on the read side.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The database could not be reached (pool timeout, connection refused or lost, server
    /// shutting down): retrying later may succeed.
    #[error("the database is unavailable: {0}")]
    Unavailable(#[source] DbError),
    /// The database answered a statement with an error.
    #[error("database error: {0}")]
    Database(#[source] DbError),
    /// The database URL cannot be used by the read side.
    #[error("invalid database URL: {0}")]
    InvalidUrl(#[source] DbError),
    /// The connection pool cannot be built from its settings.
    #[error("cannot build the connection pool: {0}")]
    Pool(#[source] DbError),
    /// A pagination cursor is not one the read API issued.
    #[error("invalid cursor")]
    InvalidCursor,
    /// A value the caller passed cannot be used (e.g. an empty e-mail address).
    #[error("{0}")]
    InvalidInput(String),
    /// Something the caller asked for does not exist (e.g. an unknown user id).
    #[error("{0}")]
    NotFound(String),
    /// The request conflicts with existing state (e.g. an agent owned by another user).
    #[error("{0}")]
    Conflict(String),
    /// A call's stored state cannot be read back; `calltrail replay` rebuilds it from the log.
    #[error(
        "the stored state of call {execution_id} cannot be read ({source}); run `calltrail replay`"
    )]
    CorruptState {
        /// The call.
        execution_id: String,
        /// Why it cannot be read.
        source: serde_json::Error,
    },
    /// A stored row holds a value this build does not know.
    #[error("a stored `{table}` row cannot be read: {reason}")]
    CorruptRow {
        /// The table.
        table: &'static str,
        /// What is wrong with it.
        reason: String,
    },
    /// A row cannot be encoded for writing.
    #[error("{what} cannot be encoded: {source}")]
    Encode {
        /// What was being encoded.
        what: &'static str,
        /// Why it failed.
        source: serde_json::Error,
    },
    /// `calltrail replay --projection` named a projection that does not exist.
    #[error("unknown projection `{name}` (known: {known})")]
    UnknownProjection {
        /// The name asked for.
        name: String,
        /// The names that exist, comma-separated.
        known: String,
    },
    /// A replay is already running.
    #[error("another replay is already running")]
    ReplayRunning,
    /// The replay's writer stage stopped before the fold was done (its own error, if it had
    /// one, is reported instead of this).
    #[error("the replay writer stopped")]
    ReplayWriterStopped,
    /// The replay's writer task ended abnormally (a panic or a cancellation).
    #[error("the replay writer task failed: {0}")]
    ReplayWriterFailed(#[source] tokio::task::JoinError),
    /// A fail-point list cannot be armed (drills only).
    #[error("{0}")]
    FailPoint(String),
    /// The system's random number generator failed (new secrets cannot be made).
    #[error("the system random number generator failed: {0}")]
    Random(#[source] getrandom::Error),
    /// The event log failed.
    #[error(transparent)]
    EventLog(#[from] calltrail_eventlog::Error),
}

impl Error {
    /// True when retrying later may succeed (map to HTTP 503).
    pub fn is_unavailable(&self) -> bool {
        match self {
            Error::Unavailable(_) => true,
            Error::EventLog(e) => e.is_unavailable(),
            _ => false,
        }
    }
}

impl From<tokio_postgres::Error> for Error {
    /// [`Error::Unavailable`] when the error means the database could not be reached, else
    /// [`Error::Database`].
    fn from(error: tokio_postgres::Error) -> Self {
        if is_connection_error(&error) {
            Error::Unavailable(DbError::driver(error))
        } else {
            Error::Database(DbError::driver(error))
        }
    }
}

impl From<deadpool_postgres::PoolError> for Error {
    /// Every pool failure (timeout, a connection that cannot be made) is [`Error::Unavailable`].
    fn from(error: deadpool_postgres::PoolError) -> Self {
        Error::Unavailable(DbError(Inner::Pool(error)))
    }
}

/// Connection closed, no SQLSTATE (I/O, connect), SQLSTATE class 08 (connection exception) or
/// 57P01–57P03 (shutdown, cannot connect now).
fn is_connection_error(error: &tokio_postgres::Error) -> bool {
    error.is_closed()
        || error.code().is_none_or(|code| {
            let code = code.code();
            code.starts_with("08") || code.starts_with("57P")
        })
}

/// A database failure of the read side, opaque to callers. Its message is complete on one
/// line (the driver's, then the server's or the system's cause), so it has no source of its own.
#[derive(Debug)]
pub struct DbError(Inner);

#[derive(Debug)]
enum Inner {
    /// A statement, a connection or a URL failed.
    Driver(tokio_postgres::Error),
    /// The pool could not hand out a connection.
    Pool(deadpool_postgres::PoolError),
    /// The pool could not be built.
    Build(deadpool_postgres::BuildError),
}

impl DbError {
    /// The driver's error (e.g. a URL it cannot parse).
    pub(crate) fn driver(error: tokio_postgres::Error) -> Self {
        DbError(Inner::Driver(error))
    }

    /// The pool's build error.
    pub(crate) fn build(error: deadpool_postgres::BuildError) -> Self {
        DbError(Inner::Build(error))
    }
}

impl fmt::Display for DbError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0 {
            Inner::Driver(e) => driver_message(e, f),
            Inner::Pool(deadpool_postgres::PoolError::Backend(e)) => {
                f.write_str("cannot open a connection: ")?;
                driver_message(e, f)
            }
            Inner::Pool(e) => e.fmt(f),
            Inner::Build(e) => e.fmt(f),
        }
    }
}

impl std::error::Error for DbError {}

/// The driver's message and its cause on one line: the server's error with its SQLSTATE, or
/// the I/O error (tokio-postgres's own message leaves its cause out).
fn driver_message(error: &tokio_postgres::Error, f: &mut fmt::Formatter<'_>) -> fmt::Result {
    use std::error::Error as _;
    fmt::Display::fmt(error, f)?;
    if let Some(db) = error.as_db_error() {
        write!(
            f,
            ": {}: {} (SQLSTATE {})",
            db.severity(),
            db.message(),
            db.code().code()
        )?;
        if let Some(detail) = db.detail() {
            write!(f, "; {}", detail.replace('\n', " "))?;
        }
        Ok(())
    } else if let Some(cause) = error.source() {
        write!(f, ": {cause}")
    } else {
        Ok(())
    }
}
