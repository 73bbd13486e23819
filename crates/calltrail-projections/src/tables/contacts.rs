//! The `contacts` table: loading a batch's prior contact rows and upserting the changed ones.

use tokio_postgres::{GenericClient, Transaction};
use uuid::Uuid;

use crate::fold::{Changes, ContactDetail, ContactKey, ContactRecord, Snapshot};
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
        "SELECT user_id, phone_number, id, name, name_at, email, email_at, company, company_at,
                not_connected, auto_created_from_call_id, auto_created_from_provider, created_at
           FROM {schema}.contacts
          WHERE (user_id, phone_number) IN (SELECT * FROM unnest($1::uuid[], $2::text[]))"
    );
    let mut loaded = Vec::new();
    for row in client.query(&sql, &[&users, &phones]).await? {
        let key: ContactKey = (row.try_get("user_id")?, row.try_get("phone_number")?);
        let contact = ContactRecord {
            id: row.try_get("id")?,
            name: ContactDetail {
                value: row.try_get("name")?,
                at: row.try_get("name_at")?,
            },
            email: ContactDetail {
                value: row.try_get("email")?,
                at: row.try_get("email_at")?,
            },
            company: ContactDetail {
                value: row.try_get("company")?,
                at: row.try_get("company_at")?,
            },
            not_connected: row.try_get("not_connected")?,
            auto_created_from_call_id: row.try_get("auto_created_from_call_id")?,
            auto_created_from_provider: row.try_get("auto_created_from_provider")?,
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
    let mut created_from_provider = Vec::with_capacity(n);
    let (mut name, mut email, mut company) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut name_at, mut email_at, mut company_at) = (
        Vec::with_capacity(n),
        Vec::with_capacity(n),
        Vec::with_capacity(n),
    );
    let (mut not_connected, mut created_from, mut created_at) = (
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
        name.push(contact.name.value.as_deref());
        name_at.push(contact.name.at);
        email.push(contact.email.value.as_deref());
        email_at.push(contact.email.at);
        company.push(contact.company.value.as_deref());
        company_at.push(contact.company.at);
        not_connected.push(contact.not_connected);
        created_from.push(contact.auto_created_from_call_id.as_deref());
        created_from_provider.push(contact.auto_created_from_provider.as_deref());
        created_at.push(contact.created_at);
    }
    let sql = format!(
        "INSERT INTO {schema}.contacts (id, user_id, phone_number, name, name_at, email, email_at,
                company, company_at, not_connected, auto_created_from_call_id, created_at,
                updated_at, auto_created_from_provider)
         SELECT u.id, u.user_id, u.phone_number, u.name, u.name_at, u.email, u.email_at,
                u.company, u.company_at, u.not_connected, u.auto_created_from_call_id,
                u.created_at, now(), u.auto_created_from_provider
           FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::timestamptz[],
                       $6::text[], $7::timestamptz[], $8::text[], $9::timestamptz[],
                       $10::int8[], $11::text[], $12::timestamptz[], $13::text[])
             AS u(id, user_id, phone_number, name, name_at, email, email_at, company,
                  company_at, not_connected, auto_created_from_call_id, created_at,
                  auto_created_from_provider)
         ON CONFLICT (user_id, phone_number) DO UPDATE SET
                name = EXCLUDED.name, name_at = EXCLUDED.name_at,
                email = EXCLUDED.email, email_at = EXCLUDED.email_at,
                company = EXCLUDED.company, company_at = EXCLUDED.company_at,
                not_connected = EXCLUDED.not_connected, updated_at = EXCLUDED.updated_at"
    );
    tx.execute(
        &sql,
        &[
            &id,
            &user_id,
            &phone,
            &name,
            &name_at,
            &email,
            &email_at,
            &company,
            &company_at,
            &not_connected,
            &created_from,
            &created_at,
            &created_from_provider,
        ],
    )
    .await?;
    Ok(())
}
