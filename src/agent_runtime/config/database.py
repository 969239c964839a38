"""Which database a config names: a SQLite file or a PostgreSQL URI, from the `--database` flag,
the environment or langgraph.json, and how to show a URI without its password."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from agent_runtime.config.model import DEFAULT_POOL_SIZE, DatabaseConfig
from agent_runtime.errors import ConfigError

DATABASE_ENV = "AGENT_RUNTIME_DATABASE"
"""Names the database (a SQLite file or a `postgresql://` URI); the `--database` flag beats it,
and it beats `DATABASE_URI` and `agent_runtime.database`."""
DATABASE_URI_ENV = "DATABASE_URI"
"""The variable LangGraph Platform sets: a Postgres URI. Beaten by the flag and by
`AGENT_RUNTIME_DATABASE`; beats `agent_runtime.database`."""
POOL_SIZE_ENV = "AGENT_RUNTIME_POOL_SIZE"
"""Postgres connections each process may open; beats `agent_runtime.postgres_pool_size`."""
PREPARED_STATEMENTS_ENV = "AGENT_RUNTIME_POSTGRES_PREPARED_STATEMENTS"
"""`true` or `false`; beats `agent_runtime.postgres_prepared_statements`."""
POSTGRES_SCHEMES = ("postgres://", "postgresql://")


def is_postgres_uri(value: str) -> bool:
    return value.strip().lower().startswith(POSTGRES_SCHEMES)


def redact_uri(uri: str) -> str:
    """The URI (a database's or Redis's) with its password, and any `password=` query
    parameter, replaced by `***`, for logs and messages. A path comes back unchanged, anything
    unparsable as `***`."""
    if "://" not in uri:
        return uri
    try:
        parts = urlsplit(uri.strip())
        netloc = parts.netloc
        if "@" in netloc:
            credentials, _, host = netloc.rpartition("@")
            user, colon, _ = credentials.partition(":")
            netloc = f"{user}:***@{host}" if colon else f"{user}@{host}"
        query = "&".join(
            f"{key}=***" if key.lower() == "password" else f"{key}{sep}{value}"
            for key, sep, value in (pair.partition("=") for pair in parts.query.split("&"))
            if key or sep
        )
        return urlunsplit(parts._replace(netloc=netloc, query=query))
    except ValueError:
        return "***"


def resolve_database(
    flag: str | Path | None,
    environ: Mapping[str, str],
    from_file: str | None,
    base_dir: Path,
    pool_size: int | None = None,
    prepared_statements: bool | None = None,
) -> DatabaseConfig:
    """The database the flag, the environment or the file names, in that order of precedence:
    `--database` > `AGENT_RUNTIME_DATABASE` > `DATABASE_URI` > `agent_runtime.database` > the
    SQLite file `.agent-runtime/runtime.sqlite` beside the config.

    Raises:
        ConfigError: `DATABASE_URI` is not a Postgres URI, the pool size is not a positive
            integer, or the prepared-statements switch is not true or false; the message
            names the variable.
    """
    # The flag and the variables are typed in a shell, so they mean what they mean there:
    # relative to the working directory. The file's value travels with the project: relative
    # to its folder.
    if flag is not None and str(flag):
        source, value, start = "--database", str(flag), Path.cwd()
    elif environ.get(DATABASE_ENV):
        source, value, start = DATABASE_ENV, environ[DATABASE_ENV], Path.cwd()
    elif environ.get(DATABASE_URI_ENV):
        source, value, start = DATABASE_URI_ENV, environ[DATABASE_URI_ENV], Path.cwd()
    elif from_file is not None:
        source, value, start = "agent_runtime.database", from_file, base_dir
    else:
        return DatabaseConfig(
            kind="sqlite", uri=str(base_dir / ".agent-runtime" / "runtime.sqlite")
        )
    if is_postgres_uri(value):
        return DatabaseConfig(
            kind="postgres",
            uri=value.strip(),
            pool_size=_pool_size(environ, pool_size),
            prepared_statements=_prepared(environ, prepared_statements),
        )
    if source == DATABASE_URI_ENV:
        # The value is not repeated: it may hold a password.
        raise ConfigError(
            f"{DATABASE_URI_ENV}: expected a postgresql:// URI; name a SQLite file with "
            f"--database or {DATABASE_ENV} instead"
        )
    return DatabaseConfig(kind="sqlite", uri=str((start / Path(value).expanduser()).resolve()))


def _prepared(environ: Mapping[str, str], from_file: bool | None) -> bool:
    given = environ.get(PREPARED_STATEMENTS_ENV, "")
    text = given.strip().lower()
    if not text:
        return True if from_file is None else from_file
    if text not in ("true", "false", "1", "0"):
        raise ConfigError(f'{PREPARED_STATEMENTS_ENV}: expected true or false, got "{given}"')
    return text in ("true", "1")


def _pool_size(environ: Mapping[str, str], from_file: int | None) -> int:
    text = environ.get(POOL_SIZE_ENV, "").strip()
    if not text:
        return from_file or DEFAULT_POOL_SIZE
    if not text.isdigit() or int(text) <= 0:
        raise ConfigError(f'{POOL_SIZE_ENV}: expected a positive integer, got "{text}"')
    return int(text)
