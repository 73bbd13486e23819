//! calltrail-testkit — test support only, shared by every crate's tests and the benchmark.
//!
//! Modules:
//! - [`db`]: [`TestDb`], a fresh migrated PostgreSQL database per test, dropped afterwards. The
//!   server comes from `DATABASE_URL` (as `scripts/test` sets it), else the local
//!   `postgres://postgres@127.0.0.1:5432/postgres`.
//! - [`proxy`]: [`DbProxy`], a TCP forwarder a test cuts and restores to play a database outage.
//! - [`tenant`]: [`create_tenant`], a user with a unique e-mail and its credentials.
//! - [`responses`]: [`MockResponses`], a local HTTP server speaking OpenAI's Responses API that
//!   answers 429/500/timeouts/bad JSON on demand, and the client configuration to reach it.
//! - [`provider_api`]: [`MockProviderApi`], a local HTTP server standing in for a provider's call
//!   API (reconciliation), answering each path with set or queued replies (429, 500, hangs, garbage).
//! - [`signing`]: the headers each provider signs a webhook with (docs/CONTRACT.md §5).
//! - [`fixtures`]: the repository's `fixtures/` folder by path (the `calltrail-fixtures` crate,
//!   which a crate without database tests can use on its own).
#![allow(clippy::expect_used, clippy::unwrap_used)]

pub mod db;
pub mod provider_api;
pub mod proxy;
pub mod responses;
pub mod signing;
pub mod tenant;

pub use calltrail_fixtures as fixtures;
pub use db::{server_url, with_database, TestDb};
pub use provider_api::{MockProviderApi, Reply};
pub use proxy::DbProxy;
pub use responses::{Behaviour, MockResponses};
pub use tenant::{create_tenant, Tenant};
