"""Reading JSON Lines: one JSON value a line, blank lines skipped, lines numbered from 1 as an
editor shows them. Pure module."""

import json


def json_lines(lines):
    """Yields (line number, value, problem) for each non-blank line; when the line is not JSON,
    value is None and problem says why."""
    for number, line in enumerate(lines, start=1):
        if isinstance(line, bytes):
            line = line.decode("utf-8")
        if not line.strip():
            continue
        try:
            value, problem = json.loads(line), None
        except json.JSONDecodeError as error:
            value, problem = None, f"not valid JSON ({error.msg})"
        yield number, value, problem
