-- Insights refresh by the night's letters (issue 18). A nightly run's new letters land on days that
-- already hold thousands of letters; recomputing those days whole made the publish step read every
-- letter, item and citation of them (13.7 s for 500 new letters on 30 recent days at 1.7 M letters,
-- most of it random page reads). Every measure is a count, so a letter that is new since the last
-- refresh adds its own counts to its day's and month's rows: the refresh reads the new letters
-- only. A mark now says which kind of write made it:
--   case_number NULL         a row updated or deleted (or a truncate): the day is recomputed whole;
--   case_number, letter      the letter row was inserted;
--   case_number, NOT letter  some of its items or citations were inserted.
-- imr.warehouse.insights_months adds a day's new letters only if every mark of the day is of the
-- last two kinds and each case with inserted children has its letter inserted in the same marks
-- (otherwise children were added to a letter the aggregates already count, and the day is
-- recomputed). The read side is unchanged: every marked day comes from the base tables.
ALTER TABLE imr.insights_stale_days ADD COLUMN case_number TEXT, ADD COLUMN letter BOOLEAN;

CREATE OR REPLACE FUNCTION imr.insights_mark_letters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO imr.insights_stale_days (decision_day) SELECT DISTINCT decision_date FROM old_rows;
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO imr.insights_stale_days (decision_day) SELECT DISTINCT decision_date FROM new_rows;
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO imr.insights_stale_days (decision_day, case_number, letter)
        SELECT decision_date, case_number, true FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION imr.insights_mark_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO imr.insights_stale_days (decision_day)
        SELECT DISTINCT l.decision_date
        FROM (SELECT DISTINCT case_number FROM old_rows) o JOIN imr.letters l USING (case_number);
    END IF;
    IF TG_OP = 'UPDATE' THEN
        INSERT INTO imr.insights_stale_days (decision_day)
        SELECT DISTINCT l.decision_date
        FROM (SELECT DISTINCT case_number FROM new_rows) n JOIN imr.letters l USING (case_number);
    END IF;
    IF TG_OP = 'INSERT' THEN
        INSERT INTO imr.insights_stale_days (decision_day, case_number, letter)
        SELECT l.decision_date, n.case_number, false
        FROM (SELECT DISTINCT case_number FROM new_rows) n JOIN imr.letters l USING (case_number);
    END IF;
    RETURN NULL;
END
$$;
