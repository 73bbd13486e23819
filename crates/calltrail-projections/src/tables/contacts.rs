//! The `contacts` table: loading a batch's prior contact rows and upserting the changed ones.

use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::fold::{Changes, ContactKey, ContactRecord, Snapshot};
use crate::Error;

/// The stored rows of these contacts (those that have one).
pub(crate) async fn load(
    client: &impl GenericClient,
    schema: &str,
    keys: &[ContactKey],
) -> Result<Vec<(ContactKey, ContactRecord)>, Error> {
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let users: Vec<Uuid> = keys.iter().map(|(user, _)| *user).collect();
    let phones: Vec<&str> = keys.iter().map(|(_, phone)| phone.as_str()).collect();
    let sql = format!(
        "SELECT user_id, phone_number, id, name, company, not_connected,
                auto_created_from_call_id, created_at
           FROM {schema}.contacts
          WHERE (user_id, phone_number) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    );
    let mut loaded = Vec::new();
    for row in client.query(&sql, &[&users, &phones]).await? {
        let key: ContactKey = (row.try_get("user_id")?, row.try_get("phone_number")?);
        let contact = ContactRecord {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            company: row.try_get("company")?,
            not_connected: row.try_get("not_connected")?,
            auto_created_from_call_id: row.try_get("auto_created_from_call_id")?,
            created_at: row.try_get("created_at")?,
        };
        loaded.push((key, contact));
    }
    Ok(loaded)
}

/// Upserts the contacts `changes` names, from their `snapshot` records.
pub(super) async fn write(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    if changes.contacts.is_empty() {
        return Ok(());
    }
    let n = changes.contacts.len();
    let (mut user_id, mut phone, mut id) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut name, mut company, mut not_connected, mut created_from, mut created_at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    for key in &changes.contacts {
        let Some(contact) = snapshot.contacts.get(key) else {
            continue;
        };
        let (user, number) = key;
        user_id.push(*user);
        phone.push(number.as_str());
        id.push(contact.id);
        name.push(contact.name.as_deref());
        company.push(contact.company.as_deref());
        not_connected.push(contact.not_connected);
        created_from.push(contact.auto_created_from_call_id.as_deref());
        created_at.push(contact.created_at);
    }
    // Only the columns the fold owns are updated; `email` is left to whoever sets it.
    let sql = format!(
        "INSERT INTO {schema}.contacts (id, user_id, phone_number, name, company, not_connected,
                auto_created_from_call_id, created_at, updated_at)
         SELECT u.id, u.user_id, u.phone_number, u.name, u.company, u.not_connected,
                u.auto_created_from_call_id, u.created_at, now()
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[], $6::int8[],
                       $7::text[], $8::timestamptz[])
             AS u(id, user_id, phone_number, name, company, not_connected,
                  auto_created_from_call_id, created_at)
         ON CONFLICT (user_id, phone_number) DO UPDATE SET
                name = EXCLUDED.name, company = EXCLUDED.company,
                not_connected = EXCLUDED.not_connected, updated_at = EXCLUDED.updated_at"
    );
    tx.execute(
        &sql,
        &[
            &id,
            &user_id,
            &phone,
            &name,
            &company,
            &not_connected,
            &created_from,
            &created_at,
        ],
    )
    .await?;
    Ok(())
}
