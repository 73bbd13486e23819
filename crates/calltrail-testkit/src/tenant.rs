//! Test tenants: a user with a unique e-mail and its credentials, created the way
//! `calltrail admin create-user` creates one.

use calltrail_projections::{IssuedCredentials, NewUser, ReadStore};

/// A tenant's id, read-API key and webhook token (secrets redacted in `Debug`).
pub type Tenant = IssuedCredentials;

/// Creates a user with a unique `…@tenant.example` e-mail, changed first by `configure` (to
/// set its prompt ids or its own e-mail), and returns its credentials.
pub async fn create_tenant(store: &ReadStore, configure: impl FnOnce(&mut NewUser)) -> Tenant {
    let mut user = NewUser {
        email: format!("{}@tenant.example", uuid::Uuid::new_v4().simple()),
        ..NewUser::default()
    };
    configure(&mut user);
    store
        .tenancy()
        .create_user(&user)
        .await
        .unwrap_or_else(|e| panic!("cannot create the test tenant {}: {e}", user.email))
}
