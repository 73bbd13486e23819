-- Tenancy: users (tenants), their provider agents, API keys and webhook tokens.
-- Plain configuration, not events (docs/DESIGN.md "The log is the truth"): `calltrail replay`
-- never touches these tables, so foreign keys between them are fine here (unlike the
-- read tables of 0004, which replay swaps).

CREATE TABLE users (
    -- The tenant id: every event's `tenant_id` and every read row's `user_id` is one of these.
    id                    uuid        PRIMARY KEY,
    email                 text        NOT NULL,
    name                  text,
    -- The user's own OpenAI prompt ids; they take precedence over the system-wide ones.
    individual_prompt_id  text,
    complete_prompt_id    text,
    created_at            timestamptz NOT NULL DEFAULT now()
);

-- One account per address regardless of case: `Ann@x.com` and `ann@x.com` are the same person.
CREATE UNIQUE INDEX users_email_key ON users (lower(email));

CREATE TABLE agents (
    id           uuid        PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider     text        NOT NULL,
    -- The provider's own agent id as it appears in webhooks (Bolna `agent_id`).
    external_id  text        NOT NULL,
    name         text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- A provider agent belongs to at most one tenant: a webhook naming it is refused for any other.
    CONSTRAINT agents_provider_external_id_key UNIQUE (provider, external_id)
);

CREATE INDEX agents_user_id ON agents (user_id);

-- Secrets are shown once at creation and stored only as sha256 hashes: a leaked table
-- cannot be replayed against the API. The hash is the key, so a lookup is one index probe.
CREATE TABLE api_keys (
    hash        bytea       PRIMARY KEY CHECK (length(hash) = 32),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX api_keys_user_id ON api_keys (user_id);

CREATE TABLE webhook_tokens (
    hash        bytea       PRIMARY KEY CHECK (length(hash) = 32),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX webhook_tokens_user_id ON webhook_tokens (user_id);
