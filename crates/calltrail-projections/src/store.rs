//! The read side's connection pool.

use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use crate::error::{DbError, Error};

/// How long opening a connection may take before the database counts as unavailable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How long a caller waits for a pooled connection before the database counts as unavailable.
const POOL_WAIT_TIMEOUT: Duration = Duration::from_secs(3);

/// The read side: a pool of tokio-postgres connections (cheap to clone) and the read queries
/// over it (the API's and the console's, the analysis context, projector positions). The
/// tenancy tables and the analysis job queue, over the same pool, are [`ReadStore::tenancy`]
/// and [`ReadStore::analysis_jobs`].
#[derive(Clone)]
pub struct ReadStore {
    pub(crate) pool: Pool,
    /// The connection settings, for the dedicated session connection a replay holds.
    pub(crate) config: tokio_postgres::Config,
}

impl std::fmt::Debug for ReadStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ReadStore").finish_non_exhaustive()
    }
}

impl ReadStore {
    /// A lazily connecting pool of at most `max_size` connections to `database_url`.
    pub fn connect(database_url: &str, max_size: usize) -> Result<Self, Error> {
        let mut config: tokio_postgres::Config = database_url
            .parse()
            .map_err(|e| Error::InvalidUrl(DbError::driver(e)))?;
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        if config.get_application_name().is_none() {
            config.application_name("calltrail-read");
        }
        // A session stuck inside a transaction holds every gap-safe reader of the log back
        // (docs/EVENTLOG.md §1): let the server end it.
        config.options("-c idle_in_transaction_session_timeout=30000");
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(max_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT_TIMEOUT))
            .create_timeout(Some(CONNECT_TIMEOUT + Duration::from_secs(1)))
            .recycle_timeout(Some(POOL_WAIT_TIMEOUT))
            .build()
            .map_err(|e| Error::Pool(DbError::build(e)))?;
        Ok(Self { pool, config })
    }

    /// The tenancy tables (users, credentials, agents, prompts, sessions) over this pool.
    pub fn tenancy(&self) -> crate::tenancy::Tenancy {
        crate::tenancy::Tenancy::new(self)
    }

    /// The analysis job queue over this pool.
    pub fn analysis_jobs(&self) -> crate::jobs::AnalysisJobs {
        crate::jobs::AnalysisJobs::new(self)
    }

    /// The servers the connection string names, as `host:port` (a socket directory for a
    /// Unix socket), for messages that say where the database was looked for.
    pub fn servers(&self) -> Vec<String> {
        let ports = self.config.get_ports();
        self.config
            .get_hosts()
            .iter()
            .enumerate()
            .map(|(i, host)| {
                let port = ports.get(i).or(ports.first()).copied().unwrap_or(5432);
                match host {
                    tokio_postgres::config::Host::Tcp(name) => format!("{name}:{port}"),
                    #[cfg(unix)]
                    tokio_postgres::config::Host::Unix(dir) => {
                        format!("{}/.s.PGSQL.{port}", dir.display())
                    }
                }
            })
            .collect()
    }

    /// True when calltrail's schema is in place (`calltrail migrate` has run).
    pub async fn has_schema(&self) -> Result<bool, Error> {
        let client = self.client().await?;
        let row = client
            .query_one("SELECT to_regclass('events') IS NOT NULL AS present", &[])
            .await?;
        Ok(row.try_get("present")?)
    }

    /// Answers when the database answers.
    pub async fn ping(&self) -> Result<(), Error> {
        let client = self.client().await?;
        client.simple_query("SELECT 1").await?;
        Ok(())
    }

    /// A pooled connection; a pool or connection failure is [`Error::Unavailable`].
    pub(crate) async fn client(&self) -> Result<Object, Error> {
        Ok(self.pool.get().await?)
    }

    /// A connection of its own, outside the pool (its session ends when it is dropped).
    pub(crate) async fn dedicated_connection(&self) -> Result<tokio_postgres::Client, Error> {
        let (client, connection) = self.config.connect(NoTls).await?;
        tokio::spawn(async move {
            if let Err(error) = connection.await {
                tracing::debug!(%error, "dedicated read-side connection ended");
            }
        });
        Ok(client)
    }
}
