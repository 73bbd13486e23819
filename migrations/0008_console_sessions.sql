-- Web console sessions (docs/ARCHITECTURE.md "The web console"). Configuration-like state, not
-- events: a session says nothing about calls, so `calltrail replay` never touches this table.
--
-- A session starts when a user signs in with an API key; the browser then holds only a random
-- session id in an HttpOnly cookie, never the key. Like API keys (0003), the id is stored only
-- as its sha256, so a leaked table cannot be replayed against the console.

CREATE TABLE console_sessions (
    hash        bytea       PRIMARY KEY CHECK (length(hash) = 32),
    user_id     uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    -- Absolute expiry: a session never outlives it, however active.
    expires_at  timestamptz NOT NULL,
    -- Set by sign-out (or an operator); a revoked session never comes back.
    revoked_at  timestamptz
);

CREATE INDEX console_sessions_user_id ON console_sessions (user_id);
-- Signing in prunes sessions that ended long ago, by this index.
CREATE INDEX console_sessions_expires_at ON console_sessions (expires_at);
