//! `calltrail admin …`: tenancy and operations. Each command prints JSON on stdout.

use std::time::Duration;

use anyhow::Context;
use calltrail_core::Provider;
use calltrail_eventlog::{AppenderConfig, ConnectOptions, EventLog, NewEvent};
use calltrail_projections::credentials::{NewCredential, SecretKind};
use calltrail_projections::projector::{Projector, ProjectorConfig};
use calltrail_projections::tenancy::NewUser;
use calltrail_projections::ReadStore;
use chrono::Utc;
use serde_json::json;
use uuid::Uuid;

use crate::cli::AdminCommand;
use crate::commands::print_json;
use crate::config::{prompt_id, required_secrets_key};

/// The demo tenant `scripts/run` creates.
pub const DEMO_EMAIL: &str = "demo@calltrail.local";
/// The agent id used by the Bolna fixtures.
pub const DEMO_AGENT_ID: &str = "9e2a4f70-5c13-4b8e-a1d6-72f04c3b9e18";

struct Ctx {
    log: EventLog,
    store: ReadStore,
}

impl Ctx {
    fn connect(url: &str) -> anyhow::Result<Self> {
        Ok(Self {
            log: EventLog::connect(
                url,
                &ConnectOptions {
                    max_connections: 2,
                    ..ConnectOptions::default()
                },
            )?,
            store: ReadStore::connect(url, 2)?,
        })
    }
}

/// Runs one admin command.
pub async fn run(url: &str, command: AdminCommand) -> anyhow::Result<()> {
    let ctx = Ctx::connect(url)?;
    let result = dispatch(&ctx, command).await;
    ctx.log.close().await;
    result
}

async fn dispatch(ctx: &Ctx, command: AdminCommand) -> anyhow::Result<()> {
    match command {
        AdminCommand::CreateUser {
            email,
            name,
            credits,
            individual_prompt_id,
            complete_prompt_id,
        } => {
            let individual_prompt_id =
                prompt_id("--individual-prompt-id", individual_prompt_id.as_deref())?;
            let complete_prompt_id =
                prompt_id("--complete-prompt-id", complete_prompt_id.as_deref())?;
            let user = NewUser {
                email,
                name,
                individual_prompt_id,
                complete_prompt_id,
            };
            let issued = ctx
                .store
                .tenancy()
                .create_user(&user)
                .await
                .context("could not create the user")?;
            if let Some(amount) = credits {
                grant(ctx, issued.user_id, amount).await?;
            }
            print_json(&json!({
                "user_id": issued.user_id,
                "api_key": issued.api_key,
                "webhook_token": issued.webhook_token,
            }));
        }
        AdminCommand::CreateKey { user, name } => {
            let issued = ctx
                .store
                .tenancy()
                .create_api_key(user, name.as_deref())
                .await
                .context("could not create the key")?;
            print_json(&issued);
        }
        AdminCommand::ListKeys { user } => {
            let keys = ctx
                .store
                .tenancy()
                .list_api_keys(user)
                .await
                .context("could not list the keys")?;
            for key in keys {
                print_json(&key);
            }
        }
        AdminCommand::RevokeKey { user, key_id } => {
            let key = ctx
                .store
                .tenancy()
                .revoke_api_key(user, key_id)
                .await
                .context("could not revoke the key")?;
            print_json(&json!({ "key_id": key.key_id, "revoked_at": key.revoked_at }));
        }
        AdminCommand::AddAgent {
            user,
            provider,
            external_id,
            name,
        } => {
            let agent_id = ctx
                .store
                .tenancy()
                .add_agent(user, provider.as_str(), &external_id, name.as_deref())
                .await
                .context("could not add the agent")?;
            print_json(&json!({ "agent_id": agent_id }));
        }
        AdminCommand::GrantCredits { user, amount } => {
            anyhow::ensure!(
                ctx.store.tenancy().user_exists(user).await?,
                "no user with id {user}"
            );
            let balance = grant(ctx, user, amount).await?;
            print_json(&json!({ "balance": balance }));
        }
        AdminCommand::AdjustCredits {
            user,
            amount,
            reason,
        } => {
            anyhow::ensure!(
                ctx.store.tenancy().user_exists(user).await?,
                "no user with id {user}"
            );
            anyhow::ensure!(!reason.trim().is_empty(), "--reason must not be blank");
            let data = json!({ "amount": amount, "reason": reason.trim() });
            let balance = record_credits(ctx, user, CreditEvent::Adjusted(data)).await?;
            print_json(&json!({ "balance": balance }));
        }
        AdminCommand::Rejected { limit } => {
            for row in ctx.log.recent_rejected(limit).await? {
                print_json(&row);
            }
        }
        AdminCommand::Conflicts { limit } => {
            for row in ctx.log.recent_conflicts(limit).await? {
                print_json(&row);
            }
        }
        AdminCommand::SetProviderSecret {
            user,
            provider,
            secret,
            previous_valid_for,
        } => {
            let key = required_secrets_key()?;
            let secret = read_secret(secret.expose())?;
            let credential = NewCredential {
                user_id: user,
                provider,
                kind: SecretKind::WebhookSigning,
                secret: secret.as_bytes(),
                base_url: None,
                previous_valid_for,
            };
            ctx.store
                .tenancy()
                .set_provider_credential(&key, credential)
                .await
                .context("could not store the secret")?;
            if provider.webhooks().signs_public_url() && public_url_unset() {
                eprintln!(
                    "note: {provider} signs the URL it calls: `calltrail serve` needs CALLTRAIL_PUBLIC_URL (the base URL {provider} calls)"
                );
            }
            print_json(&json!({ "provider": provider, "configured": true }));
        }
        AdminCommand::SetProviderApiKey {
            user,
            provider,
            key,
            base_url,
        } => {
            let secrets_key = required_secrets_key()?;
            let key = read_secret(key.expose())?;
            if provider == Provider::Twilio {
                anyhow::ensure!(
                    key.split_once(':')
                        .is_some_and(|(sid, token)| !sid.is_empty() && !token.is_empty()),
                    "a Twilio API key is given as AccountSid:AuthToken"
                );
            }
            let base_url = base_url
                .map(|url| url.trim().trim_end_matches('/').to_owned())
                .filter(|url| !url.is_empty());
            if let Some(url) = &base_url {
                anyhow::ensure!(
                    url.starts_with("http://") || url.starts_with("https://"),
                    "--base-url must be an http:// or https:// URL"
                );
            }
            let credential = NewCredential {
                user_id: user,
                provider,
                kind: SecretKind::ApiKey,
                secret: key.as_bytes(),
                base_url: base_url.as_deref(),
                previous_valid_for: Duration::ZERO,
            };
            ctx.store
                .tenancy()
                .set_provider_credential(&secrets_key, credential)
                .await
                .context("could not store the API key")?;
            print_json(&json!({ "provider": provider, "configured": true }));
        }
        AdminCommand::DemoTenant => demo_tenant(ctx).await?,
        AdminCommand::SetPrompts {
            user,
            individual_prompt_id,
            complete_prompt_id,
        } => {
            anyhow::ensure!(
                individual_prompt_id.is_some() || complete_prompt_id.is_some(),
                "give --individual-prompt-id and/or --complete-prompt-id (\"\" clears one)"
            );
            let individual = individual_prompt_id
                .map(|id| prompt_id("--individual-prompt-id", Some(&id)))
                .transpose()?;
            let complete = complete_prompt_id
                .map(|id| prompt_id("--complete-prompt-id", Some(&id)))
                .transpose()?;
            let prompts = ctx
                .store
                .tenancy()
                .set_user_prompts(
                    user,
                    individual.as_ref().map(Option::as_deref),
                    complete.as_ref().map(Option::as_deref),
                )
                .await
                .context("could not change the prompt ids")?;
            print_json(&json!({
                "user_id": user,
                "individual_prompt_id": prompts.individual_prompt_id,
                "complete_prompt_id": prompts.complete_prompt_id,
            }));
        }
    }
    Ok(())
}

/// The secret of `--secret`: the value itself, or for `-` the first line of standard input
/// (without its line end). Surrounding whitespace is kept: it would be part of the secret.
fn read_secret(value: &str) -> anyhow::Result<String> {
    let secret = if value == "-" {
        let mut line = String::new();
        std::io::stdin()
            .read_line(&mut line)
            .context("could not read the secret from standard input")?;
        line.trim_end_matches(['\n', '\r']).to_owned()
    } else {
        value.to_owned()
    };
    anyhow::ensure!(!secret.is_empty(), "the secret is empty");
    Ok(secret)
}

/// Whether `CALLTRAIL_PUBLIC_URL` is unset or empty here.
fn public_url_unset() -> bool {
    std::env::var("CALLTRAIL_PUBLIC_URL").map_or(true, |v| v.trim().is_empty())
}

/// Appends a grant event, then makes sure it is projected and returns the new balance.
async fn grant(ctx: &Ctx, user: Uuid, amount: i64) -> anyhow::Result<i64> {
    record_credits(ctx, user, CreditEvent::Granted(amount)).await
}

/// A credit event the admin commands record.
enum CreditEvent {
    /// `credits.granted` of this many credits.
    Granted(i64),
    /// `credits.adjusted` with this data (`amount`, `reason`).
    Adjusted(serde_json::Value),
}

/// Appends a credit event, projects it and returns the user's balance.
async fn record_credits(ctx: &Ctx, user: Uuid, credit: CreditEvent) -> anyhow::Result<i64> {
    let appender = ctx.log.appender(AppenderConfig {
        linger: Duration::ZERO,
        ..AppenderConfig::default()
    });
    let now = Utc::now();
    let (event_type, data, source) = match credit {
        CreditEvent::Granted(amount) => (
            calltrail_projections::fold::CREDITS_GRANTED,
            json!({ "amount": amount }),
            "admin grant-credits",
        ),
        CreditEvent::Adjusted(data) => (
            calltrail_projections::fold::CREDITS_ADJUSTED,
            data,
            "admin adjust-credits",
        ),
    };
    let event = NewEvent {
        tenant_id: user,
        provider: "calltrail".to_owned(),
        stream_id: Uuid::new_v4().to_string(),
        event_type: event_type.to_owned(),
        schema_version: 1,
        occurred_at: now,
        data: data.to_string(),
        payload: None,
        metadata: json!({ "source": source, "received_at": now }).to_string(),
    };
    appender
        .append(event)
        .await
        .context("could not record the credit change")?;
    appender.shutdown().await;
    // Catch the projection up here: safe beside a running `serve` (the checkpoint row lock
    // lets one projector work at a time), and needed when none is running.
    let projector = Projector::new(
        ctx.log.clone(),
        ctx.store.clone(),
        ProjectorConfig::default(),
    );
    let caught_up = catch_up(&projector).await;
    // Hand the projection back at once, so a `serve` starting now need not wait out our lease.
    if let Err(error) = projector.release().await {
        tracing::warn!(%error, "could not release the projector lease");
    }
    caught_up.context("could not project the credit change")?;
    Ok(ctx.store.balance(user).await?)
}

/// Projects until nothing is left behind (or another process has projected it).
async fn catch_up(projector: &Projector) -> anyhow::Result<()> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let outcome = projector.run_once().await?;
        if (outcome.caught_up || outcome.standby) && projector.lag().await? == 0 {
            return Ok(());
        }
        anyhow::ensure!(
            tokio::time::Instant::now() < deadline,
            "the projection did not catch up within 30 s (is a long transaction holding readers back?)"
        );
        if outcome.standby || outcome.caught_up {
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

async fn demo_tenant(ctx: &Ctx) -> anyhow::Result<()> {
    let (issued, created, revoked) = match ctx.store.tenancy().user_by_email(DEMO_EMAIL).await? {
        Some(user) => {
            let (issued, revoked) = ctx.store.tenancy().reissue_demo_credentials(user).await?;
            (issued, false, revoked)
        }
        None => {
            let user = NewUser {
                email: DEMO_EMAIL.to_owned(),
                name: Some("Demo".to_owned()),
                ..NewUser::default()
            };
            let issued = ctx.store.tenancy().create_user(&user).await?;
            grant(ctx, issued.user_id, 100).await?;
            (issued, true, 0)
        }
    };
    ctx.store
        .tenancy()
        .add_agent(
            issued.user_id,
            Provider::Bolna.as_str(),
            DEMO_AGENT_ID,
            Some("Demo agent"),
        )
        .await
        .context("could not register the demo agent")?;
    print_json(&json!({
        "user_id": issued.user_id,
        "api_key": issued.api_key,
        "webhook_token": issued.webhook_token,
        "created": created,
        "revoked_keys": revoked,
    }));
    Ok(())
}
