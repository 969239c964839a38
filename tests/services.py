"""The real PostgreSQL and Redis of the machine, for the tests that need them.

Each test gets a database of its own (dropped afterwards) and a Redis key prefix of its own. A
test's database is empty (`template0`'s copy), or, for the `database` fixture, a copy of one this
test process migrated once: a server's start then finds its tables there, as on any start after
the first, instead of creating them for every test. Without the service a test skips and says
why; under `CI=true` it fails instead, because CI must run it (`.ci/run` starts both services)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_ENV = "AGENT_RUNTIME_TEST_POSTGRES"
REDIS_ENV = "AGENT_RUNTIME_TEST_REDIS"
DEFAULT_POSTGRES = "postgresql://127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
ROOT_CONFIG = Path(__file__).resolve().parents[1] / "langgraph.json"


def postgres_admin_uri() -> str:
    """Where test databases are created from: `AGENT_RUNTIME_TEST_POSTGRES`, else the local
    server's `test` database."""
    return os.environ.get(POSTGRES_ENV) or DEFAULT_POSTGRES


def redis_uri() -> str:
    """The Redis the tests use: `AGENT_RUNTIME_TEST_REDIS`, else the local server."""
    return os.environ.get(REDIS_ENV) or DEFAULT_REDIS


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in {"1", "true", "yes"}


def require_service(name: str, uri: str, env: str) -> None:
    """Skip (or under CI, fail) unless the service at `uri` accepts a TCP connection."""
    parts = urlsplit(uri)
    host, port = parts.hostname or "127.0.0.1", parts.port
    try:
        with socket.create_connection((host, port or 0), timeout=1.0):
            return
    except OSError as exc:
        reason = (
            f"{name} is not reachable at {host}:{port} ({exc}); start it, or point {env} "
            "at one, to run this test"
        )
    if in_ci():
        pytest.fail(f"{reason}. CI=true: this test must run (.ci/run starts {name})")
    pytest.skip(reason)


def require_postgres() -> str:
    uri = postgres_admin_uri()
    require_service("PostgreSQL", uri, POSTGRES_ENV)
    return uri


def require_redis() -> str:
    uri = redis_uri()
    require_service("Redis", uri, REDIS_ENV)
    return uri


_migrated: dict[str, str] = {}
"""The migrated template of each admin URI, made by this test process (`drop_templates`)."""


@asynccontextmanager
async def fresh_postgres_database(*, migrated: bool = False) -> AsyncIterator[str]:
    """A new database on the test server, dropped (with its connections) afterwards; yields
    its URI. Empty, or with `migrated` the tables every start creates already there."""
    import psycopg

    admin = require_postgres()
    template = await _migrated_template(admin) if migrated else "template0"
    name = f"agent_runtime_test_{uuid.uuid4().hex[:16]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
    try:
        yield _database_uri(admin, name)
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrated_template(admin: str) -> str:
    # The storage's own set-up (its migrations, LangGraph's saver and store tables) on the
    # repository's config, then closed: a template must have no connections when copied.
    import psycopg

    from agent_runtime.config import load_config
    from agent_runtime.storage.open import open_storage

    found = _migrated.get(admin)
    if found is not None:
        return found
    name = f"agent_runtime_test_template_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    _migrated[admin] = name
    config = load_config(ROOT_CONFIG, database=_database_uri(admin, name), environ={})
    storage = await open_storage(config)
    await storage.close()
    return name


def drop_templates() -> None:
    """Drop the templates this test process made (at the end of its session)."""
    import psycopg

    for admin, name in list(_migrated.items()):
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        del _migrated[admin]


def _database_uri(admin: str, name: str) -> str:
    return urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))


def redis_prefix() -> str:
    """A key and channel prefix no other test uses (Redis channels ignore the db number)."""
    return f"agent-runtime-test:{uuid.uuid4().hex[:12]}:"
