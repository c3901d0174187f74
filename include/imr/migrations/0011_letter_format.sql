-- Record contract v3 (docs/letter-record.md): which of the three letter layouts a record was read
-- from, so analysts can tell the first 2013 notices ("Notice of Independent Medical Review
-- Determination", whose per-item guidelines and rationale may be null) from the later letters.
-- Numbered 0011: 0008-0010 belong to changes developed alongside this one.
--
-- NULL on rows loaded by a parser older than 1.2.0 (the format was not recorded); `imr_backfill`
-- with reparse re-loads them with it. No index: the column has three values and is read by
-- filters on views that already scan letters.
ALTER TABLE imr.letters
    ADD COLUMN letter_format TEXT CHECK (letter_format IN ('notice_2013', 'seed_2013', 'final_2016'));
