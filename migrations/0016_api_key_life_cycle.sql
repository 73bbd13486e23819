-- API keys get a life cycle (`calltrail admin create-key`, `list-keys`, `revoke-key`): an id to
-- name a key by without its secret, the first characters of the key to recognise it by (never
-- enough to use it), an optional name, when it was last used, and when it was revoked.
-- Keys created before this migration have no prefix (NULL, listed as null): only their hash
-- was ever stored.
ALTER TABLE api_keys
    ADD COLUMN id           uuid        NOT NULL DEFAULT gen_random_uuid(),
    ADD COLUMN prefix       text,
    ADD COLUMN name         text,
    -- Updated when a server reads the key from the database (its auth cache missed), at most
    -- once a minute per key: never one write per request.
    ADD COLUMN last_used_at timestamptz,
    -- A revoked key authenticates nothing; the row is kept so `list-keys` still shows it.
    ADD COLUMN revoked_at   timestamptz;

CREATE UNIQUE INDEX api_keys_id_key ON api_keys (id);
