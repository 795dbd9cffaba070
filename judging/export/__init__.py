"""Verdict datasets: JSONL (one record per verdict with its debate's full transcript), tidy CSV tables
and Parquet, with a datasheet.

PostgreSQL builds every record itself (json_build_object) and sends it through COPY ... TO STDOUT,
so an export costs little more than PostgreSQL's own COPY and runs in constant memory: Python
only passes each row on. On other databases (the embedded SQLite default) python_records builds
the same records more slowly; the CSV tables need PostgreSQL.

Identities: judges, debaters, turn authors and debate creators appear as pseudonyms, an
HMAC-SHA256 of their user id under a random key made for this export (and then forgotten), unless
the caller may and does ask for usernames. The same person has the same pseudonym throughout one
export and different pseudonyms in different exports. Hidden material (the passage, the image,
debaters' private notes) is left out unless asked for; its fields are then null.

The modules, each importing only those above it:
- options: what an export is asked for (ExportOptions) and what it writes (file names, formats);
- fields: the record's schema (Field, RECORD_FIELDS) and fitting stored JSON to it;
- sql: the SQL that builds records and CSV tables in PostgreSQL;
- records: the records as lines (COPY, or Python elsewhere), the CSV tables, the versions;
- datasheet: the DATASHEET.md written with every export;
- files: the bundle of files in a format, Parquet, and streaming them as one zip.
The names below are what the pages, the API, the commands, the bench and the tests use.
"""

from .fields import QUOTE_FIELDS, RECORD_FIELDS, arrow_schema, quotes_of, record_json_schema, undeclared
from .files import bundle, chunked, write_parquet, zip_stream
from .options import (
    CSV_TABLES,
    DATASHEET_NAME,
    FORMATS,
    JSONL_NAME,
    PARQUET_NAME,
    VERSIONS_NAME,
    ExportError,
    ExportOptions,
    check_postgresql,
    experiments_of,
    pseudonym,
    verdict_queryset,
)
from .records import csv_lines, jsonl_lines, python_records, records, version_lines

__all__ = [
    "CSV_TABLES",
    "DATASHEET_NAME",
    "FORMATS",
    "JSONL_NAME",
    "PARQUET_NAME",
    "QUOTE_FIELDS",
    "RECORD_FIELDS",
    "VERSIONS_NAME",
    "ExportError",
    "ExportOptions",
    "arrow_schema",
    "bundle",
    "check_postgresql",
    "chunked",
    "csv_lines",
    "experiments_of",
    "jsonl_lines",
    "pseudonym",
    "python_records",
    "quotes_of",
    "record_json_schema",
    "records",
    "undeclared",
    "verdict_queryset",
    "version_lines",
    "write_parquet",
    "zip_stream",
]
