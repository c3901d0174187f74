-- Enriched item fields (record contract v2, ../shared/letter-record.md "Enriched item fields"):
-- each item's request category/subcategory in the DWC IMR taxonomy, whether each party cited any
-- medical evidence, and the parsed guideline citations (imr.item_citations).
--
-- Evidence is two columns on imr.items rather than a table: there are exactly two sources and
-- every item has one value for each, so columns keep "every item has both" a NOT NULL question.
-- The new columns are NULL for rows loaded by a parser older than this migration
-- (parser_version < 1.1.0) until `imr_backfill` with reparse re-loads them; the data-quality
-- checks items_category_in_taxonomy / items_evidence_set fail until then.

ALTER TABLE imr.items
    ADD COLUMN category                       TEXT,
    ADD COLUMN subcategory                    TEXT,
    ADD COLUMN claims_administrator_evidence  TEXT CHECK (claims_administrator_evidence IN ('cited', 'none')),
    ADD COLUMN expert_reviewer_evidence       TEXT CHECK (expert_reviewer_evidence IN ('cited', 'none'));

-- One row per citation, in the guideline line's text order (ordinal 1, 2, ...). MTUS citations
-- have title/year/sections (text NULL); non-MTUS ones have text (title/year/sections NULL). A
-- corrected letter replaces its items, and the cascade takes their citations with them.
CREATE TABLE imr.item_citations (
    case_number  TEXT NOT NULL,
    seq          INT NOT NULL,
    source       TEXT NOT NULL CHECK (source IN ('claims_administrator', 'expert_reviewer')),
    ordinal      INT NOT NULL CHECK (ordinal > 0),
    family       TEXT NOT NULL CHECK (family IN ('MTUS', 'ODG', 'ACOEM', 'other')),
    title        TEXT,
    year         INT,
    sections     TEXT,
    text         TEXT,
    PRIMARY KEY (case_number, seq, source, ordinal),
    FOREIGN KEY (case_number, seq) REFERENCES imr.items (case_number, seq) ON DELETE CASCADE
);
CREATE INDEX item_citations_family_idx ON imr.item_citations (source, family, title);

-- 0002's default privileges cover tables created by the role that ran 0002; granting explicitly
-- keeps the loader's DML right whoever runs this migration.
GRANT SELECT, INSERT, UPDATE, DELETE ON imr.item_citations TO imr_loader;
