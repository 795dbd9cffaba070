"""Spreadsheet formula injection: a CSV cell such as `=HYPERLINK("http://evil", "click")` that a
researcher opens in Excel, LibreOffice or Google Sheets runs as a formula. Text cells that start
with =, @, a tab or a carriage return, or with + or - without being a number, get a leading
apostrophe, which spreadsheets show as text. Numbers (a negative score) stay as they are.
Pure module (no Django); judging/export/sql.py applies the same rule in SQL (SQL_PATTERN)."""

import re

_NUMBER = re.compile(r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?")
_RISKY = ("=", "@", "\t", "\r", "+", "-")
# PostgreSQL regular expressions for the same rule.
SQL_RISKY = r"^[=@\t\r+-]"
SQL_NUMBER = r"^[+-]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][+-]?[0-9]+)?$"


def safe_cell(value):
    """The value as a spreadsheet will show it as text (non-strings unchanged)."""
    if isinstance(value, str) and value.startswith(_RISKY) and not _NUMBER.fullmatch(value):
        return "'" + value
    return value


def safe_cell_sql(expression: str) -> str:
    """SQL for a text expression neutralised the same way."""
    return (
        f"CASE WHEN {expression} ~ '{SQL_RISKY}' AND {expression} !~ '{SQL_NUMBER}' "
        f"THEN '''' || {expression} ELSE {expression} END"
    )
