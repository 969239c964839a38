"""One PostgreSQL database behind a psycopg connection pool: transactions, reads, and turning
the driver's failures into `StorageError`s whose messages never show a password.

psycopg and psycopg-pool are imported by `PostgresStorage` only (they are the `postgres` extra),
so a SQLite-only install never needs them.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from typing import Any

import orjson
import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb, set_json_loads
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from agent_runtime.config import redact_uri
from agent_runtime.encoding import dumps_text
from agent_runtime.errors import InvalidRequestError, StorageError

logger = logging.getLogger(__name__)

Conn = AsyncConnection[DictRow]
CONNECT_TIMEOUT_SECONDS = 10
"""How long opening one connection may take (libpq's `connect_timeout`)."""
POOL_TIMEOUT_SECONDS = 30.0
"""How long a request waits for a free connection before it is answered 503."""

# Strings Postgres cannot hold (a NUL character) are the caller's input, not a failing database.
_BAD_INPUT = (psycopg.errors.UntranslatableCharacter, psycopg.errors.CharacterNotInRepertoire)


PREPARE_THRESHOLD = 5
"""Runs of one statement on a connection before psycopg prepares it (psycopg's default)."""


def connection_kwargs(*, prepared: bool = False) -> dict[str, Any]:
    """What every connection of ours and of LangGraph's savers needs: autocommit (they open
    their transactions explicitly), rows as dicts, UTC for every timestamp read back, and
    server-side prepared statements only where `prepared` (the pool, unless a pooler in front
    cannot keep them; a connection of its own, for migrations, runs each statement once)."""
    return {
        "autocommit": True,
        "prepare_threshold": PREPARE_THRESHOLD if prepared else None,
        "row_factory": dict_row,
        "options": "-c TimeZone=UTC",
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
    }


class PostgresDatabase:
    """The pool of one process: `min_size` 1 kept open, at most `pool_size`."""

    def __init__(
        self,
        uri: str,
        *,
        pool_size: int,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
        prepared_statements: bool = True,
    ) -> None:
        self.uri = uri
        self.shown = redact_uri(uri)
        self.pool_size = pool_size
        self.pool_timeout = pool_timeout
        self.prepared_statements = prepared_statements
        self._pool: AsyncConnectionPool[Conn] | None = None

    async def open(self) -> None:
        """Connect once directly (so a wrong host, password or database name fails now, with
        the server's own reason), then open the pool.

        Raises:
            StorageError: the server cannot be reached or refuses us.
        """
        probe = await self.connect()
        await probe.close()
        pool: AsyncConnectionPool[Conn] = AsyncConnectionPool(
            self.uri,
            min_size=1,
            max_size=self.pool_size,
            kwargs=connection_kwargs(prepared=self.prepared_statements),
            configure=_configure,
            timeout=self.pool_timeout,
            open=False,
            name="agent-runtime",
        )
        try:
            await pool.open(wait=True, timeout=CONNECT_TIMEOUT_SECONDS)
        except (PoolTimeout, psycopg.Error) as exc:
            await pool.close()
            raise StorageError(
                f"Cannot open connections to the database {self.shown}: {describe(exc, self.uri)}"
            ) from None
        self._pool = pool

    async def connect(self) -> Conn:
        """A connection of its own, outside the pool; the caller closes it.

        Raises:
            StorageError: the server cannot be reached or refuses us.
        """
        try:
            return await AsyncConnection.connect(self.uri, **connection_kwargs())
        except psycopg.Error as exc:
            raise StorageError(
                f"Cannot connect to the database {self.shown}: {describe(exc, self.uri)}"
            ) from None

    @property
    def pool(self) -> AsyncConnectionPool[Conn]:
        if self._pool is None:
            raise StorageError("The database is not open")
        return self._pool

    async def close(self) -> None:
        if self._pool is not None:
            await self._pool.close()
            self._pool = None

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Conn]:
        """A connection of the pool, outside any transaction.

        Raises:
            StorageError: no connection came free in time, or the database failed.
        """
        pool = self.pool
        with self.translated():
            async with pool.connection() as conn:
                yield conn

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[Conn]:
        """A transaction on a connection of the pool, committed when the block ends."""
        async with self.connection() as conn, conn.transaction():
            yield conn

    async def fetch_all(self, sql: str, params: Sequence[Any] = ()) -> list[DictRow]:
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchall()

    async def fetch_one(self, sql: str, params: Sequence[Any] = ()) -> DictRow | None:
        async with self.connection() as conn:
            cursor = await conn.execute(sql, params)
            return await cursor.fetchone()

    async def write_returning(self, sql: str, params: Sequence[Any] = ()) -> list[DictRow]:
        """One writing statement with RETURNING, atomic on its own."""
        return await self.fetch_all(sql, params)

    def translated(self) -> _Translated:
        """A context that turns the driver's failures into our errors."""
        return _Translated(self)


class _Translated:
    def __init__(self, database: PostgresDatabase) -> None:
        self._database = database

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any
    ) -> None:
        if exc is None:
            return
        raise_translated(exc, self._database)


def raise_translated(exc: BaseException, database: PostgresDatabase) -> None:
    """Raise our error for a driver failure; return (so the caller re-raises) for anything
    else."""
    # psycopg refuses some text before sending it (a NUL character): a DataError of its own,
    # with no SQLSTATE since the server never saw it.
    if isinstance(exc, _BAD_INPUT) or (isinstance(exc, psycopg.DataError) and exc.sqlstate is None):
        raise InvalidRequestError(
            f"The database cannot take this text: {_first_line(exc)}", code="invalid_text"
        ) from None
    if isinstance(exc, PoolTimeout):
        raise StorageError(
            f"The database is busy: all {database.pool_size} connections of this process stayed "
            f"in use for {database.pool_timeout:g} s; retry, or raise agent_runtime."
            "postgres_pool_size"
        ) from None
    if isinstance(exc, psycopg.OperationalError | psycopg.errors.AdminShutdown):
        logger.warning("database %s failed: %s", database.shown, describe(exc, database.uri))
        raise StorageError(
            f"The database {database.shown} cannot be reached: {describe(exc, database.uri)}"
        ) from None


def describe(exc: BaseException, uri: str) -> str:
    """The driver's message on one line, with the URI (and its password) never repeated."""
    text = _first_line(exc) or type(exc).__name__
    return text.replace(uri, redact_uri(uri))


def _first_line(exc: BaseException) -> str:
    # libpq's messages span lines (the reason, then a hint); a log line or an answer takes one.
    return " ".join(line.strip() for line in str(exc).splitlines() if line.strip())


async def _configure(conn: Conn) -> None:
    # JSON columns come back through orjson, as everything else we decode does.
    set_json_loads(orjson.loads, conn)


def jsonb(value: Any) -> Jsonb:
    """A value for a JSONB parameter, encoded as everything else we store is."""
    return Jsonb(value, dumps=dumps_text)
