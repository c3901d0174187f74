-- Analytics views over the enriched items (0004). Separate from 0004 so that a later change to a
-- view is a new CREATE OR REPLACE migration without touching the tables. (0005 belongs to the
-- manifest/batches change developed alongside.) Rates are numeric fractions 0..1, NULL where the
-- denominator is 0. Items loaded by a pre-0004 parser (category NULL) appear under category NULL
-- until a backfill with reparse fills them.

-- Items, upheld, overturned and overturn rate per year of decision_date, category and subcategory.
CREATE VIEW imr.decisions_by_category AS
SELECT extract(year FROM l.decision_date)::int AS year,
       i.category,
       i.subcategory,
       count(*) AS items,
       count(*) FILTER (WHERE i.decision = 'Upheld') AS upheld,
       count(*) FILTER (WHERE i.decision = 'Overturned') AS overturned,
       (count(*) FILTER (WHERE i.decision = 'Overturned'))::numeric / count(*) AS overturn_rate
FROM imr.items i JOIN imr.letters l USING (case_number)
GROUP BY 1, 2, 3;

-- Pharmaceuticals' share of all items (one row).
CREATE VIEW imr.pharmaceutical_share AS
SELECT count(*) AS items,
       count(*) FILTER (WHERE category = 'Pharmaceuticals') AS pharmaceutical_items,
       (count(*) FILTER (WHERE category = 'Pharmaceuticals'))::numeric / nullif(count(*), 0)
           AS pharmaceutical_share
FROM imr.items;

-- Each drug class's share of the pharmaceutical items, and its overturn rate.
CREATE VIEW imr.drug_class_share AS
SELECT subcategory AS drug_class,
       count(*) AS items,
       sum(count(*)) OVER ()::bigint AS pharmaceutical_items,
       count(*)::numeric / sum(count(*)) OVER () AS share_of_pharmaceuticals,
       count(*) FILTER (WHERE decision = 'Overturned') AS overturned,
       (count(*) FILTER (WHERE decision = 'Overturned'))::numeric / count(*) AS overturn_rate
FROM imr.items
WHERE category = 'Pharmaceuticals'
GROUP BY subcategory;

-- Overturn rate by the expert reviewer's specialty (letters and items).
CREATE VIEW imr.overturn_by_specialty AS
SELECT l.reviewer_specialty,
       count(DISTINCT l.case_number) AS letters,
       count(*) AS items,
       count(*) FILTER (WHERE i.decision = 'Overturned') AS overturned,
       (count(*) FILTER (WHERE i.decision = 'Overturned'))::numeric / count(*) AS overturn_rate
FROM imr.items i JOIN imr.letters l USING (case_number)
GROUP BY l.reviewer_specialty;

-- Overturn rate by the guideline the expert reviewer cited: family (MTUS, ODG, ACOEM, other) and,
-- for MTUS, the title (NULL for the other families). An item citing several guidelines counts once
-- under each; one citing the same title twice counts once.
CREATE VIEW imr.overturn_by_guideline AS
WITH cited AS (
    SELECT DISTINCT c.case_number, c.seq, c.family, CASE WHEN c.family = 'MTUS' THEN c.title END AS title
    FROM imr.item_citations c
    WHERE c.source = 'expert_reviewer'
)
SELECT c.family,
       c.title,
       count(*) AS items,
       count(*) FILTER (WHERE i.decision = 'Upheld') AS upheld,
       count(*) FILTER (WHERE i.decision = 'Overturned') AS overturned,
       (count(*) FILTER (WHERE i.decision = 'Overturned'))::numeric / count(*) AS overturn_rate
FROM cited c JOIN imr.items i USING (case_number, seq)
GROUP BY c.family, c.title;

-- Per letter: days from the application's receipt and from assignment to the reviewer to the
-- decision (Labor Code 4610.6(d): 30 days for a standard review; expedited reviews are shorter).
CREATE VIEW imr.letter_timeliness AS
SELECT case_number,
       priority,
       decision_date,
       date_trunc('month', decision_date)::date AS decision_month,
       application_received,
       date_assigned,
       decision_date - application_received AS days_from_application,
       decision_date - date_assigned AS days_from_assignment,
       (decision_date - application_received) > 30 AS over_30_days_from_application,
       (decision_date - date_assigned) > 30 AS over_30_days_from_assignment
FROM imr.letters;

-- By month of decision and priority (Expedited / Standard separately): median, 90th percentile
-- (continuous, interpolated) and share over 30 days, for both intervals. Letters missing a date
-- are left out of that interval's figures.
CREATE VIEW imr.timeliness_by_month AS
SELECT decision_month,
       priority,
       count(*) AS letters,
       count(days_from_application) AS letters_with_application_date,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY days_from_application) AS median_days_from_application,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY days_from_application) AS p90_days_from_application,
       avg(over_30_days_from_application::int) AS share_over_30_days_from_application,
       count(days_from_assignment) AS letters_with_assignment_date,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY days_from_assignment) AS median_days_from_assignment,
       percentile_cont(0.9) WITHIN GROUP (ORDER BY days_from_assignment) AS p90_days_from_assignment,
       avg(over_30_days_from_assignment::int) AS share_over_30_days_from_assignment
FROM imr.letter_timeliness
WHERE decision_month IS NOT NULL
GROUP BY decision_month, priority;

GRANT SELECT ON imr.decisions_by_category, imr.pharmaceutical_share, imr.drug_class_share,
    imr.overturn_by_specialty, imr.overturn_by_guideline, imr.letter_timeliness,
    imr.timeliness_by_month TO imr_loader;
