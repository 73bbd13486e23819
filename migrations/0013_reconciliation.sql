-- Reconciliation (docs/CONTRACT.md §6): the last result of `calltrail reconcile` (or serve's
-- periodic run) per tenant and provider, for GET /v1/reconciliation, and the one row that lets
-- one process at a time reconcile. Plain operational state like 0003's tenancy tables: not
-- events, never touched by replay (what reconciliation learns is appended to the log as events).

CREATE TABLE reconcile_runs (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- A provider name of calltrail_core::Provider.
    provider     text        NOT NULL,
    started_at   timestamptz NOT NULL,
    finished_at  timestamptz NOT NULL,
    -- Calls looked at = appended + unchanged + errors.
    checked      bigint      NOT NULL CHECK (checked >= 0),
    appended     bigint      NOT NULL CHECK (appended >= 0),
    unchanged    bigint      NOT NULL CHECK (unchanged >= 0),
    errors       bigint      NOT NULL CHECK (errors >= 0),
    -- The last error of the run (never a credential: the messages name providers and calls only).
    last_error   text,
    PRIMARY KEY (user_id, provider)
);

-- The projector's leasing idea (projector_checkpoints, 0004): a run locks this row
-- `FOR UPDATE SKIP LOCKED` to take or renew a lease (`owner`, `lease_until`, the database's
-- clock); another process finds it held and does not run. `last_started_at` tells serve's
-- periodic task whether a run is due, whichever process did the last one.
CREATE TABLE reconcile_lease (
    name             text        PRIMARY KEY,
    owner            text,
    lease_until      timestamptz,
    last_started_at  timestamptz,
    last_finished_at timestamptz
);

INSERT INTO reconcile_lease (name) VALUES ('reconcile');
