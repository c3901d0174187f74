"""The parse stage: PDF bytes -> positioned text lines (`pdftext`) -> a `Letter` record
(`letter_parser`), bounded by `limits` and run in killable worker processes (`workers`).

Imports nothing from the later stages (enrich, validate, warehouse, read)."""
