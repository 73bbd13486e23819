-- A contact's name, e-mail and company are the newest any event gave (a call webhook's own
-- fields, Bolna's `extracted_data`, or an analysis's `extracted_name`, `extracted_email` and
-- `company_name`): each keeps the time of the event that gave it, so the newest wins in any
-- delivery order and replay gives the same. NULL: set before these columns existed.
ALTER TABLE contacts
    ADD COLUMN name_at    timestamptz,
    ADD COLUMN email_at   timestamptz,
    ADD COLUMN company_at timestamptz;
