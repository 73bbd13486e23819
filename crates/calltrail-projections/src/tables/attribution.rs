//! Each call's `campaign_id` and `attribution`, derived from the stored facts: the call's own
//! batch id and phone, `campaign_batches`, `campaign_recipients` and `call_attributions`.
//!
//! The rule is `calltrail_core::campaign::attribute` (manual wins, then the batch id, then a
//! phone that is a recipient of exactly one campaign), written here in SQL so it runs
//! set-wise over the calls a batch may have changed ([`refresh`], inside the projector's
//! batch transaction after its rows are written) or over every call once a replay has
//! written its tables ([`refresh_all`]). Because the answer depends only on what is stored,
//! never on the order events arrived in, a campaign created after its calls still claims
//! them and a replay gives every call the same attribution.

use tokio_postgres::types::ToSql;
use tokio_postgres::GenericClient;
use uuid::Uuid;

use crate::fold::Changes;
use crate::Error;

/// Derives the attribution of `scope`'s calls (a query yielding `user_id, provider, execution_id`,
/// duplicates allowed) and updates those whose answer changed. Returns the rows updated.
async fn derive(
    client: &impl GenericClient,
    schema: &str,
    scope: &str,
    params: &[&(dyn ToSql + Sync)],
) -> Result<u64, Error> {
    let sql = format!(
        "WITH scope AS ({scope}),
         facts AS (
           SELECT c.user_id, c.provider, c.execution_id, c.campaign_id AS old_campaign,
                  c.attribution AS old_attribution, m.campaign_id AS manual,
                  b.campaign_id AS by_batch, p.campaign_id AS by_phone
             FROM (SELECT DISTINCT user_id, provider, execution_id FROM scope) s
             JOIN {schema}.calls c ON c.user_id = s.user_id AND c.execution_id = s.execution_id
                                  AND c.provider = s.provider
             LEFT JOIN LATERAL (
                SELECT a.campaign_id FROM {schema}.call_attributions a
                 WHERE a.user_id = c.user_id AND a.execution_id = c.execution_id
                   AND a.provider = c.provider
                 ORDER BY a.position DESC LIMIT 1) m ON true
             LEFT JOIN LATERAL (
                SELECT b.campaign_id FROM {schema}.campaign_batches b
                 WHERE c.batch_id IS NOT NULL AND b.user_id = c.user_id
                   AND b.batch_id = c.batch_id
                 ORDER BY b.position, b.campaign_id LIMIT 1) b ON true
             LEFT JOIN LATERAL (
                SELECT (array_agg(DISTINCT r.campaign_id))[1] AS campaign_id
                  FROM {schema}.campaign_recipients r
                 WHERE c.phone_number IS NOT NULL AND r.user_id = c.user_id
                   AND r.phone_number = c.phone_number
                HAVING count(DISTINCT r.campaign_id) = 1) p ON true
         ),
         decided AS (
           SELECT user_id, provider, execution_id, old_campaign, old_attribution,
                  CASE WHEN manual IS NOT NULL THEN manual
                       ELSE coalesce(by_batch, by_phone) END AS campaign_id,
                  CASE WHEN manual IS NOT NULL THEN 'manual'
                       WHEN by_batch IS NOT NULL THEN 'auto_batch'
                       WHEN by_phone IS NOT NULL THEN 'auto_phone' END AS attribution
             FROM facts
         )
         UPDATE {schema}.calls c
            SET campaign_id = d.campaign_id, attribution = d.attribution, updated_at = now()
           FROM decided d
          WHERE c.user_id = d.user_id AND c.execution_id = d.execution_id
            AND c.provider = d.provider
            AND (d.old_campaign, d.old_attribution) IS DISTINCT FROM (d.campaign_id, d.attribution)"
    );
    Ok(client.execute(&sql, params).await?)
}

/// Derives again the attribution of every call `changes` may have changed: the calls it
/// folded, those of the batch ids and phones campaigns claimed, those attributed by hand.
pub(crate) async fn refresh(
    client: &impl GenericClient,
    schema: &str,
    changes: &Changes,
) -> Result<u64, Error> {
    let scope = &changes.attribution;
    if changes.calls.is_empty() && scope.is_empty() {
        return Ok(0);
    }
    let (mut call_users, mut call_providers, mut call_ids): (Vec<Uuid>, Vec<&str>, Vec<&str>) =
        (vec![], vec![], vec![]);
    for (user, provider, id) in changes.calls.iter().chain(&scope.calls) {
        call_users.push(*user);
        call_providers.push(provider);
        call_ids.push(id);
    }
    let (batch_users, batch_ids): (Vec<Uuid>, Vec<&str>) =
        scope.batches.iter().map(|(u, b)| (*u, b.as_str())).unzip();
    let (phone_users, phones): (Vec<Uuid>, Vec<&str>) =
        scope.phones.iter().map(|(u, p)| (*u, p.as_str())).unzip();
    let query = format!(
        "SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[])
                     AS s(user_id, provider, execution_id)
         UNION ALL
         SELECT c.user_id, c.provider, c.execution_id FROM {schema}.calls c
           JOIN unnest($4::uuid[], $5::text[]) AS b(user_id, batch_id)
             ON c.user_id = b.user_id AND c.batch_id = b.batch_id
         UNION ALL
         SELECT c.user_id, c.provider, c.execution_id FROM {schema}.calls c
           JOIN unnest($6::uuid[], $7::text[]) AS p(user_id, phone_number)
             ON c.user_id = p.user_id AND c.phone_number = p.phone_number"
    );
    derive(
        client,
        schema,
        &query,
        &[
            &call_users,
            &call_providers,
            &call_ids,
            &batch_users,
            &batch_ids,
            &phone_users,
            &phones,
        ],
    )
    .await
}

/// Derives the attribution of every call that can have one (replay, once its tables are
/// written: they start unattributed).
pub(crate) async fn refresh_all(client: &impl GenericClient, schema: &str) -> Result<u64, Error> {
    let query = format!(
        "SELECT c.user_id, c.provider, c.execution_id FROM {schema}.calls c
           JOIN {schema}.campaign_batches b ON b.user_id = c.user_id AND b.batch_id = c.batch_id
         UNION ALL
         SELECT c.user_id, c.provider, c.execution_id FROM {schema}.calls c
           JOIN {schema}.campaign_recipients r
             ON r.user_id = c.user_id AND r.phone_number = c.phone_number
         UNION ALL
         SELECT user_id, provider, execution_id FROM {schema}.call_attributions"
    );
    derive(client, schema, &query, &[]).await
}
