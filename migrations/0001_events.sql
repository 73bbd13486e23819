-- The event log. Append-only: calltrail never UPDATEs or DELETEs a row of `events`
-- (see README.md in this folder). Every read model is rebuilt from it by `calltrail replay`.

CREATE TABLE events (
    -- Global append order. NOT commit order: read in (txid, position) order, see below.
    position        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- The writer's transaction id. Readers only take rows whose txid is below the oldest
    -- running transaction (pg_snapshot_xmin), so a slow writer's rows are never skipped.
    txid            xid8        NOT NULL DEFAULT pg_current_xact_id(),
    tenant_id       uuid        NOT NULL,
    provider        text        NOT NULL,
    -- The call's execution id (or another stream id for non-call events).
    stream_id       text        NOT NULL,
    -- The provider status exactly as sent, or `credits.granted`, `analysis.*`, ...
    event_type      text        NOT NULL,
    schema_version  integer     NOT NULL,
    -- Event time from the payload (receive time when the payload has none).
    occurred_at     timestamptz NOT NULL,
    recorded_at     timestamptz NOT NULL DEFAULT now(),
    -- The normalized event the projections fold, so replay never re-parses provider JSON.
    data            jsonb       NOT NULL,
    -- The provider payload as received (NULL for events calltrail creates itself).
    payload         jsonb,
    -- sha256 of the payload (or of data when there is no payload): tells an exact
    -- re-delivery from a conflicting one under the same key.
    payload_hash    bytea       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb,
    -- The natural key: the tenant is part of it so one tenant can never pre-empt another's.
    CONSTRAINT events_natural_key UNIQUE (tenant_id, provider, stream_id, event_type)
);

CREATE INDEX events_txid_position ON events (txid, position);

-- A re-delivery under an existing key whose body differs: acknowledged as a duplicate,
-- kept here for review. The original event is never touched.
CREATE TABLE event_conflicts (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_position  bigint      NOT NULL REFERENCES events (position),
    received_at     timestamptz NOT NULL DEFAULT now(),
    payload         jsonb,
    data            jsonb       NOT NULL,
    payload_hash    bytea       NOT NULL,
    metadata        jsonb       NOT NULL DEFAULT '{}'::jsonb
);

CREATE INDEX event_conflicts_event ON event_conflicts (event_position);

-- Every webhook request we refused, with its body, so nothing received is lost.
CREATE TABLE rejected_webhooks (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at     timestamptz NOT NULL DEFAULT now(),
    provider        text        NOT NULL,
    tenant_id       uuid,
    reason          text        NOT NULL,
    status_code     integer     NOT NULL,
    -- Request headers with secrets (authorization, cookies, tokens, signatures) removed.
    headers         jsonb       NOT NULL DEFAULT '{}'::jsonb,
    body            bytea       NOT NULL
);

CREATE INDEX rejected_webhooks_received_at ON rejected_webhooks (received_at DESC);
