-- Lead analysis. `lead_analytics` is a read table (rebuilt by replay from `analysis.*` events,
-- never by calling a model). `analysis_jobs` is NOT a read table: it is the work queue the
-- live projector fills when a transcript lands; replay never touches it.

CREATE TABLE lead_analytics (
    user_id                 uuid        NOT NULL,
    analysis_type           text        NOT NULL CHECK (analysis_type IN ('individual', 'complete')),
    -- individual: the call's execution id; complete: the contact's phone number.
    key                     text        NOT NULL,
    -- individual: the call; complete: the latest call analysed.
    execution_id            text        NOT NULL,
    phone_number            text,
    previous_calls_analyzed integer     NOT NULL DEFAULT 0,
    analysis_timestamp      timestamptz NOT NULL,
    total_score             integer     NOT NULL DEFAULT 0,
    intent_level            text,
    intent_score            integer     NOT NULL DEFAULT 0,
    urgency_level           text,
    urgency_score           integer     NOT NULL DEFAULT 0,
    budget_constraint       text,
    budget_score            integer     NOT NULL DEFAULT 0,
    fit_alignment           text,
    fit_score               integer     NOT NULL DEFAULT 0,
    engagement_health       text,
    engagement_score        integer     NOT NULL DEFAULT 0,
    lead_status_tag         text        NOT NULL CHECK (lead_status_tag IN ('Hot', 'Warm', 'Cold')),
    reasoning               jsonb       NOT NULL DEFAULT '{}'::jsonb,
    company_name            text,
    extracted_name          text,
    extracted_email         text,
    smart_notification      text,
    cta_pricing_clicked     boolean     NOT NULL DEFAULT false,
    cta_demo_clicked        boolean     NOT NULL DEFAULT false,
    cta_followup_clicked    boolean     NOT NULL DEFAULT false,
    cta_sample_clicked      boolean     NOT NULL DEFAULT false,
    cta_escalated_to_human  boolean     NOT NULL DEFAULT false,
    demo_book_datetime      text,
    analyzer                text        NOT NULL,
    model                   text,
    tokens_used             bigint,
    -- Log position of the event that last wrote this row.
    position                bigint      NOT NULL,
    PRIMARY KEY (user_id, analysis_type, key)
);

CREATE INDEX ON lead_analytics (user_id, analysis_type, lead_status_tag);

CREATE TABLE analysis_jobs (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id          uuid        NOT NULL,
    -- 'individual' (one per call) or 'complete' (one per call, run after its individual one;
    -- complete jobs of the same user + phone are serialized by the worker).
    kind             text        NOT NULL CHECK (kind IN ('individual', 'complete')),
    -- The call's provider: result events are keyed (tenant, provider, execution id, type).
    provider         text        NOT NULL,
    execution_id     text        NOT NULL,
    -- The contact (complete jobs always have one; they are serialized per user + phone).
    phone_number     text,
    -- The call's creation time: a contact's complete jobs run in call order.
    call_created_at  timestamptz NOT NULL,
    state            text        NOT NULL DEFAULT 'pending'
                     CHECK (state IN ('pending', 'processing', 'completed', 'failed')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    -- A claimed job whose lease ran out (crashed worker) is claimable again.
    lease_until      timestamptz,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now(),
    UNIQUE (user_id, kind, execution_id)
);

CREATE INDEX analysis_jobs_claimable ON analysis_jobs (next_attempt_at) WHERE state IN ('pending', 'processing');
-- A complete job waits while an earlier one of the same contact is still open.
CREATE INDEX analysis_jobs_open_complete ON analysis_jobs (user_id, phone_number, call_created_at)
    WHERE kind = 'complete' AND state IN ('pending', 'processing');
-- `calltrail analysis status` and the metrics count the unfinished jobs without a full scan.
CREATE INDEX analysis_jobs_unfinished ON analysis_jobs (state) WHERE state <> 'completed';
-- `calltrail analysis retry --execution-id`.
CREATE INDEX analysis_jobs_execution_id ON analysis_jobs (execution_id);
