-- Two loose ends of keying calls by provider (0010):
--
-- A credit transaction names its charged call by `call_id` alone, which two providers may share.
-- It gains the call's `provider`, so the ledger links to exactly one call. Existing rows take
-- the provider of the event that caused them (a transaction's `position` is its event's), which
-- is exact; grants and other non-call rows keep NULL.
ALTER TABLE credit_transactions ADD COLUMN provider text;

UPDATE credit_transactions t
   SET provider = e.provider
  FROM events e
 WHERE e.position = t.position AND t.call_id IS NOT NULL;

-- `GET /v1/calls?campaign_id=` pages in the list's order, which ends in
-- (created_at, execution_id, provider); 0012's index stopped at execution_id.
DROP INDEX IF EXISTS calls_user_id_campaign_id_created_at_execution_id_idx;
CREATE INDEX ON calls (user_id, campaign_id, created_at DESC, execution_id DESC, provider DESC);
