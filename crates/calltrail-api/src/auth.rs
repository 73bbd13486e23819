//! Authentication: the [`Tenant`] extractor (`Authorization: Bearer <api_key>`) and a short-lived
//! in-memory cache of API keys, webhook tokens, agent owners and providers' signing secrets, so
//! the hot path does not ask the database on every request.

use std::borrow::Borrow;
use std::collections::HashMap;
use std::future::Future;
use std::hash::Hash;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use actix_web::http::header;
use actix_web::{web, FromRequest, HttpRequest};
use calltrail_core::providers::ProviderSecret;
use calltrail_core::secrets::SecretsKey;
use calltrail_core::Provider;
use calltrail_projections::credentials::{secret_binding, SealedSecret, SecretKind};
use uuid::Uuid;

use crate::error::ApiError;
use crate::AppState;

/// Entries a cache keeps before it sweeps (and, if still full, starts over).
const CACHE_CAPACITY: usize = 10_000;
/// How long "no tenant registered this agent" is believed: short, so a newly registered
/// agent is enforced almost at once.
const NEGATIVE_AGENT_TTL: Duration = Duration::from_secs(2);
/// How often signatures that fail with the cached secrets may have them read again: a secret
/// set a moment ago is used at once, and a flood of bad signatures costs one query a second.
const SECRETS_REFRESH_INTERVAL: Duration = Duration::from_secs(1);
/// Longest a tenant's signing secrets are cached: a secret that stopped being valid (replaced
/// without a window) is refused within this time by every running server.
const SECRETS_TTL: Duration = Duration::from_secs(5);

/// Longest an API key is cached: a key revoked with `calltrail admin revoke-key` is refused
/// within this time by every running server (and `last_used_at` is written when it expires).
pub const API_KEY_TTL: Duration = Duration::from_secs(5);

/// The tenant an API request is authenticated as.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tenant(pub Uuid);

impl FromRequest for Tenant {
    type Error = ApiError;
    type Future = Pin<Box<dyn Future<Output = Result<Self, Self::Error>>>>;

    fn from_request(req: &HttpRequest, _payload: &mut actix_web::dev::Payload) -> Self::Future {
        let key = bearer_token(req).map(str::to_owned);
        let state = req.app_data::<web::Data<AppState>>().cloned();
        Box::pin(async move {
            let (Some(key), Some(state)) = (key, state) else {
                return Err(ApiError::Unauthorized);
            };
            match state.tenant_by_api_key(&key).await? {
                Some(tenant) => Ok(Tenant(tenant)),
                None => Err(ApiError::Unauthorized),
            }
        })
    }
}

/// The key of `Authorization: Bearer <key>` (scheme case-insensitive), if present and non-empty.
fn bearer_token(req: &HttpRequest) -> Option<&str> {
    let value = req.headers().get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, key) = value.trim().split_once(' ')?;
    let key = key.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !key.is_empty()).then_some(key)
}

/// A small map whose entries expire.
struct TtlMap<K, V> {
    entries: Mutex<HashMap<K, (V, Instant)>>,
}

impl<K: Eq + Hash, V: Clone> TtlMap<K, V> {
    fn new() -> Self {
        Self {
            entries: Mutex::new(HashMap::new()),
        }
    }

    fn get<Q>(&self, key: &Q) -> Option<V>
    where
        K: Borrow<Q>,
        Q: Eq + Hash + ?Sized,
    {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .get(key)
            .filter(|(_, expires)| *expires > Instant::now())
            .map(|(value, _)| value.clone())
    }

    fn insert(&self, key: K, value: V, ttl: Duration) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        if entries.len() >= CACHE_CAPACITY {
            entries.retain(|_, (_, expires)| *expires > now);
            if entries.len() >= CACHE_CAPACITY {
                entries.clear();
            }
        }
        entries.insert(key, (value, now + ttl));
    }
}

/// Cached tenancy look-ups (cheap to clone; shared by every worker).
#[derive(Clone)]
pub(crate) struct TenancyCache {
    ttl: Duration,
    api_keys: Arc<TtlMap<String, Uuid>>,
    webhook_tokens: Arc<TtlMap<String, Uuid>>,
    agents: Arc<TtlMap<(String, String), Option<Uuid>>>,
    signing_secrets: Arc<TtlMap<(Uuid, Provider), CachedSecrets>>,
}

/// A tenant's signing secrets for one provider, shared between the cache and its readers.
type Secrets = Arc<[ProviderSecret]>;

/// Signing secrets as cached: the decrypted list, and when a failed signature last had them
/// read again (`None`: they were read for the cache).
#[derive(Clone)]
struct CachedSecrets {
    secrets: Secrets,
    rechecked_at: Option<Instant>,
}

impl TenancyCache {
    /// A cache whose positive answers live for `ttl` (unknown keys and tokens are not cached).
    pub(crate) fn new(ttl: Duration) -> Self {
        Self {
            ttl,
            api_keys: Arc::new(TtlMap::new()),
            webhook_tokens: Arc::new(TtlMap::new()),
            agents: Arc::new(TtlMap::new()),
            signing_secrets: Arc::new(TtlMap::new()),
        }
    }
}

impl AppState {
    /// The tenant owning this API key (cached for [`API_KEY_TTL`] at most; revoked keys and
    /// unknown ones are not cached).
    pub(crate) async fn tenant_by_api_key(&self, key: &str) -> Result<Option<Uuid>, ApiError> {
        let cache = &self.tenancy().api_keys;
        if let Some(tenant) = cache.get(key) {
            return Ok(Some(tenant));
        }
        let store = self.store().clone();
        let owned = key.to_owned();
        let tenant = self
            .on_db_runtime(async move { store.tenancy().tenant_by_api_key(&owned).await })
            .await?
            .map_err(ApiError::from_store)?;
        if let Some(tenant) = tenant {
            cache.insert(key.to_owned(), tenant, self.tenancy().ttl.min(API_KEY_TTL));
        }
        Ok(tenant)
    }

    /// The tenant owning this webhook token (cached).
    pub(crate) async fn tenant_by_webhook_token(
        &self,
        token: &str,
    ) -> Result<Option<Uuid>, ApiError> {
        let cache = &self.tenancy().webhook_tokens;
        if let Some(tenant) = cache.get(token) {
            return Ok(Some(tenant));
        }
        let store = self.store().clone();
        let owned = token.to_owned();
        let tenant = self
            .on_db_runtime(async move { store.tenancy().tenant_by_webhook_token(&owned).await })
            .await?
            .map_err(ApiError::from_store)?;
        if let Some(tenant) = tenant {
            cache.insert(token.to_owned(), tenant, self.tenancy().ttl);
        }
        Ok(tenant)
    }

    /// The tenant's currently valid webhook signing secrets for a provider, decrypted, the
    /// newest first (cached for 5 s at most, "none" included, so an unsigned provider costs one
    /// look-up per tenant and TTL; never past the moment a rotated-out secret stops being valid).
    pub(crate) async fn provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
    ) -> Result<Secrets, ApiError> {
        match self.tenancy().signing_secrets.get(&(tenant, provider)) {
            Some(cached) => Ok(cached.secrets),
            None => self.load_provider_secrets(tenant, provider, None).await,
        }
    }

    /// After a signature failed with `seen`: the tenant's secrets read again, when no failure
    /// had them read in the last second, and they differ now (a secret set since, or rotated
    /// out); otherwise `None`. So a new secret verifies at once, and a flood of bad signatures
    /// costs one query a second.
    pub(crate) async fn fresher_provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
        seen: &[ProviderSecret],
    ) -> Result<Option<Secrets>, ApiError> {
        let cached = self.tenancy().signing_secrets.get(&(tenant, provider));
        let recent = |c: &CachedSecrets| {
            c.rechecked_at
                .is_some_and(|at| at.elapsed() < SECRETS_REFRESH_INTERVAL)
        };
        if cached.as_ref().is_some_and(recent) {
            return Ok(None);
        }
        let fresh = self
            .load_provider_secrets(tenant, provider, Some(Instant::now()))
            .await?;
        Ok((*fresh != *seen).then_some(fresh))
    }

    async fn load_provider_secrets(
        &self,
        tenant: Uuid,
        provider: Provider,
        rechecked_at: Option<Instant>,
    ) -> Result<Secrets, ApiError> {
        let store = self.store().clone();
        let sealed = self
            .on_db_runtime(async move {
                store
                    .tenancy()
                    .provider_secrets(tenant, provider.as_str(), SecretKind::WebhookSigning)
                    .await
            })
            .await?
            .map_err(ApiError::from_store)?;
        let ttl = secrets_ttl(
            self.tenancy().ttl.min(SECRETS_TTL),
            &sealed,
            chrono::Utc::now(),
        );
        let secrets = open_secrets(
            self.config().secrets_key.as_ref(),
            tenant,
            provider,
            &sealed,
        );
        let cached = CachedSecrets {
            secrets: Arc::clone(&secrets),
            rechecked_at,
        };
        self.tenancy()
            .signing_secrets
            .insert((tenant, provider), cached, ttl);
        Ok(secrets)
    }

    /// The tenant that registered this provider agent, if any (cached; "none" only briefly).
    pub(crate) async fn agent_owner(
        &self,
        provider: &str,
        agent_id: &str,
    ) -> Result<Option<Uuid>, ApiError> {
        if agent_id.contains('\0') {
            // PostgreSQL text cannot hold U+0000, so no agent with such an id was registered
            // (and asking would fail): the webhook goes on and is refused for its content.
            return Ok(None);
        }
        let cache = &self.tenancy().agents;
        let key = (provider.to_owned(), agent_id.to_owned());
        if let Some(owner) = cache.get(&key) {
            return Ok(owner);
        }
        let store = self.store().clone();
        let (p, a) = key.clone();
        let owner = self
            .on_db_runtime(async move { store.tenancy().agent_owner(&p, &a).await })
            .await?
            .map_err(ApiError::from_store)?;
        let ttl = self.tenancy().ttl;
        cache.insert(
            key,
            owner,
            if owner.is_some() {
                ttl
            } else {
                ttl.min(NEGATIVE_AGENT_TTL)
            },
        );
        Ok(owner)
    }
}

/// How long a tenant's secrets may be cached: the cache's TTL, but never past the moment a
/// rotated-out secret stops being valid.
fn secrets_ttl(
    ttl: Duration,
    sealed: &[SealedSecret],
    now: chrono::DateTime<chrono::Utc>,
) -> Duration {
    sealed
        .iter()
        .filter_map(|secret| secret.valid_until)
        .map(|until| (until - now).to_std().unwrap_or(Duration::ZERO))
        .fold(ttl, Duration::min)
}

/// The secrets a signature check can use: every stored one that opens under the key. One that
/// does not (no key configured, another key, an altered row) is left out and logged without
/// its bytes; with none left the provider is fail-closed (401 `signature_not_configured`).
fn open_secrets(
    key: Option<&SecretsKey>,
    tenant: Uuid,
    provider: Provider,
    sealed: &[SealedSecret],
) -> Secrets {
    if sealed.is_empty() {
        return Arc::from(Vec::new());
    }
    let Some(key) = key else {
        tracing::error!(
            tenant_id = %tenant,
            %provider,
            stored = sealed.len(),
            "provider signing secrets are stored but CALLTRAIL_SECRETS_KEY is not set: \
             the provider's webhooks are refused with signature_not_configured"
        );
        return Arc::from(Vec::new());
    };
    let binding = secret_binding(tenant, provider, SecretKind::WebhookSigning);
    sealed
        .iter()
        .filter_map(|secret| match secret.open(key, &binding) {
            Ok(opened) => Some(opened),
            Err(error) => {
                tracing::error!(
                    tenant_id = %tenant,
                    %provider,
                    %error,
                    "a stored provider signing secret cannot be used"
                );
                None
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    #[test]
    fn bearer_token_is_read_case_insensitively() {
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "bearer  abc123 "))
            .to_http_request();
        assert_eq!(bearer_token(&req), Some("abc123"));
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Basic abc123"))
            .to_http_request();
        assert_eq!(bearer_token(&req), None);
        let req = TestRequest::default()
            .insert_header((header::AUTHORIZATION, "Bearer "))
            .to_http_request();
        assert_eq!(bearer_token(&req), None);
        assert_eq!(
            bearer_token(&TestRequest::default().to_http_request()),
            None
        );
    }

    #[test]
    fn secrets_are_cached_no_longer_than_a_rotated_one_stays_valid() {
        let now = chrono::Utc::now();
        let sealed = |minutes: Option<i64>| SealedSecret {
            ciphertext: vec![1],
            nonce: vec![0; 12],
            base_url: None,
            valid_until: minutes.map(|m| now + chrono::Duration::minutes(m)),
        };
        let ttl = Duration::from_secs(30);
        assert_eq!(secrets_ttl(ttl, &[], now), ttl);
        assert_eq!(
            secrets_ttl(ttl, &[sealed(None), sealed(Some(60))], now),
            ttl
        );
        assert_eq!(
            secrets_ttl(ttl, &[sealed(None), sealed(Some(0))], now),
            Duration::ZERO
        );
        let soon = SealedSecret {
            valid_until: Some(now + chrono::Duration::seconds(10)),
            ..sealed(None)
        };
        assert_eq!(secrets_ttl(ttl, &[soon], now), Duration::from_secs(10));
    }

    #[test]
    fn stored_secrets_open_only_with_the_key_and_for_their_own_row() {
        let key = SecretsKey::from_base64("AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=").ok();
        let Some(key) = key else {
            panic!("the test key is valid base64 of 32 bytes")
        };
        let (ann, bob) = (Uuid::new_v4(), Uuid::new_v4());
        let seal = |user, provider, secret: &[u8]| {
            let binding = secret_binding(user, provider, SecretKind::WebhookSigning);
            let sealed = key.seal(&binding, secret).ok();
            let Some(sealed) = sealed else {
                panic!("sealing works")
            };
            SealedSecret {
                ciphertext: sealed.ciphertext,
                nonce: sealed.nonce,
                base_url: None,
                valid_until: None,
            }
        };
        let rows = [
            seal(ann, Provider::Vapi, b"ann-vapi"),
            seal(bob, Provider::Vapi, b"bob-vapi"),
            seal(ann, Provider::Retell, b"ann-retell"),
        ];
        let opened = open_secrets(Some(&key), ann, Provider::Vapi, &rows);
        assert_eq!(&*opened, &[ProviderSecret::new(b"ann-vapi".to_vec())]);
        assert!(open_secrets(None, ann, Provider::Vapi, &rows).is_empty());
        assert!(open_secrets(Some(&key), ann, Provider::Vapi, &[]).is_empty());
    }

    #[test]
    fn ttl_map_expires_entries() {
        let map = TtlMap::<String, u32>::new();
        map.insert("a".into(), 1, Duration::from_secs(60));
        map.insert("b".into(), 2, Duration::ZERO);
        assert_eq!(map.get("a"), Some(1));
        assert_eq!(map.get("b"), None);
        assert_eq!(map.get("c"), None);
    }
}
