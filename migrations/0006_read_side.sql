-- `calls.state` holds the serialized calltrail_core::CallState that the projector reads back to
-- continue a call's fold. PostgreSQL never looks inside it, so it is stored as text: parsing
-- ~2 KB of JSON into jsonb on every write cost more than the rest of the row (measured
-- ~115 µs a row with jsonb, the dominant cost of a projector batch and of a replay).
-- `state::jsonb` still works for ad-hoc inspection.
ALTER TABLE calls ALTER COLUMN state TYPE text USING state::text;

-- lz4 is much cheaper than the default pglz when a large state is compressed (as in 0002).
-- Servers built without lz4 keep the default: the DO block tolerates that.
DO $$
BEGIN
    ALTER TABLE calls ALTER COLUMN state SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; calls.state keeps the default compression';
END
$$;

-- One active projector per projection between batches too (docs/EVENTLOG.md §4). Each batch still
-- locks its checkpoint row FOR UPDATE SKIP LOCKED; the row also names the process that holds
-- the projection and until when. Others stand by while the lease is live and take over once it
-- runs out (a crashed process's lease simply expires: nothing is orphaned). Times are the
-- database's clock, the one clock every node shares.
ALTER TABLE projector_checkpoints
    ADD COLUMN owner       text,
    ADD COLUMN lease_until timestamptz;
