"""The default storage: one SQLite file holding our tables, LangGraph's checkpoints and its
store. Zero setup; a single machine."""

from __future__ import annotations

import asyncio
import sqlite3
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import aiosqlite
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from agent_runtime.background import stop_tasks
from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config.model import CheckpointCacheConfig, SerdeConfig
from agent_runtime.errors import StorageError
from agent_runtime.storage.checkpoint_cache import make_serializer
from agent_runtime.storage.serde import StrictSerializer, TypeKey
from agent_runtime.storage.sqlite.assistants import SqliteAssistants
from agent_runtime.storage.sqlite.checkpoint_tables import SqliteCheckpoints
from agent_runtime.storage.sqlite.crons import SqliteCrons
from agent_runtime.storage.sqlite.database import BUSY_TIMEOUT_MS, SqliteDatabase, setup_lock
from agent_runtime.storage.sqlite.retention import SqliteRetention
from agent_runtime.storage.sqlite.runs import SqliteRuns
from agent_runtime.storage.sqlite.saver import RuntimeSqliteSaver
from agent_runtime.storage.sqlite.stats import SqliteStats
from agent_runtime.storage.sqlite.store import RuntimeSqliteStore
from agent_runtime.storage.sqlite.threads import SqliteThreads
from agent_runtime.storage.sqlite.tool_calls import SqliteToolCalls
from agent_runtime.storage.sqlite.writer import Synchronous, synchronous_pragma
from agent_runtime.storage.store_index import load_store_index


class SqliteStorage(
    SqliteAssistants,
    SqliteCrons,
    SqliteThreads,
    SqliteCheckpoints,
    SqliteRuns,
    SqliteToolCalls,
    SqliteRetention,
    SqliteStats,
):
    """Storage on one SQLite file; see `storage.base.Storage` for the contract."""

    def __init__(
        self,
        path: Path,
        *,
        store_config: Mapping[str, Any] | None = None,
        checkpoint_cache: CheckpointCacheConfig | None = None,
        serde: SerdeConfig | None = None,
        graph_types: Iterable[TypeKey] = (),
        clock: Clock = SYSTEM_CLOCK,
        synchronous: Synchronous = "full",
    ) -> None:
        """Nothing is opened until `setup`.

        Args:
            synchronous: how commits reach the disk (`writer.Synchronous`).
            serde: what langgraph.json adds to the types checkpoints may decode to.
            graph_types: the types the served graphs declare (`storage.serde.graph_types`).
        """
        self.path = path
        self._serde: StrictSerializer = make_serializer(
            checkpoint_cache or CheckpointCacheConfig(), serde or SerdeConfig(), graph_types
        )
        self._db = SqliteDatabase(path, synchronous=synchronous)
        self._now = clock.now
        self._store_config = dict(store_config or {})
        self._saver: RuntimeSqliteSaver | None = None
        self._reader: RuntimeSqliteSaver | None = None
        self._store: RuntimeSqliteStore | None = None
        self._extra: list[aiosqlite.Connection] = []

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        if self._saver is None:
            raise StorageError("The storage is not set up")
        return self._saver

    @property
    def read_checkpointer(self) -> BaseCheckpointSaver[str]:
        if self._reader is None:
            raise StorageError("The storage is not set up")
        return self._reader

    @property
    def store(self) -> BaseStore:
        if self._store is None:
            raise StorageError("The storage is not set up")
        return self._store

    async def setup(self) -> None:
        if self._saver is not None:
            return
        # Made before the file is opened, on a connection not yet connected: the store resolves
        # `index.embed` as it is made, and an index that cannot be built (its embeddings package
        # missing, say) must fail start-up with the database untouched.
        store_conn = _plain_connection(self.path, autocommit=True)
        self._store = _make_store(store_conn, self._store_config)
        try:
            # LangGraph's checkpointer and store migrate with a read then a write, which two
            # processes setting up one new file at once (`serve --workers N`) would interleave.
            async with setup_lock(self.path):
                await self._open(store_conn)
        except BaseException as exc:
            # Whatever failed, nothing stays open: a connection's thread would keep the
            # process alive with nothing listening.
            await self.close()
            if isinstance(exc, OSError | sqlite3.Error):
                raise StorageError(f"Cannot set up the database {self.path}: {exc}") from exc
            raise

    async def _open(self, store_conn: aiosqlite.Connection) -> None:
        assert self._store is not None
        await self._db.open()
        # One writer for the whole file: the checkpointer writes on our writer connection,
        # under one lock, so its writes and ours never wait on SQLite's file lock.
        self._saver = RuntimeSqliteSaver(self._db.writer, serde=self._serde)
        self._saver.group_commit = self._db.group_commit
        self._db.share_lock(self._saver.lock)
        await self._saver.setup()
        # A second saver on its own connection for reads: upstream's alist holds the
        # saver's lock while the caller consumes it, which would stall a live run's writes.
        reader_conn = await _connect_plain(self.path)
        self._extra.append(reader_conn)
        self._reader = RuntimeSqliteSaver(reader_conn, serde=self._serde)
        await self._reader.setup()
        self._extra.append(await _start(store_conn, synchronous=self._db.synchronous))
        await self._store.setup()

    async def close(self) -> None:
        await _stop_batching(self._store)
        for conn in self._extra:
            await conn.close()
        self._extra.clear()
        self._saver = None
        self._reader = None
        self._store = None
        await self._db.close()


async def _connect_plain(
    path: Path, *, autocommit: bool = False, synchronous: Synchronous = "full"
) -> aiosqlite.Connection:
    return await _start(_plain_connection(path, autocommit=autocommit), synchronous=synchronous)


def _plain_connection(path: Path, *, autocommit: bool) -> aiosqlite.Connection:
    # The saver manages its own commits and reads rows as tuples, so it gets no row factory.
    # Not connected until `_start` awaits it.
    return aiosqlite.connect(path, isolation_level=None if autocommit else "DEFERRED")


async def _start(
    conn: aiosqlite.Connection, *, synchronous: Synchronous = "full"
) -> aiosqlite.Connection:
    await conn
    try:
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute("PRAGMA journal_mode=WAL")
        # The store writes on its connection: it commits as durably as ours.
        await conn.execute(synchronous_pragma(synchronous))
    except BaseException:
        await conn.close()
        raise
    return conn


async def _stop_batching(store: BaseStore | None) -> None:
    # LangGraph's async stores batch operations on a task of their own, cancelled only when the
    # store is garbage collected; an event loop closing first reports it destroyed while pending.
    task = getattr(store, "_task", None)
    if isinstance(task, asyncio.Task) and not task.done():
        await stop_tasks(task)


def _make_store(conn: aiosqlite.Connection, config: Mapping[str, Any]) -> RuntimeSqliteStore:
    index = load_store_index(config.get("index"))
    return RuntimeSqliteStore(conn, index=index, ttl=config.get("ttl"))
