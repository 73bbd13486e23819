//! Stored answers of write requests sent with an `Idempotency-Key` (CONTRACT §6): the same
//! key with the same request gets the stored answer again; with another request it is
//! refused. Not a read model (migration 0012): replay never touches it.

use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::{Error, ReadStore};

/// An answer as stored: HTTP status and JSON body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredAnswer {
    /// HTTP status.
    pub status: u16,
    /// JSON body.
    pub body: String,
}

/// What a key says about a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeyState {
    /// Never used: do the work, then [`ReadStore::store_answer`].
    New,
    /// Used for this same request: answer this.
    Answered(StoredAnswer),
    /// Used for another request (route or body).
    Reused,
}

/// The request's fingerprint: route and body.
pub fn request_hash(route: &str, body: &[u8]) -> Vec<u8> {
    Sha256::new()
        .chain_update(route.as_bytes())
        .chain_update([0])
        .chain_update(body)
        .finalize()
        .to_vec()
}

impl ReadStore {
    /// What `key` of `tenant` says about a request with this fingerprint.
    pub async fn idempotency_key(
        &self,
        tenant: Uuid,
        key: &str,
        hash: &[u8],
    ) -> Result<KeyState, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT request_hash, status, body FROM idempotency_keys
                  WHERE user_id = $1 AND key = $2",
                &[&tenant, &key],
            )
            .await?;
        let Some(row) = row else {
            return Ok(KeyState::New);
        };
        let stored: Vec<u8> = row.try_get(0)?;
        if stored != hash {
            return Ok(KeyState::Reused);
        }
        let status: i16 = row.try_get(1)?;
        Ok(KeyState::Answered(StoredAnswer {
            status: u16::try_from(status).unwrap_or(200),
            body: row.try_get(2)?,
        }))
    }

    /// Stores the answer under `key` unless a concurrent request stored one first, and
    /// returns the stored one (so both requests give the same answer).
    pub async fn store_answer(
        &self,
        tenant: Uuid,
        key: &str,
        route: &str,
        hash: &[u8],
        answer: &StoredAnswer,
    ) -> Result<StoredAnswer, Error> {
        let client = self.client().await?;
        let status = i16::try_from(answer.status).unwrap_or(200);
        client
            .execute(
                "INSERT INTO idempotency_keys (user_id, key, route, request_hash, status, body)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (user_id, key) DO NOTHING",
                &[&tenant, &key, &route, &hash, &status, &answer.body],
            )
            .await?;
        match self.idempotency_key(tenant, key, hash).await? {
            KeyState::Answered(stored) => Ok(stored),
            KeyState::New | KeyState::Reused => Ok(answer.clone()),
        }
    }
}
