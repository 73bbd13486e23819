//! The command tree (CONTRACT §1) and its dispatch.

use std::net::SocketAddr;

use calltrail_core::Provider;
use clap::{Args, Parser, Subcommand};
use uuid::Uuid;

use crate::commands;
use crate::config::{AnalysisArgs, BillingArgs, DatabaseArgs, Secret};

/// calltrail — receives your voice-AI providers' call webhooks (Bolna, Vapi, ElevenLabs, Twilio,
/// Retell) and serves each call's status, duration, credits, transcript and lead analysis over
/// an HTTP API and a web console. Every command reads DATABASE_URL.
#[derive(Debug, Parser)]
#[command(name = "calltrail", version)]
pub struct Cli {
    /// Database connection (every command).
    #[command(flatten)]
    pub database: DatabaseArgs,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The commands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create or update calltrail's tables in the database (safe to run again).
    Migrate,
    /// Run the service: webhooks, the API and console, keeping calls up to date, lead analysis.
    Serve(ServeArgs),
    /// Rebuild every call, contact, credit and analysis the API shows from the recorded
    /// webhooks and events (the API keeps answering meanwhile); calls no LLM.
    Replay(ReplayArgs),
    /// Accounts, API keys, agents, credits, provider secrets, refused webhooks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Lead analyses waiting, done or failed; retry failed ones.
    #[command(subcommand)]
    Analysis(AnalysisCommand),
}

/// `calltrail serve`.
#[derive(Debug, Clone, Args)]
pub struct ServeArgs {
    /// Listen address.
    #[arg(long, env = "CALLTRAIL_BIND", default_value = "127.0.0.1:8080")]
    pub bind: SocketAddr,
    /// Webhook body limit in bytes (413 beyond).
    #[arg(long, env = "CALLTRAIL_MAX_BODY_BYTES", default_value_t = 2_097_152, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_body_bytes: u64,
    /// Largest ElevenLabs `post_call_audio` body streamed through the signature check and
    /// discarded (413 beyond); at least the webhook body limit.
    #[arg(long, env = "CALLTRAIL_MAX_AUDIO_BYTES", default_value_t = 67_108_864, value_parser = clap::value_parser!(u64).range(1..))]
    pub max_audio_bytes: u64,
    /// The base URL providers call, e.g. `https://calltrail.example.com` (Twilio signs it).
    #[arg(long, env = "CALLTRAIL_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Do not run the projector in this process.
    #[arg(long)]
    pub no_projector: bool,
    /// Do not run analysis workers in this process.
    #[arg(long)]
    pub no_worker: bool,
    /// HTTP worker threads (default: one per core).
    #[arg(long, env = "CALLTRAIL_HTTP_WORKERS")]
    pub http_workers: Option<usize>,
    /// A streaming replica for the read API's queries (docs/scaling.md); unset: all on DATABASE_URL.
    #[arg(long, env = "CALLTRAIL_READ_DATABASE_URL", hide_env_values = true)]
    pub read_database_url: Option<crate::config::Secret>,
    /// How far behind (seconds) the read replica may be before reads go to the primary.
    #[arg(long, env = "CALLTRAIL_READ_MAX_LAG_SECS", default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub read_max_lag_secs: u64,
    /// Billing.
    #[command(flatten)]
    pub billing: BillingArgs,
    /// Lead analysis.
    #[command(flatten)]
    pub analysis: AnalysisArgs,
}

/// `calltrail replay`.
#[derive(Debug, Clone, Args)]
pub struct ReplayArgs {
    /// Rebuild only this projection (repeatable; default: all).
    #[arg(
        long = "projection",
        value_name = "NAME",
        value_parser = clap::builder::PossibleValuesParser::new(
            calltrail_projections::projector::PROJECTIONS.iter().copied()
        )
    )]
    pub projections: Vec<String>,
    /// Billing (must match the rate the live projector uses).
    #[command(flatten)]
    pub billing: BillingArgs,
}

/// `calltrail admin …`.
#[derive(Debug, Subcommand)]
pub enum AdminCommand {
    /// Create a user (tenant); prints {"user_id","api_key","webhook_token"} — the secrets are shown only once.
    CreateUser {
        /// Unique e-mail.
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
        /// Initial credits (recorded as a grant event).
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        credits: Option<i64>,
        /// The user's own OpenAI prompt id for individual analyses (pmpt_…).
        #[arg(long)]
        individual_prompt_id: Option<String>,
        /// The user's own OpenAI prompt id for complete analyses (pmpt_…).
        #[arg(long)]
        complete_prompt_id: Option<String>,
    },
    /// Create another API key for a user; prints {"user_id","key_id","api_key","prefix","name"}
    /// — the key is shown only once.
    CreateKey {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// A name to recognise the key by in list-keys (e.g. where it is used).
        #[arg(long)]
        name: Option<String>,
    },
    /// List a user's API keys, the oldest first, one JSON object per line:
    /// {"key_id","prefix","name","created_at","last_used_at","revoked_at"} (never the key).
    ListKeys {
        /// The user id.
        #[arg(long)]
        user: Uuid,
    },
    /// Revoke one of a user's API keys (refused by running servers within 5 s); prints
    /// {"key_id","revoked_at"}.
    RevokeKey {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// The key's id, as create-key and list-keys print it.
        #[arg(long)]
        key_id: Uuid,
    },
    /// Register a provider agent for a user; prints {"agent_id"}.
    AddAgent {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// The provider, by its name in webhook URLs (`bolna`, `vapi`, …; an unknown name
        /// lists them all).
        #[arg(long, value_parser = parse_provider)]
        provider: Provider,
        /// The provider's agent id.
        #[arg(long)]
        external_id: String,
        /// Display name.
        #[arg(long)]
        name: Option<String>,
    },
    /// Grant credits (an event); prints {"balance"} once projected.
    GrantCredits {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// Credits to add.
        #[arg(long, value_parser = clap::value_parser!(i64).range(1..))]
        amount: i64,
    },
    /// Add or take credits with a reason (an event, like a grant; `--amount -5` takes five);
    /// prints {"balance"} once projected.
    AdjustCredits {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// Credits to add (positive) or take (negative); not 0.
        #[arg(long, allow_negative_numbers = true, value_parser = parse_adjustment)]
        amount: i64,
        /// Why, for the record (kept in the event).
        #[arg(long)]
        reason: String,
    },
    /// The most recent refused webhook requests, one JSON object per line.
    Rejected {
        /// How many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// List the most recent re-deliveries whose body differed from the recorded webhook
    /// (answered as duplicates, kept for review), one JSON object per line, newest first:
    /// {"received_at","tenant_id","provider","execution_id","event_type","position","fields"}.
    Conflicts {
        /// How many.
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(i64).range(1..=10_000))]
        limit: i64,
    },
    /// Set a user's webhook signing secret for a provider, or rotate it by running it again;
    /// prints {"provider","configured":true}. Stored encrypted with CALLTRAIL_SECRETS_KEY;
    /// never shown again.
    SetProviderSecret {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// A provider that signs its webhooks (every one but bolna).
        #[arg(long, value_parser = parse_signing_provider)]
        provider: Provider,
        /// The secret as the provider shows it (README: "Connecting each provider"); `-` reads
        /// it from the first line of standard input, keeping it out of shell history and the
        /// process list.
        #[arg(long)]
        secret: Secret,
        /// How long the secret being replaced stays valid, e.g. `24h` or `30m` (default: it
        /// stops at once). Earlier ones never outlive this.
        #[arg(long, default_value = "0s", value_parser = humantime::parse_duration)]
        previous_valid_for: std::time::Duration,
    },
    /// Create the demo tenant and agent if missing; prints fresh credentials for it and
    /// revokes the demo tenant's earlier demo keys (keys made with create-key stay).
    DemoTenant,
    /// Change a user's own OpenAI prompt ids (an empty value clears one); prints the ids in force.
    SetPrompts {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// Prompt id for individual analyses (pmpt_…, or "" to use the system default).
        #[arg(long)]
        individual_prompt_id: Option<String>,
        /// Prompt id for complete analyses (pmpt_…, or "" to use the system default).
        #[arg(long)]
        complete_prompt_id: Option<String>,
    },
}

/// `calltrail analysis …`.
#[derive(Debug, Subcommand)]
pub enum AnalysisCommand {
    /// Jobs by state, the oldest pending job's age and the last errors, as one JSON object.
    Status {
        /// How many recent errors to show.
        #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(i64).range(0..=1000))]
        errors: i64,
    },
    /// Re-queue failed analyses (all, or one call's); prints {"requeued": N}.
    Retry {
        /// Only this call's failed analyses.
        #[arg(long)]
        execution_id: Option<String>,
    },
}

/// Runs one command.
pub async fn run(cli: Cli) -> anyhow::Result<()> {
    let url = cli.database.url()?.to_owned();
    match &cli.command {
        // `serve` reports its own start-up (and waits for its database).
        Command::Serve(_) => {}
        Command::Migrate => commands::check_database(&url, false).await?,
        _ => commands::check_database(&url, true).await?,
    }
    match cli.command {
        Command::Migrate => commands::migrate(&url).await,
        Command::Serve(args) => commands::serve(&url, args).await,
        Command::Replay(args) => commands::replay::run(&url, args).await,
        Command::Admin(command) => commands::admin::run(&url, command).await,
        Command::Analysis(command) => commands::analysis::run(&url, command).await,
    }
}

/// A failed command as the one line it prints: the error and its causes, outermost first,
/// joined by `: `. A cause whose text its parent's message already ends with (the library
/// errors quote their cause, so that a log line is complete) is not repeated.
pub fn one_line(error: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in error.chain().map(ToString::to_string) {
        if line.ends_with(&cause) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&cause);
    }
    line
}

/// `--amount` of an adjustment: a whole number other than 0, either sign.
fn parse_adjustment(text: &str) -> Result<i64, String> {
    match text.trim().parse::<i64>() {
        Ok(0) => Err("0 changes nothing: give a positive or a negative amount".to_owned()),
        Ok(amount) => Ok(amount),
        Err(_) => Err(format!("`{text}` is not a whole number of credits")),
    }
}

/// `--provider` of a signing secret: a provider of the table that signs its webhooks.
fn parse_signing_provider(name: &str) -> Result<Provider, String> {
    let provider = parse_provider(name)?;
    if provider.webhooks().signs_webhooks() {
        return Ok(provider);
    }
    let signing: Vec<&str> = Provider::ALL
        .iter()
        .filter(|p| p.webhooks().signs_webhooks())
        .map(|p| p.as_str())
        .collect();
    Err(format!(
        "{provider} does not sign its webhooks, so it takes no secret (providers that do: {})",
        signing.join(", ")
    ))
}

/// `--provider`: a name from the provider table; an unknown one names every known one.
fn parse_provider(name: &str) -> Result<Provider, String> {
    name.parse::<Provider>()
        .map_err(|err| format!("{err} (known providers: {})", Provider::names()))
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    const LEAF: &str = "db error: ERROR: relation \"calls\" does not exist (SQLSTATE 42P01)";

    /// An error that quotes its cause in its message, as the library errors do.
    #[derive(Debug)]
    struct Quoting(Leaf);

    #[derive(Debug)]
    struct Leaf;

    impl std::fmt::Display for Quoting {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "database error: {}", self.0)
        }
    }

    impl std::error::Error for Quoting {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&self.0)
        }
    }

    impl std::fmt::Display for Leaf {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(LEAF)
        }
    }

    impl std::error::Error for Leaf {}

    #[test]
    fn a_quoted_cause_is_not_repeated() {
        let error = anyhow::Error::new(Quoting(Leaf)).context("replay failed");
        assert_eq!(
            one_line(&error),
            format!("replay failed: database error: {LEAF}")
        );
    }

    #[test]
    fn causes_that_are_not_quoted_are_joined() {
        let error = anyhow::Error::new(Leaf).context("could not add the agent");
        assert_eq!(one_line(&error), format!("could not add the agent: {LEAF}"));
    }

    fn add_agent(provider: &str) -> Result<Cli, clap::Error> {
        Cli::try_parse_from([
            "calltrail",
            "admin",
            "add-agent",
            "--user",
            "5c0e8f17-a2d3-4b96-8e41-f7b3d2a90c65",
            "--provider",
            provider,
            "--external-id",
            "agent-1",
        ])
    }

    #[test]
    fn replay_names_its_projections_in_help_and_errors() {
        let error = Cli::try_parse_from(["calltrail", "replay", "--projection", "nope"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(error.contains("read_models"), "{error}");
        let help = Cli::try_parse_from(["calltrail", "replay", "--help"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(help.contains("possible values: read_models"), "{help}");
        assert!(
            Cli::try_parse_from(["calltrail", "replay", "--projection", "read_models"]).is_ok()
        );
    }

    #[test]
    fn help_speaks_to_users() {
        let help = Cli::try_parse_from(["calltrail", "--help"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(help.contains("webhooks"), "{help}");
        for code_talk in ["wiring", "telemetry", "projector", "read models"] {
            assert!(!help.contains(code_talk), "{code_talk}: {help}");
        }
    }

    #[test]
    fn create_user_does_not_ask_for_the_database_url_in_its_usage() {
        let error = Cli::try_parse_from(["calltrail", "admin", "create-user"])
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        // What is missing is named before the usage line; with DATABASE_URL set, clap's usage
        // line shows the URL as given (from the environment), which is not asking for it.
        let missing = error.split("Usage:").next().unwrap_or_default();
        assert!(missing.contains("--email"), "{error}");
        assert!(!missing.contains("--database-url"), "{error}");
        let asked = std::env::var_os("DATABASE_URL").is_none() && error.contains("--database-url");
        assert!(!asked, "{error}");
    }

    #[test]
    fn set_provider_secret_takes_a_signing_provider_and_a_duration() {
        let parse = |provider: &str, window: &str| {
            Cli::try_parse_from([
                "calltrail",
                "admin",
                "set-provider-secret",
                "--user",
                "5c0e8f17-a2d3-4b96-8e41-f7b3d2a90c65",
                "--provider",
                provider,
                "--secret",
                "s3cr3t",
                "--previous-valid-for",
                window,
            ])
            .map(|cli| cli.command)
        };
        let parsed = parse("twilio", "24h");
        assert!(
            matches!(
                &parsed,
                Ok(Command::Admin(AdminCommand::SetProviderSecret { provider: Provider::Twilio, previous_valid_for, .. }))
                    if previous_valid_for.as_secs() == 24 * 3600
            ),
            "{parsed:?}"
        );
        assert!(!format!("{parsed:?}").contains("s3cr3t"));
        let bolna = parse("bolna", "1h").err().map(|e| e.to_string());
        assert!(
            bolna.as_deref().unwrap_or_default().contains(
                "bolna does not sign its webhooks, so it takes no secret (providers that do: vapi, elevenlabs, twilio, retell)"
            ),
            "{bolna:?}"
        );
        assert!(parse("vapi", "a day").is_err());
    }

    #[test]
    fn add_agent_takes_a_provider_of_the_table_and_names_them_all_otherwise() {
        for provider in Provider::ALL {
            let parsed = add_agent(provider.as_str()).map(|cli| cli.command);
            assert!(
                matches!(parsed, Ok(Command::Admin(AdminCommand::AddAgent { provider: p, .. })) if p == *provider),
                "{provider}"
            );
        }
        let message = add_agent("acme")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            message.contains(&format!(
                "unknown provider `acme` (known providers: {})",
                Provider::names()
            )),
            "{message}"
        );
    }
}
