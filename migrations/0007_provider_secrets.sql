-- Per-tenant provider credentials: the webhook signing secrets the intake checks signatures with
-- (docs/CONTRACT.md §5, `calltrail admin set-provider-secret`) and the provider API keys
-- reconciliation calls the providers' APIs with (§6, `calltrail admin set-provider-api-key`).
-- Plain configuration like 0003's tenancy tables: not events, never touched by replay.
--
-- Unlike API keys and webhook tokens (0003), these cannot be stored as hashes: calltrail needs
-- the secret itself, as an HMAC key or to call the provider. So each is encrypted at rest with an
-- AEAD under the key the operator supplies in CALLTRAIL_SECRETS_KEY, and only the ciphertext and
-- its nonce are stored: a database dump alone does not reveal a secret, and there is no column
-- a plaintext could go into. Encryption should bind each ciphertext to its row's
-- (user_id, provider, kind) as associated data, so a ciphertext copied onto another tenant's
-- row does not decrypt.
--
-- Until the commands that write this table exist, it stays empty, and every signing provider
-- is fail-closed (401 `signature_not_configured`); Bolna signs nothing and never reads it.

CREATE TABLE provider_secrets (
    id           bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id      uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- A provider name of calltrail_core::Provider (`vapi`, `twilio`, …), as in `agents.provider`.
    provider     text        NOT NULL,
    -- `webhook_signing`: checks the provider's webhook signatures (a Twilio Auth Token, a Vapi
    -- or Retell secret, an ElevenLabs HMAC key). `api_key`: authenticates reconciliation's calls
    -- to the provider's API.
    kind         text        NOT NULL CHECK (kind IN ('webhook_signing', 'api_key')),
    ciphertext   bytea       NOT NULL CHECK (length(ciphertext) > 0),
    -- An AEAD nonce is at least 96 bits (AES-GCM 12 bytes, XChaCha20-Poly1305 24 bytes).
    nonce        bytea       NOT NULL CHECK (length(nonce) >= 12),
    -- The provider API's base URL for an `api_key` (`--base-url`), when not the provider's
    -- default: a self-hosted or regional endpoint, or a local fake in tests.
    base_url     text        CHECK (base_url IS NULL OR kind = 'api_key'),
    created_at   timestamptz NOT NULL DEFAULT now(),
    -- NULL: the current credential. Set when a newer one replaces it: a rotated-out signing
    -- secret stays valid until then (`--previous-valid-for 24h`: webhooks signed with the old
    -- secret, already sent or retried, still verify while the provider switches over); a
    -- replaced credential without such a window gets the time of its replacement. Rows past
    -- their time are never read again and may be deleted.
    valid_until  timestamptz
);

-- One current credential of each kind per tenant and provider; rotated-out ones accumulate
-- beside it until they expire.
CREATE UNIQUE INDEX provider_secrets_current
    ON provider_secrets (user_id, provider, kind) WHERE valid_until IS NULL;

-- The intake's look-up: a tenant's rows for one provider and kind.
CREATE INDEX provider_secrets_lookup ON provider_secrets (user_id, provider, kind);
