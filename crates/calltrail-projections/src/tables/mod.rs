//! The read tables the fold writes, one module per table: its load (the prior rows a batch
//! needs), its write and its encoding. Everything is set-wise: a handful of statements per
//! batch (arrays through `unnest`, timeline rows by binary `COPY`), never one per event.
//! Shared by the live projector (schema `public`, inside its checkpoint transaction) and
//! replay (the shadow schema).
//!
//! Keyed rows (calls, contacts, transcripts, balances: [`write_rows`]) are upserted whole from
//! the snapshot; append-only rows (credit transactions, timeline, dead letters, and lead
//! analytics, which only a later event replaces: [`write_appends`]) are written once per event
//! because the live projector moves its checkpoint in the same transaction and replay writes
//! each page once.
//!
//! - [`calls`]: the `calls` table, with the stored state's encoding (`calls.state`).
//! - [`contacts`]: the `contacts` table.
//! - [`transcripts`]: the `transcripts` table (loaded with their calls).
//! - [`credits`]: the `credit_balances` and `credit_transactions` tables.
//! - [`timeline`]: the `call_events` table.
//! - [`lead_analytics`]: the `lead_analytics` table.
//! - [`dead_letters`]: the `dead_letters` table (always in `public`; replay does not rebuild it).
//! - [`campaigns`]: `campaigns`, `campaign_batches`, `campaign_recipients`, `call_attributions`.
//! - [`attribution`]: each call's `campaign_id` and `attribution`, derived from those tables
//!   once a batch is written.

use tokio_postgres::Transaction;

use crate::fold::{Changes, Snapshot};
use crate::Error;

pub(crate) mod attribution;
pub(crate) mod calls;
pub(crate) mod campaigns;
pub(crate) mod contacts;
pub(crate) mod credits;
pub(crate) mod dead_letters;
pub(crate) mod lead_analytics;
pub(crate) mod timeline;
pub(crate) mod transcripts;

/// A read table one projection of events writes (and replay rebuilds).
#[derive(Debug, Clone, Copy)]
pub(crate) struct ReadTable {
    /// Its name in `public` (and in the replay schema).
    pub(crate) name: &'static str,
    /// True when the fold upserts into it: its unique key must exist while replay fills it.
    pub(crate) upserted: bool,
}

/// Every read table of the `read_models` projection, the list replay rebuilds and swaps.
pub(crate) const READ_TABLES: &[ReadTable] = &[
    ReadTable {
        name: "calls",
        upserted: true,
    },
    ReadTable {
        name: "contacts",
        upserted: true,
    },
    ReadTable {
        name: "transcripts",
        upserted: true,
    },
    ReadTable {
        name: "credit_balances",
        upserted: true,
    },
    ReadTable {
        name: "credit_transactions",
        upserted: false,
    },
    ReadTable {
        name: "call_events",
        upserted: false,
    },
    ReadTable {
        name: "lead_analytics",
        upserted: true,
    },
    ReadTable {
        name: "campaigns",
        upserted: true,
    },
    ReadTable {
        name: "campaign_batches",
        upserted: true,
    },
    ReadTable {
        name: "campaign_recipients",
        upserted: true,
    },
    ReadTable {
        name: "call_attributions",
        upserted: true,
    },
];

/// Upserts the keyed rows of `changes` (calls, contacts, transcripts, balances) from `snapshot`.
pub(crate) async fn write_rows(
    tx: &Transaction<'_>,
    schema: &str,
    snapshot: &Snapshot,
    changes: &Changes,
) -> Result<(), Error> {
    tokio::try_join!(
        calls::write(tx, schema, snapshot, changes),
        contacts::write(tx, schema, snapshot, changes),
        transcripts::write(tx, schema, changes),
        credits::write_balances(tx, schema, snapshot, changes),
    )?;
    Ok(())
}

/// Inserts the rows written with every batch: credit transactions, timeline, dead letters
/// (under `projector`'s name), lead analytics, campaign rows.
pub(crate) async fn write_appends(
    tx: &Transaction<'_>,
    schema: &str,
    projector: &str,
    changes: &Changes,
) -> Result<(), Error> {
    tokio::try_join!(
        credits::write_transactions(tx, schema, changes),
        timeline::write(tx, schema, changes),
        dead_letters::write(tx, projector, changes),
        lead_analytics::write(tx, schema, changes),
        campaigns::write(tx, schema, changes),
    )?;
    Ok(())
}
