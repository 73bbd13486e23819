//! calltrail-reconcile's tests against the local fake provider API (calltrail-testkit's
//! `MockProviderApi`): each provider's request and mapping, and the client's failure handling.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod client;
mod providers;
mod run;
