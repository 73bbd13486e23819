-- A call is identified by (provider, call id) (CONTRACT §5): a Vapi call and a Twilio call with
-- the same id are two calls. Every read row that belongs to one call gains the call's
-- `provider` and keys by it. The events table is not touched: it already has `provider`.
--
-- Written to apply before or after 0012 (a database migrated before this file existed applies
-- it after 0012; a new one applies it in file order), so it names only tables of 0004-0006.
--
-- Existing rows: every call so far is Bolna's unless the log says otherwise. A call whose
-- events are of one other provider only gets that provider (probed through the events'
-- natural key, `(tenant_id, provider, stream_id, …)`, so no scan of the log). A row that two
-- providers' events were folded into before this migration stays one row here;
-- `calltrail replay` splits it.

ALTER TABLE calls ADD COLUMN provider text NOT NULL DEFAULT 'bolna';

UPDATE calls c
   SET provider = p.provider
  FROM (VALUES ('vapi'), ('elevenlabs'), ('twilio'), ('retell')) AS p(provider)
 WHERE EXISTS (SELECT 1 FROM events e
                WHERE e.tenant_id = c.user_id AND e.provider = p.provider
                  AND e.stream_id = c.execution_id)
   AND NOT EXISTS (SELECT 1 FROM events e
                    WHERE e.tenant_id = c.user_id AND e.provider = 'bolna'
                      AND e.stream_id = c.execution_id);

-- The key is (user_id, provider, execution_id) as a set; the columns are in this order so the
-- same index answers `GET /v1/calls/{id}` without a provider (every call of that id).
ALTER TABLE calls DROP CONSTRAINT calls_pkey;
ALTER TABLE calls ADD PRIMARY KEY (user_id, execution_id, provider);

-- GET /v1/calls keyset pagination: every order ends in (created_at, execution_id, provider).
DROP INDEX calls_user_id_created_at_execution_id_idx;
CREATE INDEX ON calls (user_id, created_at DESC, execution_id DESC, provider DESC);
-- GET /v1/calls?provider=.
CREATE INDEX ON calls (user_id, provider, created_at DESC, execution_id DESC);

ALTER TABLE transcripts ADD COLUMN provider text NOT NULL DEFAULT 'bolna';
UPDATE transcripts t SET provider = c.provider
  FROM calls c
 WHERE c.user_id = t.user_id AND c.execution_id = t.execution_id AND c.provider <> 'bolna';
ALTER TABLE transcripts DROP CONSTRAINT transcripts_pkey;
ALTER TABLE transcripts ADD PRIMARY KEY (user_id, execution_id, provider);

-- The timeline.
ALTER TABLE call_events ADD COLUMN provider text NOT NULL DEFAULT 'bolna';
UPDATE call_events ce SET provider = c.provider
  FROM calls c
 WHERE c.user_id = ce.user_id AND c.execution_id = ce.execution_id AND c.provider <> 'bolna';
DROP INDEX call_events_user_id_execution_id_occurred_at_position_idx;
CREATE INDEX ON call_events (user_id, execution_id, provider, occurred_at, position);

-- The contact's first call, as (provider, call id).
ALTER TABLE contacts ADD COLUMN auto_created_from_provider text;
UPDATE contacts SET auto_created_from_provider = 'bolna' WHERE auto_created_from_call_id IS NOT NULL;
UPDATE contacts ct SET auto_created_from_provider = c.provider
  FROM calls c
 WHERE c.user_id = ct.user_id AND c.execution_id = ct.auto_created_from_call_id
   AND c.provider <> 'bolna';

-- Lead analytics: an `individual` row is the call's, keyed (provider, execution id); a
-- `complete` row is the contact's (one per user + phone), its `provider` is '' (the key has
-- none; `execution_id` is the latest call analysed).
ALTER TABLE lead_analytics ADD COLUMN provider text NOT NULL DEFAULT 'bolna';
UPDATE lead_analytics SET provider = '' WHERE analysis_type = 'complete';
UPDATE lead_analytics la SET provider = c.provider
  FROM calls c
 WHERE la.analysis_type = 'individual' AND c.user_id = la.user_id
   AND c.execution_id = la.key AND c.provider <> 'bolna';
ALTER TABLE lead_analytics DROP CONSTRAINT lead_analytics_pkey;
ALTER TABLE lead_analytics ADD PRIMARY KEY (user_id, analysis_type, key, provider);

-- Analysis jobs already carry the call's provider; one job per kind and call means per
-- (provider, call id) too.
ALTER TABLE analysis_jobs DROP CONSTRAINT analysis_jobs_user_id_kind_execution_id_key;
ALTER TABLE analysis_jobs ADD UNIQUE (user_id, kind, provider, execution_id);
