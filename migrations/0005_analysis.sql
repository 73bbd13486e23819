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
    total_score             integer,
    intent_level            text,
    intent_score            integer,
    urgency_level           text,
    urgency_score           integer,
    budget_constraint       text,
    budget_score            integer,
    fit_alignment           text,
    fit_score               integer,
    engagement_health       text,
    engagement_score        integer,
    lead_status_tag         text,
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
    execution_id     text        NOT NULL,
    phone_number     text,
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
