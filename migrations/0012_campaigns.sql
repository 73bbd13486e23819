-- Campaigns, recipients and attribution (CONTRACT §6; docs/ARCHITECTURE.md "Campaigns and
-- attribution"). Every table here but `idempotency_keys` is a read model folded from
-- `campaign.*` and `attribution.set` events (0004's rules: no foreign keys, unnamed indexes,
-- values from events only), so `calltrail replay` rebuilds them.

CREATE TABLE campaigns (
    user_id       uuid        NOT NULL,
    campaign_id   uuid        NOT NULL,
    name          text        NOT NULL,
    -- Event time of `campaign.created`.
    created_at    timestamptz NOT NULL,
    -- Position of the event that set `name` (a rename replaces it only when later in the log).
    name_position bigint      NOT NULL,
    PRIMARY KEY (user_id, campaign_id)
);

-- GET /v1/campaigns: newest first, keyset pagination on (created_at, campaign_id).
CREATE INDEX ON campaigns (user_id, created_at DESC, campaign_id DESC);

-- The provider batch ids a campaign claims (`provider_batch_ids`).
CREATE TABLE campaign_batches (
    user_id     uuid   NOT NULL,
    batch_id    text   NOT NULL,
    campaign_id uuid   NOT NULL,
    -- Position of the claiming event: when two campaigns claim one batch id (the API refuses
    -- that, but the log is the truth) the earlier claim wins.
    position    bigint NOT NULL,
    PRIMARY KEY (user_id, batch_id, campaign_id)
);

CREATE TABLE campaign_recipients (
    user_id      uuid   NOT NULL,
    campaign_id  uuid   NOT NULL,
    phone_number text   NOT NULL,
    name         text,
    email        text,
    company      text,
    -- Position of the upload that first added this phone to this campaign (a later duplicate
    -- changes nothing).
    position     bigint NOT NULL,
    PRIMARY KEY (user_id, campaign_id, phone_number)
);

-- Attribution by phone: the campaigns whose recipients hold a number.
CREATE INDEX ON campaign_recipients (user_id, phone_number);

-- The latest manual attribution of a call (`campaign_id` NULL: cleared, the automatic rules
-- apply again). Kept apart from `calls` so it holds whether the call's events come before or
-- after it.
CREATE TABLE call_attributions (
    user_id      uuid   NOT NULL,
    provider     text   NOT NULL,
    execution_id text   NOT NULL,
    campaign_id  uuid,
    -- Position of the `attribution.set` event: only a later one replaces it.
    position     bigint NOT NULL,
    PRIMARY KEY (user_id, provider, execution_id)
);

-- A call's own batch id (CallEvent::batch_id) and the attribution derived from it, its phone,
-- the campaigns and the manual attributions (tables/attribution.rs).
ALTER TABLE calls
    ADD COLUMN batch_id    text,
    ADD COLUMN campaign_id uuid,
    ADD COLUMN attribution text CHECK (attribution IN ('auto_batch', 'auto_phone', 'manual'));

-- Attribution by batch id: the calls a campaign's batch ids name.
CREATE INDEX ON calls (user_id, batch_id) WHERE batch_id IS NOT NULL;
-- GET /v1/calls?campaign_id= and the campaign counts, newest first.
CREATE INDEX ON calls (user_id, campaign_id, created_at DESC, execution_id DESC);

-- Stored answers of write requests sent with an `Idempotency-Key` (CONTRACT §6). Not a read
-- model: an answer is what the client was told, replay never touches it.
CREATE TABLE idempotency_keys (
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    key          text        NOT NULL,
    -- Route and sha256 of the request body: the same key with another request is refused.
    route        text        NOT NULL,
    request_hash bytea       NOT NULL,
    status       smallint    NOT NULL,
    body         text        NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (user_id, key)
);
