//! Web console sessions: a random id handed to the browser in a cookie, stored only as its
//! sha256, expiring and revocable. Configuration-like state (migration 0008), not events.

use chrono::{DateTime, TimeDelta, Utc};
use uuid::Uuid;

use crate::tenancy::Tenancy;
use crate::tenancy::{new_secret, secret_hash};
use crate::Error;

/// Prefix of console session ids (`cts_` + 64 hex digits).
pub const SESSION_PREFIX: &str = "cts_";

/// How long an ended session's row is kept before a sign-in prunes it.
const KEEP_ENDED: TimeDelta = TimeDelta::days(7);

/// A session just started: the id is shown to the browser once and stored only as a hash.
#[derive(Clone, PartialEq, Eq)]
pub struct IssuedSession {
    /// The secret session id (the cookie's value).
    pub id: String,
    /// When the session ends at the latest.
    pub expires_at: DateTime<Utc>,
}

impl std::fmt::Debug for IssuedSession {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IssuedSession")
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}

impl Tenancy {
    /// Starts a console session for `user_id`, valid for `lifetime`; prunes sessions that
    /// ended more than a week ago.
    #[tracing::instrument(skip_all, fields(%user_id), err)]
    pub async fn start_console_session(
        &self,
        user_id: Uuid,
        lifetime: TimeDelta,
    ) -> Result<IssuedSession, Error> {
        let id = new_secret(SESSION_PREFIX)?;
        let expires_at = Utc::now() + lifetime;
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO console_sessions (hash, user_id, expires_at) VALUES ($1, $2, $3)",
                &[&secret_hash(&id).as_slice(), &user_id, &expires_at],
            )
            .await?;
        let horizon = Utc::now() - KEEP_ENDED;
        client
            .execute(
                "DELETE FROM console_sessions WHERE expires_at < $1",
                &[&horizon],
            )
            .await?;
        Ok(IssuedSession { id, expires_at })
    }

    /// The user of a live session (not expired, not revoked), if `id` names one.
    pub async fn console_session_user(&self, id: &str) -> Result<Option<Uuid>, Error> {
        let client = self.client().await?;
        let stmt = client
            .prepare_cached(
                "SELECT user_id FROM console_sessions
                  WHERE hash = $1 AND revoked_at IS NULL AND expires_at > now()",
            )
            .await?;
        let row = client
            .query_opt(&stmt, &[&secret_hash(id).as_slice()])
            .await?;
        Ok(row.map(|r| r.try_get("user_id")).transpose()?)
    }

    /// Ends a session (sign-out). Returns whether a live session was ended.
    pub async fn revoke_console_session(&self, id: &str) -> Result<bool, Error> {
        let client = self.client().await?;
        let ended = client
            .execute(
                "UPDATE console_sessions SET revoked_at = now()
                  WHERE hash = $1 AND revoked_at IS NULL",
                &[&secret_hash(id).as_slice()],
            )
            .await?;
        Ok(ended > 0)
    }
}
