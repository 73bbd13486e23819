//! Where a streaming replica stands against its primary: what the read API needs to decide
//! whether its queries may go to the replica (`CALLTRAIL_READ_DATABASE_URL`, docs/scaling.md).

use std::time::Duration;

use crate::{Error, ReadStore};

/// A replica's replay position, read on the replica.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplicaPosition {
    /// True for a standby (in recovery); false means the URL names a primary.
    pub in_recovery: bool,
    /// Bytes of WAL replayed (`pg_last_wal_replay_lsn()` as a number), when in recovery.
    pub replayed: Option<i64>,
    /// Age of the last replayed commit while WAL received is not replayed yet; zero when
    /// everything received is replayed.
    pub behind: Duration,
}

impl ReadStore {
    /// This server's replay position (run it on the replica).
    pub async fn replica_position(&self) -> Result<ReplicaPosition, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT pg_is_in_recovery() AS in_recovery,
                        pg_wal_lsn_diff(pg_last_wal_replay_lsn(), '0/0')::bigint AS replayed,
                        CASE WHEN pg_last_wal_receive_lsn() IS NOT DISTINCT FROM pg_last_wal_replay_lsn()
                             THEN 0
                             ELSE COALESCE(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0)
                        END::float8 AS behind",
                &[],
            )
            .await?;
        let behind: f64 = row.try_get("behind")?;
        Ok(ReplicaPosition {
            in_recovery: row.try_get("in_recovery")?,
            replayed: row.try_get("replayed")?,
            behind: Duration::try_from_secs_f64(behind.max(0.0)).unwrap_or(Duration::MAX),
        })
    }

    /// Bytes of WAL this server has written (`pg_current_wal_lsn()`; run it on the primary).
    pub async fn wal_written(&self) -> Result<i64, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint AS written",
                &[],
            )
            .await?;
        Ok(row.try_get("written")?)
    }
}
