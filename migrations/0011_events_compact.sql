-- A compact binary copy of each event's normalized `data` (the calltrail-eventlog crate's
-- `compact` module: a format byte, a schema byte, MessagePack), written by the appender beside
-- `data`. Replay and the projector read it instead of `data`: rendering jsonb back to text was
-- most of what a replay cost PostgreSQL (docs/performance.md).
--
-- Nullable and without a default, so adding it rewrites nothing: rows written before it have
-- no compact copy and are read from `data`, as is any row whose compact value this build
-- cannot use. `events` stays append-only: no row is ever updated to fill it in.
ALTER TABLE events ADD COLUMN compact bytea;

-- lz4, like `data` (0002): should a large row's compact copy be compressed, it reads back fast.
DO $$
BEGIN
    ALTER TABLE events ALTER COLUMN compact SET COMPRESSION lz4;
EXCEPTION WHEN feature_not_supported OR invalid_parameter_value THEN
    RAISE NOTICE 'lz4 is not available on this server; events.compact keeps the default compression';
END
$$;
