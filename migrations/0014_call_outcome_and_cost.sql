-- Each Call's business outcome and the provider's own reported cost (CONTRACT §6; the
-- additions in docs/CONTRACT.md §6 say what each value means). Both are derived by the fold from
-- the call's events and its individual analysis (`calls.state` keeps the inputs), so
-- `calltrail replay` rebuilds them like every other column.
--
-- Written to apply before or after 0010, 0015 and 0020 (a database migrated before this file
-- existed applies it after them; one migrated before 0010 existed applies 0010 after it), so
-- it names only tables and columns of 0004-0006. The providers of a call and of its analysis
-- (0010's columns) are compared through `to_jsonb` of the rows: Bolna's when the column is not
-- there yet, as 0010 itself assumes.

ALTER TABLE calls ADD COLUMN outcome text NOT NULL DEFAULT 'other';
-- The amount exactly as the provider sent it, never converted; NULL when it sent none.
ALTER TABLE calls ADD COLUMN cost double precision;
-- What `cost` counts: `usd`, `cents` (of the provider account's currency) or `credits`.
ALTER TABLE calls ADD COLUMN cost_unit text;

-- Existing rows get the outcome replay gives them: their normalized events were recorded
-- before endings existed, so a call ends as its lifecycle status says, and a call whose
-- individual analysis booked a demo is `booked`. Their cost stays NULL: the normalized events
-- never kept one (the raw payloads do, but replay never re-parses them).
UPDATE calls c
   SET outcome = CASE
         WHEN EXISTS (SELECT 1 FROM lead_analytics la
                       WHERE la.user_id = c.user_id AND la.analysis_type = 'individual'
                         AND la.key = c.execution_id
                         AND coalesce(to_jsonb(la) ->> 'provider', 'bolna')
                             = coalesce(to_jsonb(c) ->> 'provider', 'bolna')
                         AND la.demo_book_datetime IS NOT NULL) THEN 'booked'
         WHEN c.call_lifecycle_status = 'no-answer' THEN 'no_answer'
         WHEN c.call_lifecycle_status = 'busy' THEN 'busy'
         WHEN c.call_lifecycle_status IN ('failed', 'error', 'balance-low') THEN 'failed'
         ELSE 'other'
       END
 WHERE c.call_lifecycle_status IN ('no-answer', 'busy', 'failed', 'error', 'balance-low')
    OR EXISTS (SELECT 1 FROM lead_analytics la
                WHERE la.user_id = c.user_id AND la.analysis_type = 'individual'
                  AND la.key = c.execution_id
                  AND coalesce(to_jsonb(la) ->> 'provider', 'bolna')
                      = coalesce(to_jsonb(c) ->> 'provider', 'bolna')
                  AND la.demo_book_datetime IS NOT NULL);
