//! Configuration shared by every command, read from flags or the environment (CONTRACT §2).

use std::fmt;

use anyhow::Context;
use calltrail_core::secrets::{SecretsKey, SecretsKeyError, SECRETS_KEY_VAR};
use calltrail_projections::credentials::CredentialSummary;
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
    /// The longest call there can be, in seconds: a longer (or negative) reported duration is
    /// treated as absent and the call shows `duration_out_of_range`.
    #[arg(long, env = "CALLTRAIL_MAX_CALL_SECONDS", default_value_t = 14_400, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_call_seconds: u32,
}

impl BillingArgs {
    /// The bounds a webhook's numbers must fall within.
    pub fn bounds(&self) -> calltrail_core::Bounds {
        calltrail_core::Bounds {
            max_call_seconds: f64::from(self.max_call_seconds),
        }
    }
}

/// Lead-analysis settings of `serve` (CONTRACT §2 `OPENAI_*`, plus the worker pool).
#[derive(Debug, Clone, Args)]
pub struct AnalysisArgs {
    /// OpenAI API key; unset (or empty) runs the local analyzer instead.
    #[arg(long, env = "OPENAI_API_KEY", hide_env_values = true, hide = true)]
    pub openai_api_key: Option<Secret>,
    /// OpenAI API base URL.
    #[arg(long, env = "OPENAI_BASE_URL", default_value = calltrail_analysis::openai::DEFAULT_BASE_URL)]
    pub openai_base_url: String,
    /// System-wide prompt id for individual analyses (pmpt_…); a user's own takes precedence.
    #[arg(long, env = "OPENAI_INDIVIDUAL_PROMPT_ID")]
    pub openai_individual_prompt_id: Option<String>,
    /// System-wide prompt id for complete analyses (pmpt_…); a user's own takes precedence.
    #[arg(long, env = "OPENAI_COMPLETE_PROMPT_ID")]
    pub openai_complete_prompt_id: Option<String>,
    /// Model to use instead of the one stored with the prompt.
    #[arg(long, env = "OPENAI_MODEL")]
    pub openai_model: Option<String>,
    /// Limit for one OpenAI request, in milliseconds.
    #[arg(long, env = "OPENAI_TIMEOUT_MS", default_value_t = 30_000, value_parser = clap::value_parser!(u64).range(1..))]
    pub openai_timeout_ms: u64,
    /// Retries of one OpenAI request after the first (3 ⇒ at most 4 requests).
    #[arg(long, env = "OPENAI_MAX_RETRIES", default_value_t = 3)]
    pub openai_max_retries: u32,
    /// Analysis workers in this process.
    #[arg(long, env = "CALLTRAIL_ANALYSIS_WORKERS", default_value_t = 2)]
    pub analysis_workers: usize,
    /// Lease of a claimed analysis job in seconds (a dead worker's job runs again after it).
    #[arg(long, env = "CALLTRAIL_ANALYSIS_LEASE_SECS", default_value_t = 120, value_parser = clap::value_parser!(u64).range(1..))]
    pub analysis_lease_secs: u64,
    /// Attempts of an analysis job before a transient failure (rate limit, 5xx, timeout) is final.
    #[arg(long, env = "CALLTRAIL_ANALYSIS_MAX_ATTEMPTS", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..))]
    pub analysis_max_attempts: u32,
}

impl AnalysisArgs {
    /// The OpenAI client settings, or `None` (local analyzer) when no key is set.
    pub fn openai(&self) -> Option<calltrail_analysis::OpenAiConfig> {
        let key = self
            .openai_api_key
            .as_ref()
            .map(|k| k.expose().trim())
            .filter(|k| !k.is_empty())?;
        let mut config =
            calltrail_analysis::OpenAiConfig::new(calltrail_analysis::ApiKey::new(key));
        config.base_url.clone_from(&self.openai_base_url);
        config.model = self
            .openai_model
            .as_deref()
            .map(str::trim)
            .filter(|m| !m.is_empty())
            .map(str::to_owned);
        config.timeout = std::time::Duration::from_millis(self.openai_timeout_ms);
        config.max_retries = self.openai_max_retries;
        Some(config)
    }

    /// The system-wide prompt ids, validated (an invalid one names its variable).
    pub fn system_prompts(&self) -> anyhow::Result<calltrail_analysis::PromptIds> {
        Ok(calltrail_analysis::PromptIds {
            individual: prompt_id(
                "OPENAI_INDIVIDUAL_PROMPT_ID",
                self.openai_individual_prompt_id.as_deref(),
            )?,
            complete: prompt_id(
                "OPENAI_COMPLETE_PROMPT_ID",
                self.openai_complete_prompt_id.as_deref(),
            )?,
        })
    }
}

/// `CALLTRAIL_PUBLIC_URL`: empty is unset; anything else must be an absolute `http(s)://` URL
/// without a query or fragment (the request's own path and query are appended to it). A trailing
/// `/` is dropped.
pub fn public_url(value: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    let host = value
        .strip_prefix("https://")
        .or_else(|| value.strip_prefix("http://"))
        .map(|rest| rest.split('/').next().unwrap_or_default());
    anyhow::ensure!(
        host.is_some_and(|h| !h.is_empty())
            && !value.contains(['?', '#'])
            && !value.contains(char::is_whitespace),
        "CALLTRAIL_PUBLIC_URL `{value}` is not a base URL (expected e.g. `https://calltrail.example.com`, without a query)"
    );
    Ok(Some(value.trim_end_matches('/').to_owned()))
}

/// `CALLTRAIL_SECRETS_KEY` from the environment: `None` when unset or empty, an error naming
/// the variable when it is set to something that is not 32 bytes of base64.
pub fn secrets_key() -> anyhow::Result<Option<SecretsKey>> {
    let value = std::env::var_os(SECRETS_KEY_VAR);
    let value = match value.as_deref().map(|v| v.to_str()) {
        None => None,
        Some(Some(text)) => Some(text),
        Some(None) => anyhow::bail!("{SECRETS_KEY_VAR} is not valid UTF-8 text"),
    };
    Ok(SecretsKey::from_env_value(value)?)
}

/// `CALLTRAIL_SECRETS_KEY`, where a command cannot work without it.
pub fn required_secrets_key() -> anyhow::Result<SecretsKey> {
    secrets_key()?.ok_or_else(|| SecretsKeyError::Missing.into())
}

/// What `serve` refuses to start without, given the stored credentials: the key that opens
/// them (set, and the one they were stored with), and `CALLTRAIL_PUBLIC_URL` once a tenant
/// has a secret of a provider that signs the URL it calls (Twilio).
pub fn check_credentials(
    summary: &CredentialSummary,
    key: Option<&SecretsKey>,
    public_url: Option<&str>,
) -> anyhow::Result<()> {
    if summary.stored > 0 {
        let Some(key) = key else {
            anyhow::bail!(
                "{SECRETS_KEY_VAR} is not set, and {} provider credential(s) are stored encrypted with it: \
                 set it to the key they were stored with (losing it means setting every provider secret again)",
                summary.stored
            );
        };
        if let Some((binding, sealed)) = &summary.newest {
            sealed.open(key, binding).with_context(|| {
                format!(
                    "{SECRETS_KEY_VAR} does not open the newest stored provider credential ({} {}): \
                     is it the key the credentials were stored with?",
                    binding.provider,
                    binding.kind.as_str()
                )
            })?;
        }
    }
    if public_url.is_none() {
        let needing: Vec<String> = summary
            .signing_tenants
            .iter()
            .filter(|(provider, tenants)| *tenants > 0 && provider.webhooks().signs_public_url())
            .map(|(provider, tenants)| format!("{provider} ({tenants} tenant(s))"))
            .collect();
        anyhow::ensure!(
            needing.is_empty(),
            "CALLTRAIL_PUBLIC_URL is not set, and signing secrets are stored for {}, whose \
             signatures cover the URL they call: set it to the base URL they call (e.g. https://calltrail.example.com)",
            needing.join(", ")
        );
    }
    Ok(())
}

/// A prompt id setting: empty is unset; anything else must look like `pmpt_…`.
pub fn prompt_id(name: &str, value: Option<&str>) -> anyhow::Result<Option<String>> {
    let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
        return Ok(None);
    };
    anyhow::ensure!(
        calltrail_analysis::responses::is_valid_prompt_id(value),
        "{name} `{value}` is not an OpenAI prompt id (expected `pmpt_` followed by letters, digits, `_` or `-`)"
    );
    Ok(Some(value.to_owned()))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use calltrail_core::Provider;
    use calltrail_projections::credentials::{secret_binding, SealedSecret, SecretKind};
    use uuid::Uuid;

    use super::*;

    #[test]
    fn serve_needs_the_key_the_credentials_were_stored_with_and_twilio_a_public_url() {
        let key = SecretsKey::from_base64(&"A".repeat(43)).unwrap();
        let other = SecretsKey::from_base64(&format!("{}E", "A".repeat(42))).unwrap();
        let binding = secret_binding(Uuid::new_v4(), Provider::Twilio, SecretKind::WebhookSigning);
        let sealed = key.seal(&binding, b"auth-token").unwrap();
        let summary = CredentialSummary {
            stored: 1,
            signing_tenants: vec![(Provider::Twilio, 1)],
            newest: Some((
                binding,
                SealedSecret {
                    ciphertext: sealed.ciphertext,
                    nonce: sealed.nonce,
                    base_url: None,
                    valid_until: None,
                },
            )),
        };
        let url = Some("https://calltrail.example.com");
        let error = |key, url| {
            check_credentials(&summary, key, url)
                .err()
                .map(|e| format!("{e:#}"))
                .unwrap_or_default()
        };
        assert!(check_credentials(&summary, Some(&key), url).is_ok());
        assert!(error(None, url).contains("CALLTRAIL_SECRETS_KEY is not set"));
        assert!(error(Some(&other), url).contains("CALLTRAIL_SECRETS_KEY does not open"));
        let no_url = error(Some(&key), None);
        assert!(
            no_url.contains("CALLTRAIL_PUBLIC_URL is not set"),
            "{no_url}"
        );
        assert!(no_url.contains("twilio (1 tenant(s))"), "{no_url}");

        let vapi_only = CredentialSummary {
            signing_tenants: vec![(Provider::Vapi, 3)],
            newest: None,
            ..summary.clone()
        };
        assert!(check_credentials(&vapi_only, Some(&key), None).is_ok());
        assert!(check_credentials(&CredentialSummary::default(), None, None).is_ok());
    }

    #[test]
    fn public_urls_are_absolute_bases() {
        assert_eq!(public_url(None).ok(), Some(None));
        assert_eq!(public_url(Some(" ")).ok(), Some(None));
        assert_eq!(
            public_url(Some("https://calltrail.example.com/")).ok(),
            Some(Some("https://calltrail.example.com".to_owned()))
        );
        assert_eq!(
            public_url(Some("http://10.0.0.5:8080/calltrail")).ok(),
            Some(Some("http://10.0.0.5:8080/calltrail".to_owned()))
        );
        for bad in [
            "calltrail.example.com",
            "https://",
            "ftp://x",
            "https://x/?a=1",
            "https://x y",
        ] {
            let err = public_url(Some(bad))
                .err()
                .map(|e| e.to_string())
                .unwrap_or_default();
            assert!(err.contains("CALLTRAIL_PUBLIC_URL"), "{bad}: {err}");
        }
    }
}
