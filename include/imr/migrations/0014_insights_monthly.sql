-- Insights at archive scale (issue 18): the Insights page's figures kept per decision month, so a
-- route sums a few thousand monthly rows instead of joining millions of letters, items and
-- citations. The rows are computed by imr.warehouse.insights_months (one SQL definition per table,
-- the same the read side uses for the months it takes from the base tables).
--
-- Exactness does not depend on anyone remembering to refresh: every write to imr.letters,
-- imr.items or imr.item_citations marks the decision days it touched in imr.insights_stale_days
-- (statement triggers below, in the writer's own transaction), and the read side takes those days
-- from the base tables (and the rest of their months from the day rows). The publish step,
-- `imr relabel` and `imr db refresh-insights` recompute the marked days (and their months' rows)
-- and clear their marks in one transaction. Numbered 0014: 0009 and others belong to changes
-- developed alongside this one.
--
-- Two grains in each aggregate table: a row with decision_day NULL is a whole month's (what a range
-- covering the month sums), one with decision_day set is that day's (what a range's first and last
-- partial months sum), so no range reads the base tables for its edges. The month rows are the sums
-- of the day rows. decision_month and decision_day both NULL: the letters without a decision date
-- (counted only when the range is open).

CREATE TABLE imr.insights_stale_days (
    decision_day  DATE,
    marked_at     TIMESTAMPTZ NOT NULL DEFAULT now()
);
-- Append-only on purpose: no unique key, so concurrent lanes marking the same day never wait on
-- each other (a unique key or a lock on an existing mark would serialize them or race with the
-- refresh deleting it). The refresh deletes what it recomputed; the index makes the distinct
-- days a loose index scan however many marks a backfill left. Days, not months: a refresh costs
-- the letters of the days a run touched, not of their whole months.
CREATE INDEX insights_stale_days_idx ON imr.insights_stale_days (decision_day);

-- Letters per month (and day), priority and days from the application's receipt (letter_timeliness): the
-- totals' letters, the histogram, the medians and percentiles (exact from the frequencies).
CREATE TABLE imr.insights_month_letters (
    decision_month         DATE,
    decision_day           DATE,
    priority               TEXT,
    days_from_application  INT,
    letters                BIGINT NOT NULL
);
CREATE INDEX insights_month_letters_month_idx ON imr.insights_month_letters (decision_month)
    WHERE decision_day IS NULL;
CREATE INDEX insights_month_letters_day_idx ON imr.insights_month_letters (decision_day)
    WHERE decision_day IS NOT NULL;

-- Items per month (and day), category, subcategory and label basis: the totals' items, the categories, the
-- pharmaceutical mix, the label bases, and `citing` (items with an expert reviewer's citation).
CREATE TABLE imr.insights_month_items (
    decision_month  DATE,
    decision_day    DATE,
    category        TEXT,
    subcategory     TEXT,
    label_basis     TEXT,
    items           BIGINT NOT NULL,
    upheld          BIGINT NOT NULL,
    overturned      BIGINT NOT NULL,
    citing          BIGINT NOT NULL
);
CREATE INDEX insights_month_items_month_idx ON imr.insights_month_items (decision_month)
    WHERE decision_day IS NULL;
CREATE INDEX insights_month_items_day_idx ON imr.insights_month_items (decision_day)
    WHERE decision_day IS NOT NULL;

-- overturn_by_guideline per month: items citing each family / MTUS title (an item once per title).
CREATE TABLE imr.insights_month_guidelines (
    decision_month  DATE,
    decision_day    DATE,
    family          TEXT NOT NULL,
    title           TEXT,
    items           BIGINT NOT NULL,
    upheld          BIGINT NOT NULL,
    overturned      BIGINT NOT NULL
);
CREATE INDEX insights_month_guidelines_month_idx ON imr.insights_month_guidelines (decision_month)
    WHERE decision_day IS NULL;
CREATE INDEX insights_month_guidelines_day_idx ON imr.insights_month_guidelines (decision_day)
    WHERE decision_day IS NOT NULL;

-- The same per family (an item once per family however many of its titles it cites).
CREATE TABLE imr.insights_month_families (
    decision_month  DATE,
    decision_day    DATE,
    family          TEXT NOT NULL,
    items           BIGINT NOT NULL,
    upheld          BIGINT NOT NULL,
    overturned      BIGINT NOT NULL
);
CREATE INDEX insights_month_families_month_idx ON imr.insights_month_families (decision_month)
    WHERE decision_day IS NULL;
CREATE INDEX insights_month_families_day_idx ON imr.insights_month_families (decision_day)
    WHERE decision_day IS NOT NULL;

-- default_label_requests per month (request text lower-cased, white space folded).
CREATE TABLE imr.insights_month_default_requests (
    decision_month  DATE,
    decision_day    DATE,
    request         TEXT NOT NULL,
    category        TEXT,
    subcategory     TEXT,
    items           BIGINT NOT NULL
);
CREATE INDEX insights_month_default_requests_month_idx ON imr.insights_month_default_requests (decision_month)
    WHERE decision_day IS NULL;
CREATE INDEX insights_month_default_requests_day_idx ON imr.insights_month_default_requests (decision_day)
    WHERE decision_day IS NOT NULL;

-- The read side's marked days come from the base tables by decision date.
CREATE INDEX IF NOT EXISTS letters_decision_date_idx ON imr.letters (decision_date);

-- The marks. Letters: the old and the new decision day of every row written. Items and
-- citations: the day of their letter as it stands (a letter moved to another day is marked by its
-- own trigger, both days; a cascade from a deleted letter likewise).
CREATE FUNCTION imr.insights_mark_letters() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO imr.insights_stale_days (decision_day) SELECT DISTINCT decision_date FROM old_rows;
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO imr.insights_stale_days (decision_day) SELECT DISTINCT decision_date FROM new_rows;
    END IF;
    RETURN NULL;
END
$$;

CREATE FUNCTION imr.insights_mark_children() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        INSERT INTO imr.insights_stale_days (decision_day)
        SELECT DISTINCT l.decision_date
        FROM (SELECT DISTINCT case_number FROM old_rows) o JOIN imr.letters l USING (case_number);
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        INSERT INTO imr.insights_stale_days (decision_day)
        SELECT DISTINCT l.decision_date
        FROM (SELECT DISTINCT case_number FROM new_rows) n JOIN imr.letters l USING (case_number);
    END IF;
    RETURN NULL;
END
$$;

-- TRUNCATE has no rows to say which days: every day the aggregates hold is marked (NULL: the
-- undated letters).
CREATE FUNCTION imr.insights_mark_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO imr.insights_stale_days (decision_day)
    SELECT DISTINCT decision_day FROM imr.insights_month_letters;
    RETURN NULL;
END
$$;

-- One trigger per event: a trigger with transition tables fires for one event only in older
-- servers, and INSERT .. ON CONFLICT DO UPDATE fires the INSERT and the UPDATE ones.
CREATE TRIGGER insights_mark_ins AFTER INSERT ON imr.letters
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_letters();
CREATE TRIGGER insights_mark_upd AFTER UPDATE ON imr.letters
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_letters();
CREATE TRIGGER insights_mark_del AFTER DELETE ON imr.letters
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_letters();

CREATE TRIGGER insights_mark_ins AFTER INSERT ON imr.items
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_children();
CREATE TRIGGER insights_mark_upd AFTER UPDATE ON imr.items
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_children();
CREATE TRIGGER insights_mark_del AFTER DELETE ON imr.items
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_children();

CREATE TRIGGER insights_mark_ins AFTER INSERT ON imr.item_citations
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_children();
CREATE TRIGGER insights_mark_upd AFTER UPDATE ON imr.item_citations
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_children();
CREATE TRIGGER insights_mark_del AFTER DELETE ON imr.item_citations
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_children();

CREATE TRIGGER insights_mark_truncate AFTER TRUNCATE ON imr.letters
    FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_truncate();
CREATE TRIGGER insights_mark_truncate AFTER TRUNCATE ON imr.items
    FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_truncate();
CREATE TRIGGER insights_mark_truncate AFTER TRUNCATE ON imr.item_citations
    FOR EACH STATEMENT EXECUTE FUNCTION imr.insights_mark_truncate();

-- A warehouse upgraded with letters in it: every day is marked, so the figures are exact at once
-- (from the base tables) and the first refresh fills the aggregates.
INSERT INTO imr.insights_stale_days (decision_day) SELECT DISTINCT decision_date FROM imr.letters;

-- The loader writes the marks (its triggers) and the aggregates (refresh); the reader reads them.
GRANT SELECT, INSERT, UPDATE, DELETE ON imr.insights_stale_days, imr.insights_month_letters,
    imr.insights_month_items, imr.insights_month_guidelines, imr.insights_month_families,
    imr.insights_month_default_requests TO imr_loader;
GRANT SELECT ON imr.insights_stale_days, imr.insights_month_letters, imr.insights_month_items,
    imr.insights_month_guidelines, imr.insights_month_families, imr.insights_month_default_requests
    TO imr_reader;
