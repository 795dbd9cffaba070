"""The benchmarks' own PostgreSQL database: made on first use, so a benchmark needs only a running
server and a DATABASE_URL naming a database that may not exist yet."""

import os
import sys
from urllib.parse import unquote, urlsplit


def ensure_database() -> None:
    """Creates the database DATABASE_URL names when the server has none by that name; stops with
    a clear message when the server cannot be reached."""
    url = os.environ.get("DATABASE_URL", "")
    if not url.startswith("postgres"):
        return
    import psycopg
    from psycopg import sql

    parts = urlsplit(url)
    name = unquote(parts.path.lstrip("/"))
    server = parts._replace(path="/postgres").geturl()
    try:
        with psycopg.connect(server, autocommit=True, connect_timeout=10) as connection:
            if connection.execute("SELECT 1 FROM pg_database WHERE datname = %s", [name]).fetchone() is None:
                connection.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
                print(f"created the database {name}", file=sys.stderr)
    except psycopg.OperationalError as error:
        sys.exit(
            f"Cannot reach PostgreSQL at {parts.hostname}:{parts.port or 5432} ({error}). "
            "Start it (make services) and try again."
        )
