"""One SQLite file: connections, pragmas and transactions. The checkpointer and the
store open their own connections to the same file; WAL lets readers run beside the one writer."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiosqlite

from agent_runtime.errors import StorageError
from agent_runtime.storage.sqlite_schema import migrate

BUSY_TIMEOUT_MS = 10_000


class SqliteDatabase:
    """Our two connections to the file: one writer (serialised by a lock) and one reader."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()

    async def open(self) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = await connect(self.path)
            await migrate(self._writer)
            self._reader = await connect(self.path)
        except (OSError, sqlite3.Error) as exc:
            raise StorageError(f"Cannot open the database {self.path}: {exc}") from exc

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes the file's write lock up front."""
        conn = self._require(self._writer)
        async with self._write_lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()

    async def fetch_all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        conn = self._require(self._reader)
        async with conn.execute(sql, params) as cursor:
            return list(await cursor.fetchall())

    async def fetch_one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        conn = self._require(self._reader)
        async with conn.execute(sql, params) as cursor:
            return await cursor.fetchone()

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StorageError("The database is not open")
        return conn


async def connect(path: Path) -> aiosqlite.Connection:
    """A connection in autocommit mode with the pragmas every connection to the file needs."""
    conn = await aiosqlite.connect(path, isolation_level=None)
    conn.row_factory = aiosqlite.Row
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA foreign_keys=ON")
    return conn
