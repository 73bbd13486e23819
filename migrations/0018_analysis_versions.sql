-- `calltrail analysis retry` runs an analysis again — a failed one, or with `--all` a completed
-- one too (new prompts, a new model). Each run of a job is a version: the first records the
-- plain `analysis.*` event types, run N records `analysis.*.vN`, so a re-run is a new event
-- beside the old one (never a conflicting duplicate of it, never an overwrite), and replay
-- folds them in log order: the newest successful run is the one the API shows.
-- Existing jobs are on their first run.
ALTER TABLE analysis_jobs
    ADD COLUMN version integer NOT NULL DEFAULT 1 CHECK (version >= 1);

-- A complete job follows its call's individual analysis: `after_version` is the run of the
-- individual analysis it was requested by. When a newer individual run is recorded, the
-- projector re-queues the finished complete job as its next version (so `retry --all`
-- re-queues individual jobs only, and each complete one re-runs on its call's new result).
ALTER TABLE analysis_jobs
    ADD COLUMN after_version integer NOT NULL DEFAULT 1 CHECK (after_version >= 1);
