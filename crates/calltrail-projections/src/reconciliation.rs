//! Reconciliation's storage (docs/CONTRACT.md §6, `migrations/0013`): the calls to check, the
//! lease that lets one process at a time reconcile (the projector's leasing idea: a row locked
//! `FOR UPDATE SKIP LOCKED` carrying `owner` and `lease_until`), and each run's result per
//! tenant and provider (`reconcile_runs`, for `GET /v1/reconciliation`). Not events.

use std::time::Duration;

use calltrail_core::lifecycle::LifecycleStatus;
use chrono::{DateTime, Utc};
use uuid::Uuid;

use crate::{Error, ReadStore};

/// The lease row's key.
const LEASE: &str = "reconcile";

/// A call reconciliation may check.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StaleCall {
    /// The tenant.
    pub user_id: Uuid,
    /// The provider.
    pub provider: String,
    /// The provider's call id.
    pub execution_id: String,
    /// Whether the tenant has a current API key for the provider.
    pub has_key: bool,
}

/// One tenant's last result for one provider (`GET /v1/reconciliation`). The counts are calls:
/// `checked = appended + unchanged + errors`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct ReconcileRun {
    /// The provider (`bolna`, `vapi`, `elevenlabs`, `twilio`, `retell`).
    pub provider: String,
    /// When the run started.
    pub started_at: DateTime<Utc>,
    /// When it finished.
    pub finished_at: DateTime<Utc>,
    /// Calls checked against the provider's API.
    pub checked: i64,
    /// Calls that got at least one status the webhooks had not brought.
    pub appended: i64,
    /// Calls whose log already had what the API shows.
    pub unchanged: i64,
    /// Calls that could not be fetched or read (refused key, unknown call, failures, garbage).
    pub errors: i64,
    /// The run's last error, when it had one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_error: Option<String>,
}

/// What an attempt to take the lease found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Taken: this process runs now.
    Taken,
    /// Another process holds it.
    Held,
    /// Free, but the last run started less than the interval ago.
    NotDue,
}

fn millis(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl ReadStore {
    /// Calls not in a terminal lifecycle status whose last event was recorded more than
    /// `older_than` ago (of `provider` only, when given), oldest first, with whether the
    /// tenant has a current API key for the call's provider.
    pub async fn stale_calls(
        &self,
        older_than: Duration,
        provider: Option<&str>,
    ) -> Result<Vec<StaleCall>, Error> {
        let terminal: Vec<&str> = LifecycleStatus::KNOWN
            .iter()
            .filter(|s| s.is_terminal())
            .map(LifecycleStatus::as_str)
            .collect();
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT c.user_id, c.provider, c.execution_id,
                        EXISTS (SELECT 1 FROM provider_secrets s
                                 WHERE s.user_id = c.user_id AND s.provider = c.provider
                                   AND s.kind = 'api_key' AND s.valid_until IS NULL) AS has_key
                   FROM calls c
                   JOIN events e ON e.position = c.last_position
                  WHERE c.call_lifecycle_status <> ALL($1)
                    AND e.recorded_at < now() - $2::int8 * interval '1 millisecond'
                    AND ($3::text IS NULL OR c.provider = $3)
                  ORDER BY e.recorded_at, c.user_id, c.provider, c.execution_id",
                &[&terminal, &millis(older_than), &provider],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(StaleCall {
                    user_id: row.try_get("user_id")?,
                    provider: row.try_get("provider")?,
                    execution_id: row.try_get("execution_id")?,
                    has_key: row.try_get("has_key")?,
                })
            })
            .collect()
    }

    /// The tenants with a current API key, and for which provider (of `provider` only, when
    /// given): each gets a run result, calls to check or not.
    pub async fn keyed_tenants(
        &self,
        provider: Option<&str>,
    ) -> Result<Vec<(Uuid, String)>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT DISTINCT user_id, provider FROM provider_secrets
                  WHERE kind = 'api_key' AND valid_until IS NULL
                    AND ($1::text IS NULL OR provider = $1)
                  ORDER BY user_id, provider",
                &[&provider],
            )
            .await?;
        rows.iter()
            .map(|row| Ok((row.try_get("user_id")?, row.try_get("provider")?)))
            .collect()
    }

    /// Takes the reconciliation lease for `owner` for `lease`, unless another process holds
    /// it, or (with `every`) the last run started less than `every` ago.
    pub async fn take_reconcile_lease(
        &self,
        owner: &str,
        lease: Duration,
        every: Option<Duration>,
    ) -> Result<LeaseOutcome, Error> {
        let mut client = self.client().await?;
        let tx = client.transaction().await?;
        let every_ms = every.map(millis);
        let row = tx
            .query_opt(
                "SELECT COALESCE(owner IS DISTINCT FROM $2 AND lease_until > now(), false) AS held,
                        COALESCE($3::int8 IS NOT NULL
                            AND last_started_at > now() - $3::int8 * interval '1 millisecond',
                            false) AS not_due
                   FROM reconcile_lease WHERE name = $1 FOR UPDATE SKIP LOCKED",
                &[&LEASE, &owner, &every_ms],
            )
            .await?;
        let Some(row) = row else {
            return Ok(LeaseOutcome::Held);
        };
        if row.try_get::<_, bool>("held")? {
            return Ok(LeaseOutcome::Held);
        }
        if row.try_get::<_, bool>("not_due")? {
            return Ok(LeaseOutcome::NotDue);
        }
        tx.execute(
            "UPDATE reconcile_lease
                SET owner = $2, lease_until = now() + $3::int8 * interval '1 millisecond',
                    last_started_at = now()
              WHERE name = $1",
            &[&LEASE, &owner, &millis(lease)],
        )
        .await?;
        tx.commit().await?;
        Ok(LeaseOutcome::Taken)
    }

    /// Extends `owner`'s lease; `false` when it is no longer `owner`'s.
    pub async fn renew_reconcile_lease(&self, owner: &str, lease: Duration) -> Result<bool, Error> {
        let client = self.client().await?;
        let updated = client
            .execute(
                "UPDATE reconcile_lease
                    SET lease_until = now() + $3::int8 * interval '1 millisecond'
                  WHERE name = $1 AND owner = $2",
                &[&LEASE, &owner, &millis(lease)],
            )
            .await?;
        Ok(updated == 1)
    }

    /// Gives the lease up at the end of `owner`'s run.
    pub async fn release_reconcile_lease(&self, owner: &str) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                "UPDATE reconcile_lease
                    SET owner = NULL, lease_until = NULL, last_finished_at = now()
                  WHERE name = $1 AND owner = $2",
                &[&LEASE, &owner],
            )
            .await?;
        Ok(())
    }

    /// Stores one tenant's result for one provider (replacing the previous one).
    pub async fn record_reconcile_run(
        &self,
        user_id: Uuid,
        run: &ReconcileRun,
    ) -> Result<(), Error> {
        let client = self.client().await?;
        client
            .execute(
                "INSERT INTO reconcile_runs
                     (user_id, provider, started_at, finished_at, checked, appended, unchanged,
                      errors, last_error)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
                 ON CONFLICT (user_id, provider) DO UPDATE
                    SET started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at,
                        checked = EXCLUDED.checked, appended = EXCLUDED.appended,
                        unchanged = EXCLUDED.unchanged, errors = EXCLUDED.errors,
                        last_error = EXCLUDED.last_error",
                &[
                    &user_id,
                    &run.provider,
                    &run.started_at,
                    &run.finished_at,
                    &run.checked,
                    &run.appended,
                    &run.unchanged,
                    &run.errors,
                    &run.last_error,
                ],
            )
            .await?;
        Ok(())
    }

    /// A tenant's last result per provider, by provider name.
    pub async fn reconcile_runs(&self, user_id: Uuid) -> Result<Vec<ReconcileRun>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT provider, started_at, finished_at, checked, appended, unchanged, errors,
                        last_error
                   FROM reconcile_runs WHERE user_id = $1 ORDER BY provider",
                &[&user_id],
            )
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ReconcileRun {
                    provider: row.try_get("provider")?,
                    started_at: row.try_get("started_at")?,
                    finished_at: row.try_get("finished_at")?,
                    checked: row.try_get("checked")?,
                    appended: row.try_get("appended")?,
                    unchanged: row.try_get("unchanged")?,
                    errors: row.try_get("errors")?,
                    last_error: row.try_get("last_error")?,
                })
            })
            .collect()
    }
}
