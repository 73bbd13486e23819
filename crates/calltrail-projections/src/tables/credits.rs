//! The credit tables: `credit_balances` (loaded and upserted per user) and
//! `credit_transactions` (append-only, one row per event that grants or changes a charge).

use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::fold::{Changes, Snapshot};
use crate::Error;

/// The stored balances of these users (those that have one).
pub(crate) async fn load_balances(
    client: &impl GenericClient,
    schema: &str,
    users: &[Uuid],
) -> Result<Vec<(Uuid, i64)>, Error> {
    if users.is_empty() {
        return Ok(Vec::new());
    }
    let sql =
        format!("SELECT user_id, balance FROM {schema}.credit_balances WHERE user_id = ANY($1)");
    let mut loaded = Vec::new();
    for row in client.query(&sql, &[&users]).await? {
        loaded.push((row.try_get("user_id")?, row.try_get("balance")?));
    }
    Ok(loaded)
}

/// Upserts the balances `changes` names, from `snapshot`.
pub(super) async fn write_balances(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    let (users, balances): (Vec<Uuid>, Vec<i64>) = changes
        .balances
        .iter()
        .filter_map(|u| snapshot.balances.get(u).map(|b| (*u, *b)))
        .unzip();
    if users.is_empty() {
        return Ok(());
    }
    let sql = format!(
        "INSERT INTO {schema}.credit_balances (user_id, balance)
         SELECT * FROM unnest($1::uuid[], $2::int8[])
         ON CONFLICT (user_id) DO UPDATE SET balance = EXCLUDED.balance"
    );
    tx.execute(&sql, &[&users, &balances]).await?;
    Ok(())
}

/// Inserts the credit transactions of `changes`.
pub(super) async fn write_transactions(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.credits.is_empty() {
        return Ok(());
    }
    let mut user_id = Vec::new();
    let mut kind = Vec::new();
    let mut amount = Vec::new();
    let mut balance_after = Vec::new();
    let mut call_id = Vec::new();
    let mut provider = Vec::new();
    let mut occurred_at = Vec::new();
    let mut recorded_at = Vec::new();
    let mut position = Vec::new();
    for credit in &changes.credits {
        user_id.push(credit.user_id);
        kind.push(credit.kind);
        amount.push(credit.amount);
        balance_after.push(credit.balance_after);
        call_id.push(credit.call_id.as_deref());
        provider.push(credit.provider.as_deref());
        occurred_at.push(credit.occurred_at);
        recorded_at.push(credit.recorded_at);
        position.push(credit.position);
    }
    // Every transaction is caused by one event, so its position is its natural key.
    let sql = format!(
        "INSERT INTO {schema}.credit_transactions
                (user_id, kind, amount, balance_after, call_id, provider, created_at,
                 occurred_at, recorded_at, position)
         SELECT u.user_id, u.kind, u.amount, u.balance_after, u.call_id, u.provider,
                u.occurred_at, u.occurred_at, u.recorded_at, u.position
           FROM unnest($1::uuid[], $2::text[], $3::int8[], $4::int8[], $5::text[], $6::text[],
                       $7::timestamptz[], $8::timestamptz[], $9::int8[])
             AS u(user_id, kind, amount, balance_after, call_id, provider, occurred_at,
                  recorded_at, position)"
    );
    tx.execute(
        &sql,
        &[
            &user_id,
            &kind,
            &amount,
            &balance_after,
            &call_id,
            &provider,
            &occurred_at,
            &recorded_at,
            &position,
        ],
    )
    .await?;
    Ok(())
}
