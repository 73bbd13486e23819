//! Tenancy: users (tenants), their agents, API keys and webhook tokens. Plain configuration, not
//! events. API keys and webhook tokens are shown once at creation and stored only as sha256
//! hashes (provider secrets, stored only encrypted, are in [`crate::credentials`]).

use chrono::{DateTime, Utc};
use deadpool_postgres::Object;
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use uuid::Uuid;

use crate::{Error, ReadStore};

/// The tenancy tables: users, their agents, API keys, webhook tokens and prompt ids, provider
/// credentials ([`crate::credentials`]) and console sessions ([`crate::sessions`]). Written by
/// the admin commands and sign-in, read by every authenticated request; over the read side's
/// pool (cheap to clone). Replay never touches these tables.
#[derive(Debug, Clone)]
pub struct Tenancy {
    store: ReadStore,
}

impl Tenancy {
    /// The tenancy tables over `store`'s pool.
    pub fn new(store: &ReadStore) -> Self {
        Self {
            store: store.clone(),
        }
    }

    /// A pooled connection.
    pub(crate) async fn client(&self) -> Result<Object, Error> {
        self.store.client().await
    }
}

/// Prefix of API keys (`ct_live_` + 64 hex digits).
pub const API_KEY_PREFIX: &str = "ct_live_";
/// Prefix of webhook tokens (`whk_` + 64 hex digits).
pub const WEBHOOK_TOKEN_PREFIX: &str = "whk_";

/// A user to create.
#[derive(Debug, Clone, Default)]
pub struct NewUser {
    /// Unique e-mail.
    pub email: String,
    /// Display name.
    pub name: Option<String>,
    /// The user's own OpenAI prompt id for individual analyses (`pmpt_…`).
    pub individual_prompt_id: Option<String>,
    /// The user's own OpenAI prompt id for complete analyses (`pmpt_…`).
    pub complete_prompt_id: Option<String>,
}

/// Secrets issued for a user: shown once, stored only as hashes.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedCredentials {
    /// The user (tenant) id.
    pub user_id: Uuid,
    /// Bearer key for the read API.
    pub api_key: String,
    /// Path token for webhook URLs.
    pub webhook_token: String,
}

impl std::fmt::Debug for IssuedCredentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedCredentials")
            .field("user_id", &self.user_id)
            .finish_non_exhaustive()
    }
}

/// Hex digits of an API key kept after its `ct_live_` prefix to recognise it by (32 of its 256
/// bits: enough to tell keys apart, never enough to use one).
const KEY_PREFIX_HEX_DIGITS: usize = 8;

/// How stale a key's `last_used_at` may get before a look-up writes it again.
const LAST_USED_RESOLUTION_SECS: f64 = 60.0;

/// The name `calltrail admin demo-tenant` gives the keys it issues.
pub const DEMO_KEY_NAME: &str = "demo-tenant";

/// An API key just created: the key is shown once, stored only as a hash.
#[derive(Clone, PartialEq, Eq, serde::Serialize)]
pub struct IssuedApiKey {
    /// The user (tenant) the key authenticates as.
    pub user_id: Uuid,
    /// The key's id (to list or revoke it by).
    pub key_id: Uuid,
    /// The bearer key itself.
    pub api_key: String,
    /// The key's first characters, as `list-keys` shows them.
    pub prefix: String,
    /// The key's name, if given.
    pub name: Option<String>,
}

impl std::fmt::Debug for IssuedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedApiKey")
            .field("user_id", &self.user_id)
            .field("key_id", &self.key_id)
            .field("prefix", &self.prefix)
            .finish_non_exhaustive()
    }
}

/// An API key as listed: everything but the key.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ApiKeyInfo {
    /// The key's id.
    pub key_id: Uuid,
    /// The key's first characters (`None` for keys created before prefixes were kept).
    pub prefix: Option<String>,
    /// The key's name, if given.
    pub name: Option<String>,
    /// When the key was created.
    pub created_at: DateTime<Utc>,
    /// When a request last used the key (to the minute), if ever.
    pub last_used_at: Option<DateTime<Utc>>,
    /// When the key was revoked, if it was.
    pub revoked_at: Option<DateTime<Utc>>,
}

impl ApiKeyInfo {
    fn from_row(row: &tokio_postgres::Row) -> Result<Self, Error> {
        Ok(Self {
            key_id: row.try_get("id")?,
            prefix: row.try_get("prefix")?,
            name: row.try_get("name")?,
            created_at: row.try_get("created_at")?,
            last_used_at: row.try_get("last_used_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

/// The columns of [`ApiKeyInfo`].
const KEY_COLUMNS: &str = "id, prefix, name, created_at, last_used_at, revoked_at";

/// A user's own OpenAI prompt ids (each may be unset).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct UserPrompts {
    /// Prompt id for individual analyses.
    pub individual_prompt_id: Option<String>,
    /// Prompt id for complete analyses.
    pub complete_prompt_id: Option<String>,
}

// The admin commands' calls below are not `instrument(err)`: their errors are mostly an
// operator's mistake (a taken e-mail, an unknown user), which the command prints as its one
// line; an ERROR log line besides it would be a second line, and no failure of calltrail's.
impl Tenancy {
    /// Creates a user with a fresh API key and webhook token. Fails with `Conflict` on a taken e-mail.
    #[tracing::instrument(skip_all)]
    pub async fn create_user(&self, user: &NewUser) -> Result<IssuedCredentials, Error> {
        let email = user.email.trim();
        if email.is_empty() {
            return Err(Error::InvalidInput(
                "the e-mail address is empty".to_owned(),
            ));
        }
        let user_id = Uuid::new_v4();
        let (api_key, webhook_token) = (
            new_secret(API_KEY_PREFIX)?,
            new_secret(WEBHOOK_TOKEN_PREFIX)?,
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let inserted = tx
            .execute(
                "INSERT INTO users (id, email, name, individual_prompt_id, complete_prompt_id)
                 VALUES ($1, $2, $3, $4, $5)",
                &[
                    &user_id,
                    &email,
                    &user.name,
                    &user.individual_prompt_id,
                    &user.complete_prompt_id,
                ],
            )
            .await;
        match inserted {
            Err(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
                return Err(Error::Conflict(format!(
                    "a user with e-mail {email} already exists"
                )));
            }
            other => other?,
        };
        insert_secrets(&tx, user_id, &api_key, &webhook_token).await?;
        tx.commit().await?;
        tracing::info!(%user_id, "user created");
        Ok(IssuedCredentials {
            user_id,
            api_key,
            webhook_token,
        })
    }

    /// The user with this e-mail, if any.
    pub async fn user_by_email(&self, email: &str) -> Result<Option<Uuid>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT id FROM users WHERE lower(email) = lower($1)",
                &[&email.trim()],
            )
            .await?;
        Ok(row.map(|r| r.try_get("id")).transpose()?)
    }

    /// Issues an additional API key and webhook token for an existing user (old ones stay valid).
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn issue_credentials(&self, user_id: Uuid) -> Result<IssuedCredentials, Error> {
        let (api_key, webhook_token) = (
            new_secret(API_KEY_PREFIX)?,
            new_secret(WEBHOOK_TOKEN_PREFIX)?,
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_user(&tx, user_id).await?;
        insert_secrets(&tx, user_id, &api_key, &webhook_token).await?;
        tx.commit().await?;
        Ok(IssuedCredentials {
            user_id,
            api_key,
            webhook_token,
        })
    }

    /// Registers a provider agent for a user; returns the agent's id. Idempotent for the same
    /// user; `Conflict` when another user owns it; `NotFound` for an unknown user.
    #[tracing::instrument(skip_all, fields(%user_id, provider, external_id))]
    pub async fn add_agent(
        &self,
        user_id: Uuid,
        provider: &str,
        external_id: &str,
        name: Option<&str>,
    ) -> Result<Uuid, Error> {
        let external_id = external_id.trim();
        if external_id.is_empty() {
            return Err(Error::InvalidInput("the agent id is empty".to_owned()));
        }
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_user(&tx, user_id).await?;
        let inserted = tx
            .query_opt(
                "INSERT INTO agents (id, user_id, provider, external_id, name)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (provider, external_id) DO NOTHING
                 RETURNING id",
                &[&Uuid::new_v4(), &user_id, &provider, &external_id, &name],
            )
            .await?;
        let agent_id: Uuid = match inserted {
            Some(row) => row.try_get("id")?,
            None => {
                let row = tx
                    .query_one(
                        "SELECT id, user_id FROM agents WHERE provider = $1 AND external_id = $2",
                        &[&provider, &external_id],
                    )
                    .await?;
                let owner: Uuid = row.try_get("user_id")?;
                if owner != user_id {
                    return Err(Error::Conflict(format!(
                        "the {provider} agent {external_id} is registered to another user"
                    )));
                }
                if name.is_some() {
                    tx.execute(
                        "UPDATE agents SET name = $3 WHERE provider = $1 AND external_id = $2",
                        &[&provider, &external_id, &name],
                    )
                    .await?;
                }
                row.try_get("id")?
            }
        };
        tx.commit().await?;
        Ok(agent_id)
    }

    /// The tenant a webhook token belongs to.
    pub async fn tenant_by_webhook_token(&self, token: &str) -> Result<Option<Uuid>, Error> {
        self.tenant_by_hash("SELECT user_id FROM webhook_tokens WHERE hash = $1", token)
            .await
    }

    /// The tenant an API key belongs to; `None` for an unknown or revoked key. Marks the key
    /// used (`last_used_at`) when it was not marked in the last minute, so callers that cache
    /// the answer write at most once a minute per key.
    pub async fn tenant_by_api_key(&self, api_key: &str) -> Result<Option<Uuid>, Error> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_id,
                        last_used_at IS NULL
                          OR last_used_at < now() - make_interval(secs => $2) AS stale
                   FROM api_keys WHERE hash = $1 AND revoked_at IS NULL",
            )
            .await?;
        let hash = secret_hash(api_key);
        let Some(row) = client
            .query_opt(&stmt, &[&hash.as_slice(), &LAST_USED_RESOLUTION_SECS])
            .await?
        else {
            return Ok(None);
        };
        let user_id: Uuid = row.try_get("user_id")?;
        if row.try_get::<_, bool>("stale")? {
            // Guarded again in the UPDATE: servers racing on one key write once.
            let mark = client
                .prepare_cached(
                    "UPDATE api_keys SET last_used_at = now()
                      WHERE hash = $1
                        AND (last_used_at IS NULL
                             OR last_used_at < now() - make_interval(secs => $2))",
                )
                .await?;
            client
                .execute(&mark, &[&hash.as_slice(), &LAST_USED_RESOLUTION_SECS])
                .await?;
        }
        Ok(Some(user_id))
    }

    /// Creates another API key for an existing user (`NotFound` for an unknown user).
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn create_api_key(
        &self,
        user_id: Uuid,
        name: Option<&str>,
    ) -> Result<IssuedApiKey, Error> {
        let name = name.map(str::trim).filter(|n| !n.is_empty());
        let api_key = new_secret(API_KEY_PREFIX)?;
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_user(&tx, user_id).await?;
        let key_id = insert_api_key(&tx, user_id, &api_key, name).await?;
        tx.commit().await?;
        tracing::info!(%key_id, "api key created");
        Ok(IssuedApiKey {
            user_id,
            key_id,
            prefix: key_prefix(&api_key),
            api_key,
            name: name.map(str::to_owned),
        })
    }

    /// A user's API keys, the oldest first, revoked ones included (`NotFound` for an unknown user).
    pub async fn list_api_keys(&self, user_id: Uuid) -> Result<Vec<ApiKeyInfo>, Error> {
        let client = self.client().await?;
        if client
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&user_id])
            .await?
            .is_none()
        {
            return Err(unknown_user(user_id));
        }
        let rows = client
            .query(
                &format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1
                      ORDER BY created_at, id"
                ),
                &[&user_id],
            )
            .await?;
        rows.iter().map(ApiKeyInfo::from_row).collect()
    }

    /// Revokes one of a user's API keys and returns it; revoking a revoked key keeps its first
    /// `revoked_at`. `NotFound` when the user has no key with this id.
    #[tracing::instrument(skip_all, fields(%user_id, %key_id))]
    pub async fn revoke_api_key(&self, user_id: Uuid, key_id: Uuid) -> Result<ApiKeyInfo, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                &format!(
                    "UPDATE api_keys SET revoked_at = coalesce(revoked_at, now())
                      WHERE id = $1 AND user_id = $2
                     RETURNING {KEY_COLUMNS}"
                ),
                &[&key_id, &user_id],
            )
            .await?;
        let row = row.ok_or_else(|| {
            Error::NotFound(format!("user {user_id} has no API key with id {key_id}"))
        })?;
        let key = ApiKeyInfo::from_row(&row)?;
        tracing::info!("api key revoked");
        Ok(key)
    }

    /// Issues a fresh key named [`DEMO_KEY_NAME`] and a webhook token for the demo user,
    /// revoking its earlier demo keys (those of that name, and unnamed ones, which
    /// `create-user` and earlier versions issued) in the same transaction; keys given another
    /// name stay. Returns the credentials and how many keys were revoked.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn reissue_demo_credentials(
        &self,
        user_id: Uuid,
    ) -> Result<(IssuedCredentials, u64), Error> {
        let (api_key, webhook_token) = (
            new_secret(API_KEY_PREFIX)?,
            new_secret(WEBHOOK_TOKEN_PREFIX)?,
        );
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        lock_user(&tx, user_id).await?;
        let revoked = tx
            .execute(
                "UPDATE api_keys SET revoked_at = now()
                  WHERE user_id = $1 AND revoked_at IS NULL AND (name IS NULL OR name = $2)",
                &[&user_id, &DEMO_KEY_NAME],
            )
            .await?;
        insert_api_key(&tx, user_id, &api_key, Some(DEMO_KEY_NAME)).await?;
        insert_webhook_token(&tx, user_id, &webhook_token).await?;
        tx.commit().await?;
        Ok((
            IssuedCredentials {
                user_id,
                api_key,
                webhook_token,
            },
            revoked,
        ))
    }

    /// The user owning a provider agent id, if any user registered it.
    pub async fn agent_owner(
        &self,
        provider: &str,
        external_id: &str,
    ) -> Result<Option<Uuid>, Error> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached("SELECT user_id FROM agents WHERE provider = $1 AND external_id = $2")
            .await?;
        let row = client
            .query_opt(&stmt, &[&provider, &external_id.trim()])
            .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// Whether a user exists.
    pub async fn user_exists(&self, user_id: Uuid) -> Result<bool, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt("SELECT 1 FROM users WHERE id = $1", &[&user_id])
            .await?;
        Ok(row.is_some())
    }

    /// A user's own prompt ids, or `None` for an unknown user.
    pub async fn user_prompts(&self, user_id: Uuid) -> Result<Option<UserPrompts>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT individual_prompt_id, complete_prompt_id FROM users WHERE id = $1",
                &[&user_id],
            )
            .await?;
        row.map(|r| {
            Ok(UserPrompts {
                individual_prompt_id: r.try_get("individual_prompt_id")?,
                complete_prompt_id: r.try_get("complete_prompt_id")?,
            })
        })
        .transpose()
    }

    /// Changes a user's own prompt ids: `Some(Some(id))` sets one, `Some(None)` clears it,
    /// `None` leaves it. Returns the ids now in force; `NotFound` for an unknown user.
    #[tracing::instrument(skip_all, fields(%user_id))]
    pub async fn set_user_prompts(
        &self,
        user_id: Uuid,
        individual: Option<Option<&str>>,
        complete: Option<Option<&str>>,
    ) -> Result<UserPrompts, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "UPDATE users
                    SET individual_prompt_id = CASE WHEN $2 THEN $3 ELSE individual_prompt_id END,
                        complete_prompt_id = CASE WHEN $4 THEN $5 ELSE complete_prompt_id END
                  WHERE id = $1
                 RETURNING individual_prompt_id, complete_prompt_id",
                &[
                    &user_id,
                    &individual.is_some(),
                    &individual.flatten(),
                    &complete.is_some(),
                    &complete.flatten(),
                ],
            )
            .await?;
        let row = row.ok_or_else(|| Error::NotFound(format!("no user with id {user_id}")))?;
        Ok(UserPrompts {
            individual_prompt_id: row.try_get("individual_prompt_id")?,
            complete_prompt_id: row.try_get("complete_prompt_id")?,
        })
    }

    async fn tenant_by_hash(&self, sql: &str, secret: &str) -> Result<Option<Uuid>, Error> {
        let client = self.client().await?;
        let stmt = client.prepare_cached(sql).await?;
        let hash = secret_hash(secret);
        let row = client.query_opt(&stmt, &[&hash.as_slice()]).await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }
}

async fn insert_secrets(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: Uuid,
    api_key: &str,
    webhook_token: &str,
) -> Result<(), Error> {
    insert_api_key(tx, user_id, api_key, None).await?;
    insert_webhook_token(tx, user_id, webhook_token).await
}

/// Stores an API key's hash, prefix and name; returns the key's id.
async fn insert_api_key(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: Uuid,
    api_key: &str,
    name: Option<&str>,
) -> Result<Uuid, Error> {
    let key_id = Uuid::new_v4();
    tx.execute(
        "INSERT INTO api_keys (hash, user_id, id, prefix, name) VALUES ($1, $2, $3, $4, $5)",
        &[
            &secret_hash(api_key).as_slice(),
            &user_id,
            &key_id,
            &key_prefix(api_key),
            &name,
        ],
    )
    .await?;
    Ok(key_id)
}

async fn insert_webhook_token(
    tx: &deadpool_postgres::Transaction<'_>,
    user_id: Uuid,
    webhook_token: &str,
) -> Result<(), Error> {
    tx.execute(
        "INSERT INTO webhook_tokens (hash, user_id) VALUES ($1, $2)",
        &[&secret_hash(webhook_token).as_slice(), &user_id],
    )
    .await?;
    Ok(())
}

/// The first characters of a key as listed: its `ct_live_` prefix and 8 hex digits.
fn key_prefix(api_key: &str) -> String {
    let keep = API_KEY_PREFIX.len() + KEY_PREFIX_HEX_DIGITS;
    api_key.chars().take(keep).collect()
}

/// Holds the user's row for this transaction (`FOR SHARE`: it cannot disappear between this
/// check and the rows inserted for it); `NotFound` for an unknown user.
async fn lock_user(tx: &deadpool_postgres::Transaction<'_>, user_id: Uuid) -> Result<(), Error> {
    let row = tx
        .query_opt("SELECT 1 FROM users WHERE id = $1 FOR SHARE", &[&user_id])
        .await?;
    match row {
        Some(_) => Ok(()),
        None => Err(unknown_user(user_id)),
    }
}

pub(crate) fn unknown_user(user_id: Uuid) -> Error {
    Error::NotFound(format!("no user with id {user_id}"))
}

/// `prefix` followed by 32 random bytes in hex.
pub(crate) fn new_secret(prefix: &str) -> Result<String, Error> {
    let mut bytes = [0_u8; 32];
    getrandom::fill(&mut bytes).map_err(Error::Random)?;
    Ok(format!("{prefix}{}", hex::encode(bytes)))
}

/// The sha256 of a secret, the only form in which it is stored.
pub(crate) fn secret_hash(secret: &str) -> [u8; 32] {
    Sha256::digest(secret.trim().as_bytes()).into()
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn secrets_have_their_prefix_and_64_hex_digits() {
        let key = new_secret(API_KEY_PREFIX).unwrap();
        let hex = key.strip_prefix("ct_live_").unwrap();
        assert_eq!(hex.len(), 64);
        assert!(hex.chars().all(|c| c.is_ascii_hexdigit()));
        assert_ne!(key, new_secret(API_KEY_PREFIX).unwrap());
        assert!(new_secret(WEBHOOK_TOKEN_PREFIX)
            .unwrap()
            .starts_with("whk_"));
    }

    #[test]
    fn a_key_prefix_recognises_a_key_without_giving_it_away() {
        let key = new_secret(API_KEY_PREFIX).unwrap();
        let prefix = key_prefix(&key);
        assert_eq!(prefix.len(), "ct_live_".len() + 8);
        assert!(key.starts_with(&prefix));
    }

    #[test]
    fn hash_ignores_surrounding_whitespace() {
        assert_eq!(secret_hash("abc"), secret_hash(" abc\n"));
        assert_ne!(secret_hash("abc"), secret_hash("abd"));
    }
}
