//! Provider credentials: the tenants' webhook signing secrets and provider API keys
//! (`provider_secrets`, `migrations/0007`), stored only sealed with `CALLTRAIL_SECRETS_KEY`
//! (`calltrail_core::secrets`), bound to their row. Plain configuration, not events.

use calltrail_core::providers::ProviderSecret;
use calltrail_core::secrets::{SealError, SecretBinding, SecretsKey};
use calltrail_core::Provider;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::tenancy::unknown_user;
use crate::tenancy::Tenancy;
use crate::Error;

pub use calltrail_core::secrets::SecretKind;

/// A provider credential as stored: encrypted, never plaintext. `Debug` shows no bytes.
#[derive(Clone, PartialEq, Eq)]
pub struct SealedSecret {
    /// The AEAD ciphertext (with its tag).
    pub ciphertext: Vec<u8>,
    /// The AEAD nonce.
    pub nonce: Vec<u8>,
    /// The provider API's base URL of an API key, when not the provider's default.
    pub base_url: Option<String>,
    /// Until when a rotated-out credential stays valid; `None` for the current one.
    pub valid_until: Option<DateTime<Utc>>,
}

impl SealedSecret {
    /// Decrypts the credential of the row `binding` names (the one it was read from).
    pub fn open(
        &self,
        key: &SecretsKey,
        binding: &SecretBinding,
    ) -> Result<ProviderSecret, SealError> {
        key.open(binding, &self.nonce, &self.ciphertext)
    }
}

/// The associated data of a tenant's credential: what it is bound to.
pub fn secret_binding(user_id: Uuid, provider: Provider, kind: SecretKind) -> SecretBinding {
    SecretBinding {
        tenant: user_id.into_bytes(),
        provider,
        kind,
    }
}

/// A credential to store with [`ReadStore::set_provider_credential`].
#[derive(Debug, Clone, Copy)]
pub struct NewCredential<'a> {
    /// The tenant.
    pub user_id: Uuid,
    /// The provider.
    pub provider: Provider,
    /// Which credential.
    pub kind: SecretKind,
    /// The plaintext (a signing secret or an API key); sealed before it leaves this process.
    pub secret: &'a [u8],
    /// The provider API's base URL (API keys only).
    pub base_url: Option<&'a str>,
    /// How long the credentials it replaces stay valid (zero: they stop at once).
    pub previous_valid_for: std::time::Duration,
}

/// What the start-up checks need to know about stored credentials.
#[derive(Debug, Clone, Default)]
pub struct CredentialSummary {
    /// Stored credentials still in force (any kind, any provider).
    pub stored: i64,
    /// For each provider with webhook signing secrets in force: how many tenants have one.
    pub signing_tenants: Vec<(Provider, i64)>,
    /// The most recently stored credential in force, with its row's binding: opening it
    /// tells whether `CALLTRAIL_SECRETS_KEY` is the key the credentials were stored with.
    pub newest: Option<(SecretBinding, SealedSecret)>,
}

impl std::fmt::Debug for SealedSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SealedSecret")
            .field("base_url", &self.base_url)
            .field("valid_until", &self.valid_until)
            .finish_non_exhaustive()
    }
}

impl Tenancy {
    /// A tenant's still-valid credentials of one kind for one provider, the current one first,
    /// then rotated-out ones by how long they stay valid. Empty when none is stored.
    pub async fn provider_secrets(
        &self,
        user_id: Uuid,
        provider: &str,
        kind: SecretKind,
    ) -> Result<Vec<SealedSecret>, Error> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT ciphertext, nonce, base_url, valid_until FROM provider_secrets
                  WHERE user_id = $1 AND provider = $2 AND kind = $3
                    AND (valid_until IS NULL OR valid_until > now())
                  ORDER BY valid_until DESC NULLS FIRST, id DESC",
            )
            .await?;
        let rows = client
            .query(&stmt, &[&user_id, &provider, &kind.as_str()])
            .await?;
        rows.iter().map(sealed_secret).collect()
    }

    /// Stores a tenant's credential, sealed under `key` and bound to its row, as the current
    /// one of its kind. The credentials it replaces stay valid for `previous_valid_for` at most
    /// (one that would have stayed valid longer is cut to that; zero ends them at once), and
    /// rows already past their time are deleted. Fails with `NotFound` for an unknown user.
    // Not `instrument(err)`: an unknown user is the operator's mistake, which the command
    // prints as its one line (as Tenancy's admin calls).
    #[tracing::instrument(skip_all, fields(user_id = %credential.user_id, provider = %credential.provider, kind = credential.kind.as_str()))]
    pub async fn set_provider_credential(
        &self,
        key: &SecretsKey,
        credential: NewCredential<'_>,
    ) -> Result<(), Error> {
        let NewCredential {
            user_id,
            provider,
            kind,
            secret,
            base_url,
            previous_valid_for,
        } = credential;
        if secret.is_empty() {
            return Err(Error::InvalidInput("the secret is empty".to_owned()));
        }
        let binding = secret_binding(user_id, provider, kind);
        let sealed = key
            .seal(&binding, secret)
            .map_err(|err| Error::InvalidInput(err.to_string()))?;
        let window = chrono::Duration::from_std(previous_valid_for).map_err(|_| {
            Error::InvalidInput("the validity of the previous secret is too long".to_owned())
        })?;
        let valid_for_micros = window.num_microseconds().ok_or_else(|| {
            Error::InvalidInput("the validity of the previous secret is too long".to_owned())
        })?;
        let (provider, kind) = (provider.as_str(), kind.as_str());
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        // FOR UPDATE: one change of a tenant's credentials at a time (two at once would both
        // try to insert the current row), and the user cannot disappear meanwhile.
        if tx
            .query_opt("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", &[&user_id])
            .await?
            .is_none()
        {
            return Err(unknown_user(user_id));
        }
        tx.execute(
            "DELETE FROM provider_secrets
              WHERE user_id = $1 AND provider = $2 AND kind = $3 AND valid_until <= now()",
            &[&user_id, &provider, &kind],
        )
        .await?;
        tx.execute(
            "UPDATE provider_secrets
                SET valid_until = LEAST(COALESCE(valid_until, 'infinity'),
                                        now() + $4::bigint * interval '1 microsecond')
              WHERE user_id = $1 AND provider = $2 AND kind = $3",
            &[&user_id, &provider, &kind, &valid_for_micros],
        )
        .await?;
        tx.execute(
            "INSERT INTO provider_secrets (user_id, provider, kind, ciphertext, nonce, base_url)
             VALUES ($1, $2, $3, $4, $5, $6)",
            &[
                &user_id,
                &provider,
                &kind,
                &sealed.ciphertext,
                &sealed.nonce,
                &base_url,
            ],
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// What the start-up checks need: how many credentials are in force, which providers'
    /// signing secrets and for how many tenants, and the newest credential.
    pub async fn credential_summary(&self) -> Result<CredentialSummary, Error> {
        let client = self.client().await?;
        let stored = client
            .query_one(
                "SELECT count(*) AS stored FROM provider_secrets
                  WHERE valid_until IS NULL OR valid_until > now()",
                &[],
            )
            .await?
            .try_get("stored")?;
        let signing = client
            .query(
                "SELECT provider, count(DISTINCT user_id) AS tenants FROM provider_secrets
                  WHERE kind = 'webhook_signing' AND (valid_until IS NULL OR valid_until > now())
                  GROUP BY provider ORDER BY provider",
                &[],
            )
            .await?;
        let corrupt = |reason: String| Error::CorruptRow {
            table: "provider_secrets",
            reason,
        };
        let signing_tenants = signing
            .iter()
            .map(|row| {
                let provider: String = row.try_get("provider")?;
                let provider = provider
                    .parse::<Provider>()
                    .map_err(|err| corrupt(err.to_string()))?;
                Ok((provider, row.try_get("tenants")?))
            })
            .collect::<Result<Vec<_>, Error>>()?;
        let newest = client
            .query_opt(
                "SELECT user_id, provider, kind, ciphertext, nonce, base_url, valid_until
                   FROM provider_secrets
                  WHERE valid_until IS NULL OR valid_until > now()
                  ORDER BY id DESC LIMIT 1",
                &[],
            )
            .await?;
        let newest = match newest {
            None => None,
            Some(row) => {
                let provider: String = row.try_get("provider")?;
                let kind: String = row.try_get("kind")?;
                let provider = provider
                    .parse::<Provider>()
                    .map_err(|err| corrupt(err.to_string()))?;
                let kind = [SecretKind::WebhookSigning, SecretKind::ApiKey]
                    .into_iter()
                    .find(|k| k.as_str() == kind)
                    .ok_or_else(|| corrupt(format!("unknown kind `{kind}`")))?;
                let binding = secret_binding(row.try_get("user_id")?, provider, kind);
                Some((binding, sealed_secret(&row)?))
            }
        };
        Ok(CredentialSummary {
            stored,
            signing_tenants,
            newest,
        })
    }
}

/// A `provider_secrets` row's sealed credential.
fn sealed_secret(row: &tokio_postgres::Row) -> Result<SealedSecret, Error> {
    Ok(SealedSecret {
        ciphertext: row.try_get("ciphertext")?,
        nonce: row.try_get("nonce")?,
        base_url: row.try_get("base_url")?,
        valid_until: row.try_get("valid_until")?,
    })
}
