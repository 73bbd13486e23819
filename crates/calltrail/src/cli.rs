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
    Serve(Box<ServeArgs>),
    /// Rebuild every call, contact, credit and analysis the API shows from the recorded
    /// webhooks and events (the API keeps answering meanwhile); calls no LLM.
    Replay(ReplayArgs),
    /// Accounts, API keys, agents, credits, provider secrets, refused webhooks.
    #[command(subcommand)]
    Admin(AdminCommand),
    /// Lead analyses waiting, done or failed; run failed (or all) ones again.
    #[command(subcommand)]
    Analysis(AnalysisCommand),
    /// Ask the providers' APIs about calls whose last webhook never came, and record what they
    /// show; prints {"checked","appended","unchanged","errors"}.
    Reconcile(ReconcileArgs),
}

/// `calltrail reconcile`.
#[derive(Debug, Clone, Args)]
pub struct ReconcileArgs {
    /// Only calls whose last event is older than this (e.g. `15m`, `2h`).
    #[arg(long, default_value = "15m", value_parser = humantime::parse_duration)]
    pub older_than: std::time::Duration,
    /// Only this provider's calls.
    #[arg(long, value_parser = parse_provider)]
    pub provider: Option<Provider>,
    /// The provider APIs.
    #[command(flatten)]
    pub api: ReconcileApiArgs,
}

/// How reconciliation talks to the provider APIs (`reconcile` and `serve`).
#[derive(Debug, Clone, Args)]
pub struct ReconcileApiArgs {
    /// Requests per second to each provider's API, at most.
    #[arg(long = "reconcile-rate", env = "CALLTRAIL_RECONCILE_RATE", default_value_t = calltrail_reconcile::client::DEFAULT_RATE, value_parser = parse_rate)]
    pub rate: f64,
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
    /// Periodic reconciliation.
    #[command(flatten)]
    pub reconcile: ReconcileServeArgs,
}

/// `serve`'s periodic reconciliation.
#[derive(Debug, Clone, Args)]
pub struct ReconcileServeArgs {
    /// How often to reconcile (e.g. `15m`); `0` turns it off. One process at a time does it.
    #[arg(long = "reconcile-interval", env = "CALLTRAIL_RECONCILE_INTERVAL", default_value = "15m", value_parser = humantime::parse_duration)]
    pub interval: std::time::Duration,
    /// Reconcile calls whose last event is older than this.
    #[arg(long = "reconcile-older-than", env = "CALLTRAIL_RECONCILE_OLDER_THAN", default_value = "15m", value_parser = humantime::parse_duration)]
    pub older_than: std::time::Duration,
    /// The provider APIs.
    #[command(flatten)]
    pub api: ReconcileApiArgs,
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
    /// Set a user's API key for a provider (reconciliation calls the provider's API with it),
    /// replacing the previous one at once; prints {"provider","configured":true}. Stored
    /// encrypted with CALLTRAIL_SECRETS_KEY; never shown again.
    SetProviderApiKey {
        /// The user id.
        #[arg(long)]
        user: Uuid,
        /// The provider (`bolna`, `vapi`, `elevenlabs`, `twilio`, `retell`).
        #[arg(long, value_parser = parse_provider)]
        provider: Provider,
        /// The API key (Twilio: `AccountSid:AuthToken`); `-` reads it from the first line of
        /// standard input, keeping it out of shell history and the process list.
        #[arg(long)]
        key: Secret,
        /// The API's base URL when not the provider's own (a regional endpoint, a proxy).
        #[arg(long)]
        base_url: Option<String>,
    },
    /// Create the demo tenant and agent if missing; prints fresh credentials for it and
    /// revokes the demo tenant's earlier demo keys (keys made with create-key --name stay).
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
    /// Run failed analyses again (all, or one call's), or with --all completed ones too (after
    /// changing prompts or model): each run is recorded as a new analysis version beside the
    /// old one; prints {"requeued": N}.
    Retry {
        /// Only this call's analyses.
        #[arg(long)]
        execution_id: Option<String>,
        /// Also re-run completed analyses (a failed re-run leaves the old result standing).
        #[arg(long)]
        all: bool,
    },
}

/// Why the arguments cannot be used: one clap error (also `--help` and `--version`, which are
/// "errors" that print and exit 0), or several problems, each a readable line.
#[derive(Debug)]
pub enum ArgErrors {
    /// One problem (or help, or the version), printed as clap prints it.
    One(clap::Error),
    /// Every problem found, one line each, and the command's usage line.
    Several {
        /// One readable line per problem.
        problems: Vec<String>,
        /// clap's `Usage: …` line of the command.
        usage: Option<String>,
    },
}

impl ArgErrors {
    /// The text printed on stderr (for [`ArgErrors::One`], clap's own).
    pub fn render(&self) -> String {
        match self {
            ArgErrors::One(error) => error.to_string(),
            ArgErrors::Several { problems, usage } => {
                let mut text = format!("error: {} problems with the arguments:\n", problems.len());
                for problem in problems {
                    text.push_str(&format!("  - {problem}\n"));
                }
                if let Some(usage) = usage {
                    text.push_str(&format!("\n{usage}\n"));
                }
                text.push_str("\nFor more information, try '--help'.\n");
                text
            }
        }
    }

    /// Prints the problems (or help) and exits: 0 for help and version, 2 otherwise.
    pub fn exit(self) -> ! {
        match self {
            ArgErrors::One(error) => error.exit(),
            several @ ArgErrors::Several { .. } => {
                eprint!("{}", several.render());
                std::process::exit(2)
            }
        }
    }
}

/// Most problems [`parse_args`] looks for (each costs one parse).
const MAX_ARG_PROBLEMS: usize = 20;

/// Parses the command line like [`Parser::try_parse_from`], but reports every problem at once:
/// clap stops at the first invalid or unknown argument, so after each such error the argument
/// is taken out and the rest parsed again, until what is left parses or only missing ones
/// remain (clap names all the missing ones together, and none that was already reported).
pub fn parse_args<I, T>(args: I) -> Result<Cli, ArgErrors>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    use clap::error::{ContextKind, ContextValue, ErrorKind};

    let mut args: Vec<std::ffi::OsString> = args.into_iter().map(Into::into).collect();
    let mut errors: Vec<clap::Error> = Vec::new();
    // Flags already reported as invalid: not reported again as missing once taken out.
    let mut reported: Vec<String> = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut usage = None;
    while errors.len() < MAX_ARG_PROBLEMS {
        let error = match Cli::try_parse_from(&args) {
            Ok(cli) if errors.is_empty() => return Ok(cli),
            Ok(_) => break,
            Err(error) => error,
        };
        if !matches!(
            error.kind(),
            ErrorKind::InvalidValue
                | ErrorKind::ValueValidation
                | ErrorKind::UnknownArgument
                | ErrorKind::MissingRequiredArgument
        ) {
            // Help, the version, a wrong command: as clap says it (after what was found).
            if errors.is_empty() {
                return Err(ArgErrors::One(error));
            }
            break;
        }
        let text = error.to_string();
        usage = text
            .lines()
            .find(|line| line.starts_with("Usage:"))
            .map(str::to_owned)
            .or(usage);
        if error.kind() == ErrorKind::MissingRequiredArgument {
            let missing = match error.get(ContextKind::InvalidArg) {
                Some(ContextValue::Strings(missing)) => missing.clone(),
                _ => Vec::new(),
            };
            let missing: Vec<String> = missing
                .into_iter()
                .filter(|arg| !reported.iter().any(|flag| flag_of(arg) == flag))
                .collect();
            if missing.is_empty() && !errors.is_empty() {
                break;
            }
            problems.extend(
                missing
                    .iter()
                    .map(|arg| format!("the required argument '{arg}' was not provided")),
            );
            errors.push(error);
            break;
        }
        let arg = match error.get(ContextKind::InvalidArg) {
            Some(ContextValue::String(arg)) => arg.clone(),
            _ => String::new(),
        };
        let flag = flag_of(&arg).to_owned();
        problems.push(problem_line(&text));
        errors.push(error);
        let before = args.len();
        take_out(&mut args, &flag);
        if args.len() == before {
            break;
        }
        reported.push(flag);
    }
    match (errors.len(), errors.pop()) {
        (1, Some(only)) => Err(ArgErrors::One(only)),
        _ => Err(ArgErrors::Several { problems, usage }),
    }
}

/// The flag of clap's name for an argument: `--user` of `--user <USER>`.
fn flag_of(arg: &str) -> &str {
    arg.split_whitespace().next().unwrap_or(arg)
}

/// clap's message of one error as one line: its text without `error: `, the usage line, the
/// `--help` hint and blank lines (a list of possible values or a tip joins the line).
fn problem_line(text: &str) -> String {
    text.lines()
        .map(str::trim)
        .filter(|line| {
            !line.is_empty()
                && !line.starts_with("Usage:")
                && !line.starts_with("For more information")
        })
        .map(|line| line.strip_prefix("error: ").unwrap_or(line))
        .collect::<Vec<_>>()
        .join(" ")
}

/// Removes every occurrence of `flag` from `args`: `--flag=value`, or `--flag` and the value
/// after it (a value does not start with `--`); a stray value is removed alone.
fn take_out(args: &mut Vec<std::ffi::OsString>, flag: &str) {
    if flag.is_empty() {
        return;
    }
    let with_value = format!("{flag}=");
    let mut kept = Vec::with_capacity(args.len());
    let mut iter = std::mem::take(args).into_iter().enumerate().peekable();
    while let Some((index, arg)) = iter.next() {
        let text = arg.to_string_lossy();
        // The program name is never an argument to take out.
        if index == 0 || (text != flag && !text.starts_with(&with_value)) {
            kept.push(arg);
            continue;
        }
        if text == flag && flag.starts_with('-') {
            if let Some((_, value)) = iter.peek() {
                if !value.to_string_lossy().starts_with("--") {
                    iter.next();
                }
            }
        }
    }
    *args = kept;
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
        Command::Serve(args) => commands::serve(&url, *args).await,
        Command::Replay(args) => commands::replay::run(&url, args).await,
        Command::Admin(command) => commands::admin::run(&url, command).await,
        Command::Analysis(command) => commands::analysis::run(&url, command).await,
        Command::Reconcile(args) => commands::reconcile::run(&url, args).await,
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

/// `--reconcile-rate`: requests per second, more than 0.
fn parse_rate(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(rate) if rate.is_finite() && rate > 0.0 => Ok(rate),
        _ => Err(format!(
            "`{text}` is not a number of requests per second above 0"
        )),
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

    /// The problems [`parse_args`] reports for `args` (after `calltrail`).
    fn problems(args: &[&str]) -> Vec<String> {
        let argv = std::iter::once("calltrail").chain(args.iter().copied());
        match parse_args(argv) {
            Ok(cli) => panic!("parsed: {cli:?}"),
            Err(ArgErrors::One(error)) => vec![problem_line(&error.to_string())],
            Err(ArgErrors::Several { problems, .. }) => problems,
        }
    }

    #[test]
    fn every_argument_problem_is_reported_at_once() {
        let found = problems(&["admin", "adjust-credits", "--user", "nope", "--amount=0"]);
        assert_eq!(found.len(), 3, "{found:?}");
        assert!(found[0].starts_with("invalid value 'nope' for '--user <USER>'"));
        assert!(found[1].contains("0 changes nothing"), "{found:?}");
        assert_eq!(
            found[2],
            "the required argument '--reason <REASON>' was not provided"
        );

        let found = problems(&[
            "admin",
            "set-provider-secret",
            "--provider",
            "bolna",
            "--previous-valid-for",
            "a day",
        ]);
        assert_eq!(found.len(), 4, "{found:?}");
        assert!(found[0].contains("bolna does not sign its webhooks"));
        assert!(found[1].contains("'--previous-valid-for <PREVIOUS_VALID_FOR>'"));
        assert!(found[2].contains("'--user <USER>'") && found[3].contains("'--secret <SECRET>'"));

        let found = problems(&["admin", "create-key", "--usr", "x", "--name", "n"]);
        assert_eq!(
            found,
            [
                "unexpected argument '--usr' found",
                "the required argument '--user <USER>' was not provided",
            ],
            "{found:?}"
        );
    }

    #[test]
    fn one_problem_is_clap_s_own_error_and_good_arguments_parse() {
        let one = parse_args(["calltrail", "admin", "create-user"]);
        assert!(
            matches!(&one, Err(ArgErrors::One(e)) if e.kind() == clap::error::ErrorKind::MissingRequiredArgument),
            "{one:?}"
        );
        let help = parse_args(["calltrail", "admin", "create-key", "--help"]);
        assert!(
            matches!(&help, Err(ArgErrors::One(e)) if e.kind() == clap::error::ErrorKind::DisplayHelp),
            "{help:?}"
        );
        let ok = parse_args([
            "calltrail",
            "admin",
            "adjust-credits",
            "--user",
            "5c0e8f17-a2d3-4b96-8e41-f7b3d2a90c65",
            "--amount",
            "-5",
            "--reason",
            "refund",
        ]);
        assert!(
            matches!(
                ok,
                Ok(Cli {
                    command: Command::Admin(AdminCommand::AdjustCredits { amount: -5, .. }),
                    ..
                })
            ),
            "{ok:?}"
        );
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
