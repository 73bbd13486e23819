//! The calls export behind `GET /v1/calls.csv`: the list's filters and order, read through a
//! server-side cursor a chunk at a time, so memory stays constant however many calls match.

use tokio::sync::mpsc;
use tokio_postgres::types::ToSql;
use uuid::Uuid;

use crate::queries::{call_view, filter_conditions, normalized_phone, CALL_COLUMNS};
use crate::views::CallView;
use crate::{CallFilter, Error, ReadStore};

impl ReadStore {
    /// Sends the tenant's calls matching `filter`, in its order, to `sink` in chunks of
    /// `chunk` rows, from one server-side cursor (a portal in a read-only transaction, so the
    /// export is one consistent snapshot). Stops early, without error, when `sink` is closed
    /// (the client went away); a failure part-way is returned after the chunks already sent.
    pub async fn export_calls(
        &self,
        tenant: Uuid,
        filter: &CallFilter,
        chunk: i32,
        sink: mpsc::Sender<Vec<CallView>>,
    ) -> Result<(), Error> {
        let chunk = chunk.max(1);
        let phone = normalized_phone(filter);
        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE user_id = $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant];
        filter_conditions(filter, phone.as_ref(), &mut sql, &mut params);
        sql.push_str(" ORDER BY ");
        sql.push_str(filter.sort.order_by());

        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let statement = tx.prepare(&sql).await?;
        let portal = tx.bind(&statement, &params).await?;
        loop {
            let rows = tx.query_portal(&portal, chunk).await?;
            let done = rows.len() < usize::try_from(chunk).unwrap_or(usize::MAX);
            let calls = rows.iter().map(call_view).collect::<Result<Vec<_>, _>>()?;
            if !calls.is_empty() && sink.send(calls).await.is_err() {
                break;
            }
            if done {
                break;
            }
        }
        tx.commit().await?;
        Ok(())
    }
}
