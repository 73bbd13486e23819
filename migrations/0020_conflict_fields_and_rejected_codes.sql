-- Conflicting re-deliveries (same key, different body) are reviewed by call: each row names
-- its event's tenant, provider and call, and the top-level payload fields that differ from the
-- recorded event's (`calltrail admin conflicts`, a Call's `conflicts`). Filled at insert from
-- the recorded event, so the appender's hot path is unchanged.
ALTER TABLE event_conflicts
    ADD COLUMN tenant_id uuid,
    ADD COLUMN provider  text,
    ADD COLUMN stream_id text,
    ADD COLUMN fields    text[] NOT NULL DEFAULT '{}';

-- The top-level keys whose values differ between two payloads (non-objects have none).
CREATE FUNCTION calltrail_differing_fields(recorded jsonb, received jsonb) RETURNS text[]
LANGUAGE sql IMMUTABLE AS $$
    SELECT coalesce(array_agg(k ORDER BY k), '{}')
      FROM (SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(recorded) = 'object'
                                          THEN recorded ELSE '{}'::jsonb END)
             UNION
            SELECT jsonb_object_keys(CASE WHEN jsonb_typeof(received) = 'object'
                                          THEN received ELSE '{}'::jsonb END)) AS keys(k)
     WHERE recorded -> k IS DISTINCT FROM received -> k
$$;

UPDATE event_conflicts c
   SET tenant_id = e.tenant_id, provider = e.provider, stream_id = e.stream_id,
       fields = calltrail_differing_fields(e.payload, c.payload)
  FROM events e
 WHERE e.position = c.event_position;

CREATE INDEX event_conflicts_call ON event_conflicts (tenant_id, stream_id);

-- The error code of each refusal (`invalid_signature`, `unknown_token`, …), beside its sentence.
-- NULL for rows kept before this column existed.
ALTER TABLE rejected_webhooks ADD COLUMN code text;
