//! [`TestDb`]: a fresh database per test, migrated by the event log's own runner, dropped when
//! the handle goes (even when the test fails).

use std::str::FromStr;

use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// A database that exists for the lifetime of this value.
#[derive(Debug)]
pub struct TestDb {
    name: String,
    url: String,
    admin: PgConnectOptions,
    /// Set by [`TestDb::keep`]: not dropped.
    kept: bool,
}

/// The server tests run against.
pub fn server_url() -> String {
    std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432/postgres".to_owned())
}

/// `url` with its database name replaced by `database`.
pub fn with_database(url: &str, database: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (url, None),
    };
    let authority_end = base.find("://").map_or(0, |i| i + 3);
    let base = match base[authority_end..].find('/') {
        Some(slash) => &base[..authority_end + slash],
        None => base,
    };
    match query {
        Some(query) => format!("{base}/{database}?{query}"),
        None => format!("{base}/{database}"),
    }
}

impl TestDb {
    /// Creates an empty database and applies every migration.
    pub async fn new() -> TestDb {
        let db = TestDb::empty().await;
        let log = calltrail_eventlog::EventLog::connect(&db.url, &Default::default())
            .expect("test database url");
        log.migrate()
            .await
            .expect("migrations apply to a fresh database");
        log.close().await;
        db
    }

    /// Creates an empty database without migrating it.
    pub async fn empty() -> TestDb {
        let server = server_url();
        let admin = PgConnectOptions::from_str(&server)
            .expect("DATABASE_URL is a PostgreSQL URL")
            .database("postgres")
            .disable_statement_logging();
        let name = format!("calltrail_test_{}", uuid::Uuid::new_v4().simple());
        let mut conn = admin
            .connect()
            .await
            .expect("the test PostgreSQL server answers");
        sqlx::query(&format!("CREATE DATABASE {name}"))
            .execute(&mut conn)
            .await
            .expect("CREATE DATABASE");
        conn.close().await.ok();
        let url = with_database(&server, &name);
        TestDb {
            name,
            url,
            admin,
            kept: false,
        }
    }

    /// Connection URL of this database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Name of this database.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Leaves the database in place when this handle is dropped (a benchmark's data set kept
    /// to measure a step again); `scripts/test` drops leftovers older than ten minutes.
    pub fn keep(&mut self) {
        self.kept = true;
    }
}

impl Drop for TestDb {
    fn drop(&mut self) {
        if self.kept {
            eprintln!("test database kept: {}", self.url);
            return;
        }
        let admin = self.admin.clone();
        let name = self.name.clone();
        // Drop may run inside a tokio runtime: do the async work on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            runtime.block_on(async move {
                let mut conn = admin.connect().await?;
                sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
                    .execute(&mut conn)
                    .await?;
                conn.close().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(())
            })
        })
        .join();
        if let Ok(Err(error)) = dropped {
            eprintln!("could not drop test database {}: {error}", self.name);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_name() {
        assert_eq!(
            with_database("postgres://u@h:5432/postgres?sslmode=disable", "x"),
            "postgres://u@h:5432/x?sslmode=disable"
        );
        assert_eq!(
            with_database("postgres://u@h:5432", "x"),
            "postgres://u@h:5432/x"
        );
    }
}
