"""The real PostgreSQL and Redis of the machine, for the tests that need them.

Each test gets a database of its own (created from `template0`, dropped afterwards) and a Redis
key prefix of its own. Without the service a test skips and says why; under `CI=true` it fails
instead, because CI must run it (`.ci/run` starts both services)."""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from urllib.parse import urlsplit, urlunsplit

import pytest

POSTGRES_ENV = "AGENT_RUNTIME_TEST_POSTGRES"
REDIS_ENV = "AGENT_RUNTIME_TEST_REDIS"
DEFAULT_POSTGRES = "postgresql://127.0.0.1:5432/test"
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"


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


@asynccontextmanager
async def fresh_postgres_database() -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped (with its connections) afterwards;
    yields its URI."""
    import psycopg

    admin = require_postgres()
    name = f"agent_runtime_test_{uuid.uuid4().hex[:16]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    parts = urlsplit(admin)
    try:
        yield urlunsplit(parts._replace(path=f"/{name}"))
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_prefix() -> str:
    """A key and channel prefix no other test uses (Redis channels ignore the db number)."""
    return f"agent-runtime-test:{uuid.uuid4().hex[:12]}:"
