//! Configuration shared by every command, read from flags or the environment (CONTRACT §2).

use std::fmt;

use clap::Args;

/// A secret string whose `Debug` never prints it.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret value.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(***)")
    }
}

impl std::str::FromStr for Secret {
    type Err = std::convert::Infallible;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ok(Secret(s.to_owned()))
    }
}

/// Database settings every command needs.
#[derive(Debug, Clone, Args)]
pub struct DatabaseArgs {
    /// PostgreSQL connection string.
    #[arg(
        long = "database-url",
        env = "DATABASE_URL",
        hide_env_values = true,
        global = true
    )]
    pub database_url: Option<Secret>,
}

impl DatabaseArgs {
    /// The URL, or a clear error naming the variable.
    pub fn url(&self) -> anyhow::Result<&str> {
        self.database_url
            .as_ref()
            .map(Secret::expose)
            .ok_or_else(|| {
                anyhow::anyhow!(
                    "DATABASE_URL is not set (a PostgreSQL connection string is required)"
                )
            })
    }
}

/// Billing settings.
#[derive(Debug, Clone, Args)]
pub struct BillingArgs {
    /// Credits charged per started minute of conversation.
    #[arg(long, env = "CALLTRAIL_CREDITS_PER_MINUTE", default_value_t = 1, value_parser = clap::value_parser!(i64).range(0..))]
    pub credits_per_minute: i64,
}
