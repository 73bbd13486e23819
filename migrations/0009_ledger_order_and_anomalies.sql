-- The credit ledger no longer depends on arrival order (CONTRACT §4.5): a call's charge follows
-- its final duration, the first charge is a `usage` and a later change of it one `adjustment`
-- (the difference), so every row keeps both times: `occurred_at`, the provider's time of the
-- causing event, and `recorded_at`, when that event was recorded. Rows are listed in recorded
-- (log) order, in which `balance_after` reads as a running balance. `created_at` stays, equal
-- to `occurred_at`, for the contract's `created_at` field.
ALTER TABLE credit_transactions
    DROP CONSTRAINT credit_transactions_kind_check,
    ADD CONSTRAINT credit_transactions_kind_check CHECK (kind IN ('grant', 'usage', 'adjustment')),
    ADD COLUMN occurred_at timestamptz,
    ADD COLUMN recorded_at timestamptz;

-- Rows written before this migration: their event's times (each row names its event).
UPDATE credit_transactions t
   SET occurred_at = t.created_at,
       recorded_at = e.recorded_at
  FROM events e
 WHERE e.position = t.position;
UPDATE credit_transactions SET occurred_at = created_at, recorded_at = created_at
 WHERE recorded_at IS NULL;

ALTER TABLE credit_transactions
    ALTER COLUMN occurred_at SET NOT NULL,
    ALTER COLUMN recorded_at SET NOT NULL;

-- What a call's webhooks sent that calltrail did not trust and replaced (`anomalies` of a
-- Call: `duration_out_of_range`, `timestamp_out_of_range`, `timestamp_unparseable`). Calls
-- folded before this migration show none until `calltrail replay` folds them again.
ALTER TABLE calls ADD COLUMN anomalies text[] NOT NULL DEFAULT '{}';
