"""One SQLite file: connections, pragmas and transactions. The checkpointer and the
store open their own connections to the same file; WAL lets readers run beside the one writer."""

from __future__ import annotations

import asyncio
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, TypeVar

import aiosqlite

from agent_runtime.errors import StorageError
from agent_runtime.storage.sqlite.schema import migrate
from agent_runtime.storage.sqlite.values import ValuesCompressor, register_functions
from agent_runtime.storage.sqlite.writer import (
    GroupCommit,
    Synchronous,
    committed,
    committed_relaxed,
    one_trip,
    synchronous_pragma,
    write_once,
)

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
SETUP_LOCK_POLL_SECONDS = 0.05


MIN_SQLITE_VERSION = (3, 35, 0)
"""`RETURNING` and `ALTER TABLE ... DROP COLUMN`, which the runtime's statements and migrations use,
arrived in SQLite 3.35 (2021)."""


def require_sqlite_version(found: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Fail with a sentence, before anything is written, where Python's SQLite is too old."""
    if found < MIN_SQLITE_VERSION:
        need = ".".join(map(str, MIN_SQLITE_VERSION))
        have = ".".join(map(str, found))
        raise StorageError(
            f"agent-runtime needs SQLite {need} or newer; this Python uses SQLite {have}. "
            "Use a Python built against a newer libsqlite3 (python.org's builds and those of "
            "current Linux distributions are)."
        )


class SqliteDatabase:
    """Two connections to the file: the one writer (serialised by a lock, and shared with the
    checkpointer so the file never has two writers racing for its lock) and one reader."""

    def __init__(self, path: Path, *, synchronous: Synchronous = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.group_commit: GroupCommit | None = None
        """How the writer's durable one-trip commits reach the disk under `synchronous=full`
        (None under `normal`, where no commit waits for it)."""
        self.values = ValuesCompressor()
        """Encodes threads' values for `thread_values`; used on the writer's thread alone."""

    async def open(self) -> None:
        """Open the file, creating it if needed, and bring its tables up to date.

        Raises:
            StorageError: the file cannot be opened, is not a database, or cannot be migrated;
                it is left as it was, and nothing stays open.
        """
        require_sqlite_version()
        if self.path.is_dir():
            raise StorageError(
                f"Cannot open the database {self.path}: it is a folder; pass a file path "
                "(--database or AGENT_RUNTIME_DATABASE)"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # WAL comes after the migrations: switching to it rewrites the file's header, and a
            # file they refuse (not ours, or from a newer release) must stay as it was.
            self._writer = await connect(
                self.path, autocommit=False, wal=False, synchronous=self.synchronous
            )
            await migrate(self._writer)
            # Fetched, so the statement is done and holds no lock when the reader connects.
            await self._writer.execute_fetchall("PRAGMA journal_mode=WAL")
            self._reader = await connect(self.path, synchronous=self.synchronous)
            if self.synchronous == "full":
                self.group_commit = GroupCommit(self._writer, self.path)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, StorageError):
                raise StorageError(f"Cannot open the database {self.path}: {exc.detail}") from exc
            if isinstance(exc, OSError | sqlite3.Error):
                raise StorageError(f"Cannot open the database {self.path}: {exc}") from exc
            raise

    @property
    def writer(self) -> aiosqlite.Connection:
        return self._require(self._writer)

    def share_lock(self, lock: asyncio.Lock) -> None:
        """Serialise our writes with another user of the writer connection (the checkpointer)."""
        self._write_lock = lock

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None
        if self.group_commit is not None:
            self.group_commit.close()
            self.group_commit = None

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

    async def write(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """`work` in a write transaction (BEGIN IMMEDIATE, then COMMIT, or ROLLBACK if it
        raised), the whole of it one trip to the writer's thread (`on_thread`).

        Args:
            durable: as for `write_returning`.
        """

        def run(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            return work(db)

        return await self._on_writer(run, durable)

    async def write_returning(
        self, sql: str, params: tuple[Any, ...] | list[Any] = (), *, durable: bool = True
    ) -> list[Any]:
        """One writing statement with RETURNING, atomic on its own (no explicit BEGIN), and
        its commit: one trip.

        Args:
            durable: False for a write whose loss in a power cut is harmless (a claim, which
                recovery undoes anyway): its commit does not wait for the disk even under
                `synchronous=FULL`. The next durable commit syncs it with its own (the WAL
                is synced in order), so it is lost only if everything after it is too.
        """

        def run(db: sqlite3.Connection) -> list[Any]:
            return db.execute(sql, params).fetchall()

        return await self._on_writer(run, durable)

    async def _on_writer(self, work: Callable[[sqlite3.Connection], T], durable: bool) -> T:
        # `work` leaves its transaction open: committed here, as durably as asked.
        conn = self._require(self._writer)
        if durable:
            return await write_once(self._write_lock, conn, work, self.group_commit)
        # Under `normal` every commit is relaxed already.
        commit = committed_relaxed if self.synchronous == "full" else committed
        return await one_trip(self._write_lock, conn, lambda db: commit(db, work))

    async def fetch_all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        return await fetch_rows(self._require(self._reader), sql, params)

    async def fetch_one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return await fetch_row(self._require(self._reader), sql, params)

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StorageError("The database is not open")
        return conn


async def fetch_rows(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] | list[Any] = ()
) -> list[Any]:
    """Every row of a statement in one trip to the connection's thread (a cursor would take
    three: execute, fetch, close)."""
    return list(await conn.execute_fetchall(sql, params))


async def fetch_row(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] | list[Any] = ()
) -> Any:
    """The first row of a statement, or None, in one trip."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def connect(
    path: Path, *, autocommit: bool = True, wal: bool = True, synchronous: Synchronous = "full"
) -> aiosqlite.Connection:
    """A connection with the pragmas every connection to the file needs. The writer is not in
    autocommit mode: the checkpointer that shares it groups its statements and commits.

    Closed again if a pragma fails (a file that is not a database fails the first one that
    reads it): its thread would otherwise keep the process alive."""
    conn = await aiosqlite.connect(path, isolation_level=None if autocommit else "DEFERRED")
    try:
        conn.row_factory = aiosqlite.Row
        if wal:
            await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute(synchronous_pragma(synchronous))
        await conn.execute("PRAGMA foreign_keys=ON")
        await register_functions(conn)
    except BaseException:
        await conn.close()
        raise
    return conn


@asynccontextmanager
async def setup_lock(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on the database file (created if missing) while setting it up, so
    processes starting together set it up one at a time. A lock of its own kind (`flock`),
    which SQLite's locks ignore; where there is none (Windows), or the path is not a file that
    can be opened, nothing is held and opening the database reports the problem."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        # Polled, not blocking: another process may hold it for the seconds its set-up takes,
        # and a thread to wait in would outlive the set-up.
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(SETUP_LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # releases the lock
