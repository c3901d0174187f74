-- Record contract v3, additive (issue 19): the basis of each item's label, so a label the classifier
-- guessed ('default') is never mistaken for one the request's wording decided ('rule') or the
-- rationale decided ('rationale'); and which classifier version produced the stored label, so a
-- changed classifier relabels the stored items (`imr relabel`, `imr_backfill` with relabel) instead
-- of re-parsing the PDFs. Numbered 0013: 0008-0012 belong to changes developed alongside this one.
--
-- Both NULL on rows loaded before this migration; `imr relabel` fills them from the stored text.
ALTER TABLE imr.items
    ADD COLUMN label_basis         TEXT CHECK (label_basis IN ('rule', 'rationale', 'default')),
    ADD COLUMN classifier_version  TEXT;

-- Relabel runs: one row per run, with the version it labelled to and what it did. A run that
-- stopped part way (a failed batch) keeps finished_at NULL; rerunning finishes the job, since
-- only items whose label is not of that version are relabelled.
CREATE TABLE imr.relabel_runs (
    run_id              TEXT PRIMARY KEY,
    classifier_version  TEXT NOT NULL,
    started_at          TIMESTAMPTZ NOT NULL DEFAULT now(),
    finished_at         TIMESTAMPTZ,
    letters             INT NOT NULL DEFAULT 0 CHECK (letters >= 0),
    items               INT NOT NULL DEFAULT 0 CHECK (items >= 0),
    labels_changed      INT NOT NULL DEFAULT 0 CHECK (labels_changed >= 0)
);

-- Finding the items still to relabel, in case_number order (keyset pagination).
CREATE INDEX items_classifier_version_idx ON imr.items (case_number) WHERE classifier_version IS NULL;

GRANT SELECT, INSERT, UPDATE ON imr.relabel_runs TO imr_loader;

-- What the classifier did not know, for the Insights page and the data-quality checks: the share
-- of items per label basis, and the requests most often labelled by default (grouped on the
-- lower-cased, space-folded request text so trivial variants count together).
CREATE VIEW imr.label_basis_share AS
SELECT label_basis,
       count(*) AS items,
       count(*)::numeric / nullif(sum(count(*)) OVER (), 0) AS share
FROM imr.items
GROUP BY label_basis;

CREATE VIEW imr.default_label_requests AS
SELECT lower(regexp_replace(btrim(request), '\s+', ' ', 'g')) AS request,
       category,
       subcategory,
       count(*) AS items
FROM imr.items
WHERE label_basis = 'default'
GROUP BY 1, 2, 3;

GRANT SELECT ON imr.label_basis_share, imr.default_label_requests TO imr_loader;
