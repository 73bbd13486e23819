//! The campaign tables: `campaigns`, `campaign_batches`, `campaign_recipients` and
//! `call_attributions`, written with every batch. Each write is idempotent and keeps the
//! log's answer whatever else was written before (a name or a manual attribution is only
//! replaced by a later event; a batch id or a recipient is added once).

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use tokio_postgres::Transaction;
use uuid::Uuid;

use crate::fold::Changes;
use crate::Error;

/// Writes the batch's campaign rows.
pub(super) async fn write(
    tx: &Transaction<'_>,
    schema: &str,
    changes: &Changes,
) -> Result<(), Error> {
    let rows = &changes.campaigns;
    if rows.is_empty() {
        return Ok(());
    }
    write_names(tx, schema, changes).await?;
    if !rows.batches.is_empty() {
        let (mut users, mut batches, mut campaigns, mut positions) =
            (vec![], vec![], vec![], vec![]);
        for (user, batch, campaign, position) in &rows.batches {
            users.push(*user);
            batches.push(batch.as_str());
            campaigns.push(*campaign);
            positions.push(*position);
        }
        let sql = format!(
            "INSERT INTO {schema}.campaign_batches (user_id, batch_id, campaign_id, position)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::uuid[], $4::int8[])
             ON CONFLICT DO NOTHING"
        );
        tx.execute(&sql, &[&users, &batches, &campaigns, &positions])
            .await?;
    }
    if !rows.recipients.is_empty() {
        let mut c = RecipientColumns::default();
        for row in &rows.recipients {
            c.user_id.push(row.user_id);
            c.campaign_id.push(row.campaign_id);
            c.phone.push(row.recipient.phone_number.as_str());
            c.name.push(row.recipient.name.as_deref());
            c.email.push(row.recipient.email.as_deref());
            c.company.push(row.recipient.company.as_deref());
            c.position.push(row.position);
        }
        let sql = format!(
            "INSERT INTO {schema}.campaign_recipients
                    (user_id, campaign_id, phone_number, name, email, company, position)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::text[], $5::text[],
                                  $6::text[], $7::int8[])
             ON CONFLICT DO NOTHING"
        );
        tx.execute(
            &sql,
            &[
                &c.user_id,
                &c.campaign_id,
                &c.phone,
                &c.name,
                &c.email,
                &c.company,
                &c.position,
            ],
        )
        .await?;
    }
    if !rows.attributions.is_empty() {
        // The latest of the batch per call (one statement cannot update a row twice).
        let mut latest = BTreeMap::new();
        for a in &rows.attributions {
            let key = (
                a.user_id,
                a.call.provider.as_str(),
                a.call.execution_id.as_str(),
            );
            latest.insert(key, (a.campaign_id, a.position));
        }
        let (mut users, mut providers, mut ids, mut campaigns, mut positions) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((user, provider, id), (campaign, position)) in latest {
            users.push(user);
            providers.push(provider);
            ids.push(id);
            campaigns.push(campaign);
            positions.push(position);
        }
        let sql = format!(
            "INSERT INTO {schema}.call_attributions AS t
                    (user_id, provider, execution_id, campaign_id, position)
             SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::uuid[], $5::int8[])
             ON CONFLICT (user_id, provider, execution_id) DO UPDATE
                SET campaign_id = EXCLUDED.campaign_id, position = EXCLUDED.position
              WHERE t.position < EXCLUDED.position"
        );
        tx.execute(&sql, &[&users, &providers, &ids, &campaigns, &positions])
            .await?;
    }
    Ok(())
}

#[derive(Default)]
struct RecipientColumns<'a> {
    user_id: Vec<Uuid>,
    campaign_id: Vec<Uuid>,
    phone: Vec<&'a str>,
    name: Vec<Option<&'a str>>,
    email: Vec<Option<&'a str>>,
    company: Vec<Option<&'a str>>,
    position: Vec<i64>,
}

/// Creates campaigns, then applies renames (each only over an earlier name).
async fn write_names(tx: &Transaction<'_>, schema: &str, changes: &Changes) -> Result<(), Error> {
    let mut created: BTreeMap<(Uuid, Uuid), (&str, DateTime<Utc>, i64)> = BTreeMap::new();
    let mut renamed: BTreeMap<(Uuid, Uuid), (&str, i64)> = BTreeMap::new();
    for name in &changes.campaigns.names {
        let key = (name.user_id, name.campaign_id);
        match name.created_at {
            Some(at) => {
                created
                    .entry(key)
                    .or_insert((name.name.as_str(), at, name.position));
            }
            None => {
                renamed.insert(key, (name.name.as_str(), name.position));
            }
        }
    }
    if !created.is_empty() {
        let (mut users, mut ids, mut names, mut ats, mut positions) =
            (vec![], vec![], vec![], vec![], vec![]);
        for ((user, id), (name, at, position)) in created {
            users.push(user);
            ids.push(id);
            names.push(name);
            ats.push(at);
            positions.push(position);
        }
        let sql = format!(
            "INSERT INTO {schema}.campaigns (user_id, campaign_id, name, created_at, name_position)
             SELECT * FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::timestamptz[],
                                  $5::int8[])
             ON CONFLICT DO NOTHING"
        );
        tx.execute(&sql, &[&users, &ids, &names, &ats, &positions])
            .await?;
    }
    if !renamed.is_empty() {
        let (mut users, mut ids, mut names, mut positions) = (vec![], vec![], vec![], vec![]);
        for ((user, id), (name, position)) in renamed {
            users.push(user);
            ids.push(id);
            names.push(name);
            positions.push(position);
        }
        let sql = format!(
            "UPDATE {schema}.campaigns t SET name = u.name, name_position = u.position
               FROM unnest($1::uuid[], $2::uuid[], $3::text[], $4::int8[])
                    AS u(user_id, campaign_id, name, position)
              WHERE t.user_id = u.user_id AND t.campaign_id = u.campaign_id
                AND t.name_position < u.position"
        );
        tx.execute(&sql, &[&users, &ids, &names, &positions])
            .await?;
    }
    Ok(())
}
