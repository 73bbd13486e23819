//! Read queries behind the HTTP API. Every query is scoped to one tenant: another tenant's
//! row is indistinguishable from a missing one.

use calltrail_core::PhoneNumber;
use chrono::{DateTime, Utc};
use tokio_postgres::types::ToSql;
use tokio_postgres::Row;
use uuid::Uuid;

use crate::views::{
    CallDetail, CallView, ContactView, CreditTransactionView, CreditsView, Page, TimelineEvent,
    TranscriptView,
};
use crate::{Error, ReadStore};

/// Most credit transactions `GET /v1/credits` returns (the newest ones).
pub const MAX_CREDIT_TRANSACTIONS: i64 = 1000;

/// The columns of a [`CallView`], in the order [`call_view`] reads them.
pub(crate) const CALL_COLUMNS: &str =
    "execution_id, provider, agent_id, user_id, contact_id, phone_number, lead_type,
    call_lifecycle_status, status, duration_seconds, duration_minutes, credits_used, hangup_by,
    hangup_reason, hangup_provider_code, recording_url, ringing_started_at, call_answered_at,
    call_disconnected_at, completed_at, created_at, updated_at, campaign_id, attribution, anomalies,
    outcome, cost, cost_unit,
    (SELECT count(*) FROM event_conflicts ec
      WHERE ec.tenant_id = calls.user_id AND ec.stream_id = calls.execution_id
        AND ec.provider = calls.provider
        AND ec.metadata ->> 'after_reconciliation' IS NULL) AS conflicts";

const CONTACT_COLUMNS: &str = "id, phone_number, name, email, company, not_connected,
    auto_created_from_call_id, auto_created_from_provider, created_at";

/// Filters of `GET /v1/calls` (all optional; `from`/`to` half-open on `created_at`).
#[derive(Debug, Clone, Default)]
pub struct CallFilter {
    /// User-facing status (`completed`, `failed`, `cancelled`, `in_progress`).
    pub status: Option<String>,
    /// Provider lifecycle status.
    pub lifecycle_status: Option<String>,
    /// E.164 phone number.
    pub phone: Option<String>,
    /// Provider agent id.
    pub agent_id: Option<String>,
    /// Inclusive lower bound on `created_at`.
    pub from: Option<DateTime<Utc>>,
    /// Exclusive upper bound on `created_at`.
    pub to: Option<DateTime<Utc>>,
    /// Only calls attributed to this campaign.
    pub campaign_id: Option<Uuid>,
    /// Only attributed (`true`) or unattributed (`false`) calls.
    pub attributed: Option<bool>,
    /// Only this provider's calls (`bolna`, `vapi`, …).
    pub provider: Option<String>,
    /// Only calls of this outcome (`booked`, `voicemail`, …).
    pub outcome: Option<String>,
    /// The order of the list (not a filter, but it travels with them: an export of the list
    /// follows it too).
    pub sort: CallSort,
}

/// The order of a calls list. Every order ends in `created_at, execution_id, provider`, so it
/// is total (two providers may use one id) and keyset pagination never skips or repeats a call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum CallSort {
    /// Newest first (the default).
    #[default]
    Newest,
    /// Oldest first.
    Oldest,
    /// Longest conversation first, then newest.
    Longest,
    /// Shortest conversation first, then oldest.
    Shortest,
    /// By user-facing status (alphabetical), newest first within one.
    Status,
}

impl CallSort {
    /// Every order, in the order a picker lists them.
    pub const ALL: [CallSort; 5] = [
        CallSort::Newest,
        CallSort::Oldest,
        CallSort::Longest,
        CallSort::Shortest,
        CallSort::Status,
    ];

    /// The order named `name` (`newest`, `oldest`, `longest`, `shortest`, `status`).
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|sort| sort.name() == name)
    }

    /// The order's name, as [`CallSort::parse`] reads it.
    pub fn name(self) -> &'static str {
        match self {
            CallSort::Newest => "newest",
            CallSort::Oldest => "oldest",
            CallSort::Longest => "longest",
            CallSort::Shortest => "shortest",
            CallSort::Status => "status",
        }
    }

    /// `ORDER BY` of this sort.
    pub(crate) fn order_by(self) -> &'static str {
        match self {
            CallSort::Newest => "created_at DESC, execution_id DESC, provider DESC",
            CallSort::Oldest => "created_at, execution_id, provider",
            CallSort::Longest => {
                "duration_seconds DESC, created_at DESC, execution_id DESC, provider DESC"
            }
            CallSort::Shortest => "duration_seconds, created_at, execution_id, provider",
            CallSort::Status => "status, created_at DESC, execution_id DESC, provider DESC",
        }
    }

    /// The keyset condition "after the cursor's row" with `?` for the key, time, id and
    /// provider (the key only for the sorts that have one). A cursor issued before calls had
    /// a provider has none: it resumes after every call of its time and id.
    fn after(self, with_provider: bool) -> String {
        let (tie, marks) = if with_provider {
            ("created_at, execution_id, provider", "?, ?, ?")
        } else {
            ("created_at, execution_id", "?, ?")
        };
        match self {
            CallSort::Newest => format!(" AND ({tie}) < ({marks})"),
            CallSort::Oldest => format!(" AND ({tie}) > ({marks})"),
            CallSort::Longest => format!(" AND (duration_seconds, {tie}) < (?, {marks})"),
            CallSort::Shortest => format!(" AND (duration_seconds, {tie}) > (?, {marks})"),
            CallSort::Status => {
                format!(" AND (status > ? OR (status = ? AND ({tie}) < ({marks})))")
            }
        }
    }
}

/// Where a page of calls ends: the last row's sort key, creation time and id.
#[derive(Debug, Clone, PartialEq)]
struct CallCursor {
    sort: CallSort,
    duration: i64,
    status: String,
    created_at: DateTime<Utc>,
    execution_id: String,
    /// `None` in a cursor issued before calls had a provider.
    provider: Option<String>,
}

/// Separates the call id from the provider in a cursor: PostgreSQL text never holds U+0000,
/// so no id contains it, and a cursor without it (issued before calls had a provider) still
/// reads.
const PROVIDER_SEPARATOR: char = '\0';

impl CallCursor {
    fn of(sort: CallSort, call: &CallView) -> Self {
        Self {
            sort,
            duration: call.duration_seconds,
            status: call.status.clone(),
            created_at: call.created_at,
            execution_id: call.execution_id.clone(),
            provider: Some(call.provider.clone()),
        }
    }

    /// The id part of the cursor: the call id, then the provider after the separator.
    fn id_part(&self) -> String {
        match &self.provider {
            Some(provider) => format!("{}{PROVIDER_SEPARATOR}{provider}", self.execution_id),
            None => self.execution_id.clone(),
        }
    }

    /// Splits a cursor's id part back into the call id and provider.
    fn set_id_part(&mut self, id: &str) {
        match id.split_once(PROVIDER_SEPARATOR) {
            Some((execution_id, provider)) => {
                execution_id.clone_into(&mut self.execution_id);
                self.provider = Some(provider.to_owned());
            }
            None => {
                id.clone_into(&mut self.execution_id);
                self.provider = None;
            }
        }
    }

    /// Hex of `calls:sort:key:micros:id`: bound to the calls list and to its order.
    fn encode(&self) -> String {
        let key = match self.sort {
            CallSort::Newest | CallSort::Oldest => String::new(),
            CallSort::Longest | CallSort::Shortest => self.duration.to_string(),
            CallSort::Status => hex::encode(&self.status),
        };
        let micros = self.created_at.timestamp_micros();
        let text = format!(
            "{}:{}:{key}:{micros}:{}",
            List::Calls.name(),
            self.sort.name(),
            self.id_part()
        );
        hex::encode(text)
    }

    /// Reads a cursor issued by the calls list for `sort` (one of another list or another
    /// sort is invalid).
    fn decode(sort: CallSort, cursor: &str) -> Result<Self, Error> {
        let mut out = Self {
            sort,
            duration: 0,
            status: String::new(),
            created_at: DateTime::UNIX_EPOCH,
            execution_id: String::new(),
            provider: None,
        };
        let bytes = hex::decode(cursor.trim()).map_err(|_| invalid_cursor())?;
        let text = String::from_utf8(bytes).map_err(|_| invalid_cursor())?;
        let mut parts = text.splitn(5, ':');
        let (Some(list), Some(name), Some(key), Some(micros), Some(id)) = (
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
            parts.next(),
        ) else {
            return Err(invalid_cursor());
        };
        if list != List::Calls.name() || name != sort.name() || id.is_empty() {
            return Err(invalid_cursor());
        }
        match sort {
            CallSort::Longest | CallSort::Shortest => {
                out.duration = key.parse().map_err(|_| invalid_cursor())?;
            }
            CallSort::Status => {
                let status = hex::decode(key).map_err(|_| invalid_cursor())?;
                out.status = String::from_utf8(status).map_err(|_| invalid_cursor())?;
            }
            CallSort::Newest | CallSort::Oldest => {}
        }
        let micros: i64 = micros.parse().map_err(|_| invalid_cursor())?;
        out.created_at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid_cursor)?;
        out.set_id_part(id);
        Ok(out)
    }
}

impl ReadStore {
    /// Calls in `filter.sort` order (newest first by default), keyset-paginated by an opaque
    /// cursor. `limit` is already validated (1–100). A malformed cursor, or one issued for
    /// another order, is [`Error::InvalidCursor`].
    pub async fn list_calls(
        &self,
        tenant: Uuid,
        filter: &CallFilter,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<CallView>, Error> {
        let sort = filter.sort;
        let after = cursor.map(|c| CallCursor::decode(sort, c)).transpose()?;
        let phone = normalized_phone(filter);
        let limit = limit.clamp(1, 1000);
        let fetch = limit + 1;

        let mut sql = format!("SELECT {CALL_COLUMNS} FROM calls WHERE user_id = $1");
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&tenant];
        filter_conditions(filter, phone.as_ref(), &mut sql, &mut params);
        if let Some(after) = &after {
            let mut values: Vec<&(dyn ToSql + Sync)> = match sort {
                CallSort::Newest | CallSort::Oldest => vec![],
                CallSort::Longest | CallSort::Shortest => vec![&after.duration],
                CallSort::Status => vec![&after.status, &after.status],
            };
            values.extend([param(&after.created_at), param(&after.execution_id)]);
            if let Some(provider) = &after.provider {
                values.push(provider);
            }
            let clause = sort.after(after.provider.is_some());
            add_params(&mut sql, &mut params, &clause, &values);
        }
        sql.push_str(" ORDER BY ");
        sql.push_str(sort.order_by());
        add_param(&mut sql, &mut params, " LIMIT ?", &fetch);

        let client = self.client().await?;
        let rows = client.query(&sql, &params).await?;
        let mut items = rows.iter().map(call_view).collect::<Result<Vec<_>, _>>()?;
        let next_cursor = next_page(&mut items, limit, |c| CallCursor::of(sort, c).encode());
        Ok(Page { items, next_cursor })
    }

    /// One call with its timeline: `provider`'s call `execution_id`, or with no provider the
    /// call of any provider with that id. The call and its timeline are read in one
    /// repeatable-read transaction, so they are one consistent snapshot.
    pub async fn get_call(
        &self,
        tenant: Uuid,
        provider: Option<&str>,
        execution_id: &str,
    ) -> Result<Lookup<CallDetail>, Error> {
        let mut client = self.client().await?;
        let tx = client
            .build_transaction()
            .read_only(true)
            .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
            .start()
            .await?;
        let call_sql = format!(
            "SELECT {CALL_COLUMNS} FROM calls
              WHERE user_id = $1 AND execution_id = $2 AND ($3::text IS NULL OR provider = $3)
              ORDER BY provider"
        );
        let calls = tx
            .query(&call_sql, &[&tenant, &execution_id, &provider])
            .await?;
        let call = match one_of(&calls, |r| r.try_get("provider"))? {
            Lookup::Found(row) => call_view(row)?,
            Lookup::Missing => return Ok(Lookup::Missing),
            Lookup::Ambiguous(providers) => return Ok(Lookup::Ambiguous(providers)),
        };
        let events = tx
            .query(
                "SELECT event_type, occurred_at, recorded_at, position FROM call_events
                  WHERE user_id = $1 AND execution_id = $2 AND provider = $3
                  -- Events of one time by type, not by arrival: any delivery order reads alike.
                  ORDER BY occurred_at, event_type, position",
                &[&tenant, &execution_id, &call.provider],
            )
            .await?;
        tx.commit().await?;
        let events = events
            .iter()
            .map(|r| {
                Ok(TimelineEvent {
                    event_type: r.try_get("event_type")?,
                    occurred_at: r.try_get("occurred_at")?,
                    recorded_at: r.try_get("recorded_at")?,
                    position: r.try_get("position")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(Lookup::Found(CallDetail { call, events }))
    }

    /// `provider`'s call's lifecycle status, when the tenant has the call (what a 404 for its missing
    /// transcript or analysis says).
    pub async fn call_lifecycle_status(
        &self,
        tenant: Uuid,
        provider: &str,
        execution_id: &str,
    ) -> Result<Option<String>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT call_lifecycle_status FROM calls
                  WHERE user_id = $1 AND execution_id = $2 AND provider = $3",
                &[&tenant, &execution_id, &provider],
            )
            .await?;
        row.map(|r| Ok(r.try_get("call_lifecycle_status")?))
            .transpose()
    }

    /// The provider of the tenant's call `execution_id` (the one asked for, when `provider` is
    /// given): missing, one, or several providers' calls with that id.
    pub async fn call_provider(
        &self,
        tenant: Uuid,
        provider: Option<&str>,
        execution_id: &str,
    ) -> Result<Lookup<String>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT provider FROM calls
                  WHERE user_id = $1 AND execution_id = $2 AND ($3::text IS NULL OR provider = $3)
                  ORDER BY provider",
                &[&tenant, &execution_id, &provider],
            )
            .await?;
        Ok(match one_of(&rows, |r| r.try_get("provider"))? {
            Lookup::Found(row) => Lookup::Found(row.try_get("provider")?),
            Lookup::Missing => Lookup::Missing,
            Lookup::Ambiguous(providers) => Lookup::Ambiguous(providers),
        })
    }

    /// A call's transcript (`provider`'s call, or the call of any provider with that id);
    /// missing until the call has one.
    pub async fn get_transcript(
        &self,
        tenant: Uuid,
        provider: Option<&str>,
        execution_id: &str,
    ) -> Result<Lookup<TranscriptView>, Error> {
        let client = self.client().await?;
        let rows = client
            .query(
                "SELECT c.provider, t.content, t.analysis_status, t.analysis_error,
                        (SELECT j.next_attempt_at FROM analysis_jobs j
                          WHERE j.user_id = t.user_id AND j.execution_id = t.execution_id
                            AND j.provider = t.provider
                            AND j.kind = 'individual' AND j.state = 'pending'
                            AND j.attempts > 0 AND t.analysis_status = 'pending'
                          ORDER BY j.id DESC LIMIT 1) AS next_attempt_at
                   FROM calls c
                   LEFT JOIN transcripts t ON t.user_id = c.user_id
                    AND t.execution_id = c.execution_id AND t.provider = c.provider
                  WHERE c.user_id = $1 AND c.execution_id = $2
                    AND ($3::text IS NULL OR c.provider = $3)
                  ORDER BY c.provider",
                &[&tenant, &execution_id, &provider],
            )
            .await?;
        let row = match one_of(&rows, |r| r.try_get("provider"))? {
            Lookup::Found(row) => row,
            Lookup::Missing => return Ok(Lookup::Missing),
            Lookup::Ambiguous(providers) => return Ok(Lookup::Ambiguous(providers)),
        };
        let Some(content) = row.try_get::<_, Option<String>>("content")? else {
            return Ok(Lookup::Missing);
        };
        Ok(Lookup::Found(TranscriptView {
            content,
            analysis_status: row.try_get("analysis_status")?,
            analysis_error: row.try_get("analysis_error")?,
            next_attempt_at: row.try_get("next_attempt_at")?,
        }))
    }

    /// Contacts newest first, keyset-paginated.
    pub async fn list_contacts(
        &self,
        tenant: Uuid,
        cursor: Option<&str>,
        limit: i64,
    ) -> Result<Page<ContactView>, Error> {
        let limit = limit.clamp(1, 1000);
        let rows = self
            .newest_first(
                &format!("SELECT {CONTACT_COLUMNS} FROM contacts"),
                ["user_id", "created_at", "id"],
                tenant,
                (List::Contacts, cursor),
                limit + 1,
            )
            .await?;
        let mut items = rows
            .iter()
            .map(contact_view)
            .collect::<Result<Vec<_>, _>>()?;
        let next_cursor = next_page(&mut items, limit, |c| {
            encode_cursor(List::Contacts, c.created_at, &c.id.to_string())
        });
        Ok(Page { items, next_cursor })
    }

    /// Up to `fetch` rows of `select` (a query up to its WHERE) for `tenant`, newest first by
    /// `(created_at, id)` and after `cursor` (one `list` issued); `columns` names the tenant,
    /// created-at and id columns as `select` spells them.
    pub(crate) async fn newest_first(
        &self,
        select: &str,
        columns: [&str; 3],
        tenant: Uuid,
        (list, cursor): (List, Option<&str>),
        fetch: i64,
    ) -> Result<Vec<Row>, Error> {
        let [tenant_col, created, id_col] = columns;
        let after = cursor
            .map(|c| {
                let (at, id) = decode_cursor(list, c)?;
                let id = Uuid::parse_str(&id).map_err(|_| invalid_cursor())?;
                Ok::<_, Error>((at, id))
            })
            .transpose()?;
        let client = self.client().await?;
        let order = format!("ORDER BY {created} DESC, {id_col} DESC");
        let rows = match after {
            Some((at, id)) => {
                let sql = format!(
                    "{select} WHERE {tenant_col} = $1 AND ({created}, {id_col}) < ($2, $3) {order} LIMIT $4"
                );
                client.query(&sql, &[&tenant, &at, &id, &fetch]).await?
            }
            None => {
                let sql = format!("{select} WHERE {tenant_col} = $1 {order} LIMIT $2");
                client.query(&sql, &[&tenant, &fetch]).await?
            }
        };
        Ok(rows)
    }

    /// One contact by its phone number (E.164), if this tenant has it.
    pub async fn contact_by_phone(
        &self,
        tenant: Uuid,
        phone: &str,
    ) -> Result<Option<ContactView>, Error> {
        let client = self.client().await?;
        let sql = format!(
            "SELECT {CONTACT_COLUMNS} FROM contacts WHERE user_id = $1 AND phone_number = $2"
        );
        let row = client.query_opt(&sql, &[&tenant, &phone]).await?;
        row.as_ref().map(contact_view).transpose()
    }

    /// Balance and transactions, newest (last recorded) first.
    pub async fn credits(&self, tenant: Uuid) -> Result<CreditsView, Error> {
        let client = self.client().await?;
        let user: [&(dyn ToSql + Sync); 1] = [&tenant];
        let page: [&(dyn ToSql + Sync); 2] = [&tenant, &MAX_CREDIT_TRANSACTIONS];
        let (balance, rows) = tokio::try_join!(
            client.query_opt(
                "SELECT balance FROM credit_balances WHERE user_id = $1",
                &user
            ),
            client.query(
                "SELECT kind, amount, balance_after, call_id, provider, created_at, occurred_at,
                        recorded_at
                   FROM credit_transactions
                  WHERE user_id = $1 ORDER BY position DESC LIMIT $2",
                &page,
            ),
        )?;
        let balance = balance
            .map(|r| r.try_get("balance"))
            .transpose()?
            .unwrap_or(0);
        let transactions = rows
            .iter()
            .map(|r| {
                Ok(CreditTransactionView {
                    kind: r.try_get("kind")?,
                    amount: r.try_get("amount")?,
                    balance_after: r.try_get("balance_after")?,
                    call_id: r.try_get("call_id")?,
                    provider: r.try_get("provider")?,
                    created_at: r.try_get("created_at")?,
                    occurred_at: r.try_get("occurred_at")?,
                    recorded_at: r.try_get("recorded_at")?,
                })
            })
            .collect::<Result<Vec<_>, Error>>()?;
        Ok(CreditsView {
            balance,
            transactions,
        })
    }

    /// A user's credit balance (0 before any transaction).
    pub async fn balance(&self, user_id: Uuid) -> Result<i64, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT balance FROM credit_balances WHERE user_id = $1",
                &[&user_id],
            )
            .await?;
        Ok(row.map(|r| r.try_get("balance")).transpose()?.unwrap_or(0))
    }

    /// `balance_after` of the credit transaction the event at `position` caused, once projected
    /// (`admin grant-credits` waits for it).
    pub async fn credit_balance_after(&self, position: i64) -> Result<Option<i64>, Error> {
        let client = self.client().await?;
        let row = client
            .query_opt(
                "SELECT balance_after FROM credit_transactions WHERE position = $1",
                &[&position],
            )
            .await?;
        Ok(row.map(|r| r.try_get("balance_after")).transpose()?)
    }

    /// How many calls a tenant has.
    pub async fn call_count(&self, tenant: Uuid) -> Result<i64, Error> {
        let client = self.client().await?;
        let row = client
            .query_one(
                "SELECT count(*) AS calls FROM calls WHERE user_id = $1",
                &[&tenant],
            )
            .await?;
        Ok(row.try_get("calls")?)
    }
}

/// What a call id names for a tenant: call ids of different providers may be equal
/// (CONTRACT §5), so an id without a provider can name several calls.
#[derive(Debug, Clone, PartialEq)]
pub enum Lookup<T> {
    /// No such call (or none of the provider asked for, or another tenant's).
    Missing,
    /// The one call's value.
    Found(T),
    /// Calls of several providers have this id: the providers, sorted.
    Ambiguous(Vec<String>),
}

impl<T> Lookup<T> {
    /// The value when found, `None` when missing or ambiguous.
    pub fn found(self) -> Option<T> {
        match self {
            Lookup::Found(value) => Some(value),
            Lookup::Missing | Lookup::Ambiguous(_) => None,
        }
    }
}

/// The one row of `rows` (ordered by provider), or the providers of all of them.
fn one_of(
    rows: &[Row],
    provider: impl Fn(&Row) -> Result<String, tokio_postgres::Error>,
) -> Result<Lookup<&Row>, Error> {
    match rows {
        [] => Ok(Lookup::Missing),
        [row] => Ok(Lookup::Found(row)),
        rows => Ok(Lookup::Ambiguous(
            rows.iter()
                .map(|r| provider(r).map_err(Error::from))
                .collect::<Result<_, _>>()?,
        )),
    }
}

/// The filter's phone in E.164 when it parses (else as given, trimmed: it matches nothing).
pub(crate) fn normalized_phone(filter: &CallFilter) -> Option<String> {
    filter.phone.as_deref().map(|p| {
        PhoneNumber::parse(p).map_or_else(|_| p.trim().to_owned(), |p| p.as_str().to_owned())
    })
}

/// The `WHERE` conditions of a calls filter (beyond the tenant), appended to `sql`.
pub(crate) fn filter_conditions<'a>(
    filter: &'a CallFilter,
    phone: Option<&'a String>,
    sql: &mut String,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
) {
    let conditions: [(&str, Option<&(dyn ToSql + Sync)>); 9] = [
        (" AND status = ?", filter.status.as_ref().map(param)),
        (
            " AND call_lifecycle_status = ?",
            filter.lifecycle_status.as_ref().map(param),
        ),
        (" AND phone_number = ?", phone.map(param)),
        (" AND agent_id = ?", filter.agent_id.as_ref().map(param)),
        (" AND created_at >= ?", filter.from.as_ref().map(param)),
        (" AND created_at < ?", filter.to.as_ref().map(param)),
        (
            " AND campaign_id = ?",
            filter.campaign_id.as_ref().map(param),
        ),
        (" AND provider = ?", filter.provider.as_ref().map(param)),
        (" AND outcome = ?", filter.outcome.as_ref().map(param)),
    ];
    for (clause, value) in conditions {
        if let Some(value) = value {
            add_param(sql, params, clause, value);
        }
    }
    match filter.attributed {
        Some(true) => sql.push_str(" AND campaign_id IS NOT NULL"),
        Some(false) => sql.push_str(" AND campaign_id IS NULL"),
        None => {}
    }
}

/// A parameter as a trait object (an unsizing coercion, not a cast).
fn param<T: ToSql + Sync>(value: &T) -> &(dyn ToSql + Sync) {
    value
}

/// Appends `clause` with its `?` replaced by the next parameter number.
fn add_param<'a>(
    sql: &mut String,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
    clause: &str,
    value: &'a (dyn ToSql + Sync),
) {
    params.push(value);
    sql.push_str(&clause.replace('?', &format!("${}", params.len())));
}

/// Appends `clause` with each `?` replaced by the next parameter number, in order.
fn add_params<'a>(
    sql: &mut String,
    params: &mut Vec<&'a (dyn ToSql + Sync)>,
    clause: &str,
    values: &[&'a (dyn ToSql + Sync)],
) {
    let mut values = values.iter();
    for (i, piece) in clause.split('?').enumerate() {
        if i > 0 {
            if let Some(value) = values.next() {
                params.push(*value);
                sql.push_str(&format!("${}", params.len()));
            }
        }
        sql.push_str(piece);
    }
}

/// Keeps `limit` items and returns the cursor of the last one when more followed.
pub(crate) fn next_page<T>(
    items: &mut Vec<T>,
    limit: i64,
    cursor: impl Fn(&T) -> String,
) -> Option<String> {
    let limit = usize::try_from(limit).unwrap_or(usize::MAX);
    if items.len() > limit {
        items.truncate(limit);
        items.last().map(cursor)
    } else {
        None
    }
}

pub(crate) fn call_view(r: &Row) -> Result<CallView, Error> {
    Ok(CallView {
        execution_id: r.try_get("execution_id")?,
        provider: r.try_get("provider")?,
        agent_id: r.try_get("agent_id")?,
        user_id: r.try_get("user_id")?,
        contact_id: r.try_get("contact_id")?,
        phone_number: r.try_get("phone_number")?,
        lead_type: r.try_get("lead_type")?,
        call_lifecycle_status: r.try_get("call_lifecycle_status")?,
        status: r.try_get("status")?,
        duration_seconds: r.try_get("duration_seconds")?,
        duration_minutes: r.try_get("duration_minutes")?,
        credits_used: r.try_get("credits_used")?,
        hangup_by: r.try_get("hangup_by")?,
        hangup_reason: r.try_get("hangup_reason")?,
        hangup_provider_code: r.try_get("hangup_provider_code")?,
        recording_url: r.try_get("recording_url")?,
        ringing_started_at: r.try_get("ringing_started_at")?,
        call_answered_at: r.try_get("call_answered_at")?,
        call_disconnected_at: r.try_get("call_disconnected_at")?,
        completed_at: r.try_get("completed_at")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
        campaign_id: r.try_get("campaign_id")?,
        attribution: r.try_get("attribution")?,
        anomalies: r.try_get("anomalies")?,
        conflicts: r.try_get("conflicts")?,
        outcome: r.try_get("outcome")?,
        cost: r.try_get("cost")?,
        cost_unit: r.try_get("cost_unit")?,
    })
}

fn contact_view(r: &Row) -> Result<ContactView, Error> {
    Ok(ContactView {
        id: r.try_get("id")?,
        phone_number: r.try_get("phone_number")?,
        name: r.try_get("name")?,
        email: r.try_get("email")?,
        company: r.try_get("company")?,
        not_connected: r.try_get("not_connected")?,
        auto_created_from_call_id: r.try_get("auto_created_from_call_id")?,
        auto_created_from_provider: r.try_get("auto_created_from_provider")?,
        created_at: r.try_get("created_at")?,
    })
}

/// The paginated lists: a cursor names the list that issued it, and no other list takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum List {
    /// `GET /v1/calls` (its cursors also name their order).
    Calls,
    /// `GET /v1/contacts`.
    Contacts,
    /// `GET /v1/campaigns`.
    Campaigns,
}

impl List {
    /// The list's name as its cursors spell it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            List::Calls => "calls",
            List::Contacts => "contacts",
            List::Campaigns => "campaigns",
        }
    }
}

/// An opaque cursor of a newest-first list: hex of `<list>:<created_at in microseconds>:<id>`
/// (URL-safe as it is).
pub(crate) fn encode_cursor(list: List, created_at: DateTime<Utc>, id: &str) -> String {
    hex::encode(format!(
        "{}:{}:{id}",
        list.name(),
        created_at.timestamp_micros()
    ))
}

/// Reads a cursor [`encode_cursor`] made for `list` (one of another list is invalid).
pub(crate) fn decode_cursor(list: List, cursor: &str) -> Result<(DateTime<Utc>, String), Error> {
    let bytes = hex::decode(cursor.trim()).map_err(|_| invalid_cursor())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid_cursor())?;
    let (name, rest) = text.split_once(':').ok_or_else(invalid_cursor)?;
    let (micros, id) = rest.split_once(':').ok_or_else(invalid_cursor)?;
    if name != list.name() || id.is_empty() {
        return Err(invalid_cursor());
    }
    let micros: i64 = micros.parse().map_err(|_| invalid_cursor())?;
    let at = DateTime::from_timestamp_micros(micros).ok_or_else(invalid_cursor)?;
    Ok((at, id.to_owned()))
}

fn invalid_cursor() -> Error {
    Error::InvalidCursor
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_round_trips() {
        let at = DateTime::from_timestamp_micros(1_759_914_898_412_903).unwrap_or_default();
        let cursor = encode_cursor(List::Contacts, at, "b3f1:c2d4");
        assert!(cursor.chars().all(|c| c.is_ascii_hexdigit()));
        let (back_at, back_id) = decode_cursor(List::Contacts, &cursor)
            .ok()
            .unwrap_or_default();
        assert_eq!((back_at, back_id.as_str()), (at, "b3f1:c2d4"));
    }

    #[test]
    fn a_cursor_belongs_to_the_list_that_issued_it() {
        let at = DateTime::from_timestamp_micros(1_759_914_898_412_903).unwrap_or_default();
        let id = "28f6a1c4-0d1e-4a55-9c3b-6f1e2d3c4b5a";
        let contacts = encode_cursor(List::Contacts, at, id);
        assert!(decode_cursor(List::Campaigns, &contacts).is_err());
        assert!(CallCursor::decode(CallSort::Newest, &contacts).is_err());
        let calls = CallCursor {
            sort: CallSort::Newest,
            duration: 0,
            status: String::new(),
            created_at: at,
            execution_id: id.into(),
            provider: Some("bolna".into()),
        }
        .encode();
        assert!(decode_cursor(List::Contacts, &calls).is_err());
        assert!(decode_cursor(List::Campaigns, &calls).is_err());
        assert!(CallCursor::decode(CallSort::Newest, &calls).is_ok());
    }

    #[test]
    fn call_cursors_round_trip_per_sort_and_belong_to_their_sort() {
        let at = DateTime::from_timestamp_micros(1_759_914_898_412_903).unwrap_or_default();
        for sort in CallSort::ALL {
            let cursor = CallCursor {
                sort,
                duration: if matches!(sort, CallSort::Longest | CallSort::Shortest) {
                    93
                } else {
                    0
                },
                status: if sort == CallSort::Status {
                    "in_progress".into()
                } else {
                    String::new()
                },
                created_at: at,
                execution_id: "b3f1:c2d4".into(),
                provider: Some("vapi".into()),
            };
            let encoded = cursor.encode();
            assert!(encoded.chars().all(|c| c.is_ascii_hexdigit()));
            assert_eq!(
                CallCursor::decode(sort, &encoded).ok(),
                Some(cursor),
                "{sort:?}"
            );
            for other in CallSort::ALL.into_iter().filter(|o| *o != sort) {
                assert!(
                    CallCursor::decode(other, &encoded).is_err(),
                    "{sort:?} as {other:?}"
                );
            }
        }
        // A cursor issued before calls had a provider still reads, without one.
        let old = hex::encode(format!("calls:newest::{}:b3f1:c2d4", at.timestamp_micros()));
        let decoded = CallCursor::decode(CallSort::Newest, &old).ok();
        assert_eq!(
            decoded.map(|c| (c.execution_id, c.provider)),
            Some(("b3f1:c2d4".to_owned(), None))
        );
        assert_eq!(CallSort::parse("longest"), Some(CallSort::Longest));
        assert_eq!(CallSort::parse("LONGEST"), None);
    }

    #[test]
    fn add_params_numbers_every_placeholder() {
        let (a, b, c) = (1_i64, 2_i64, 3_i64);
        let mut sql = "SELECT 1 WHERE x = $1".to_owned();
        let mut params: Vec<&(dyn ToSql + Sync)> = vec![&a];
        add_params(&mut sql, &mut params, " AND (y, z) < (?, ?)", &[&b, &c]);
        assert_eq!(sql, "SELECT 1 WHERE x = $1 AND (y, z) < ($2, $3)");
        assert_eq!(params.len(), 3);
    }

    #[test]
    fn malformed_cursors_are_invalid() {
        for bad in [
            "zz",
            "",
            "6162",
            &hex::encode("x:abc"),
            &hex::encode("contacts:x:abc"),
            &hex::encode("contacts:1:"),
            &hex::encode([0xff, 0xfe]),
        ] {
            assert!(
                matches!(
                    decode_cursor(List::Contacts, bad),
                    Err(Error::InvalidCursor)
                ),
                "{bad}"
            );
        }
    }
}
