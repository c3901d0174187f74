"""IMR Final Determination letter ingestion: parsing, validation and warehouse loading.

This package imports nothing from Airflow so that it can be unit-tested and used from the CLI.
"""

# Bumped whenever a change to the parser can change a record; `imr_backfill` with
# `reparse=True` re-parses letters loaded by an older version. 1.1.0: enriched item fields
# (category, subcategory, evidence, citations) stored by migration 0004. 1.2.0: the first 2013
# notice format, and `letter_format` on every record (contract v3, migration 0011).
PARSER_VERSION = "1.2.0"
