"""Storage on PostgreSQL: our tables, LangGraph's checkpoints and its store in one database,
over one psycopg connection pool per process. Any number of processes may share the database."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable, Mapping
from typing import Any

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from agent_runtime.background import stop_tasks
from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config.model import DEFAULT_POOL_SIZE, CheckpointCacheConfig, SerdeConfig
from agent_runtime.errors import StorageError
from agent_runtime.storage.checkpoint_cache import make_serializer
from agent_runtime.storage.postgres.assistants import PostgresAssistants
from agent_runtime.storage.postgres.crons import PostgresCrons
from agent_runtime.storage.postgres.database import POOL_TIMEOUT_SECONDS, PostgresDatabase
from agent_runtime.storage.postgres.idle_finish import IdleStarts
from agent_runtime.storage.postgres.retention import PostgresRetention
from agent_runtime.storage.postgres.runs import PostgresRuns
from agent_runtime.storage.postgres.saver import RuntimePostgresSaver
from agent_runtime.storage.postgres.schema import migrate
from agent_runtime.storage.postgres.stats import PostgresStats
from agent_runtime.storage.postgres.store import RuntimePostgresStore, has_pgvector
from agent_runtime.storage.postgres.threads import PostgresThreads
from agent_runtime.storage.postgres.tool_calls import PostgresToolCalls
from agent_runtime.storage.serde import StrictSerializer, TypeKey
from agent_runtime.storage.store_index import load_store_index


class PostgresStorage(
    PostgresAssistants,
    PostgresCrons,
    PostgresThreads,
    PostgresRuns,
    PostgresToolCalls,
    PostgresRetention,
    PostgresStats,
):
    """Storage on a Postgres database; see `storage.base.Storage` for the contract."""

    def __init__(
        self,
        uri: str,
        *,
        pool_size: int = DEFAULT_POOL_SIZE,
        pool_timeout: float = POOL_TIMEOUT_SECONDS,
        prepared_statements: bool = True,
        store_config: Mapping[str, Any] | None = None,
        checkpoint_cache: CheckpointCacheConfig | None = None,
        serde: SerdeConfig | None = None,
        graph_types: Iterable[TypeKey] = (),
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        """Nothing is opened until `setup`.

        Args:
            uri: a `postgresql://` URI (shown in messages with its password hidden).
            pool_size: the most connections this process opens.
            pool_timeout: how long a statement waits for a free connection (then 503).
            prepared_statements: `DatabaseConfig.prepared_statements`.
        """
        self._serde: StrictSerializer = make_serializer(
            checkpoint_cache or CheckpointCacheConfig(), serde or SerdeConfig(), graph_types
        )
        self._db = PostgresDatabase(
            uri,
            pool_size=pool_size,
            pool_timeout=pool_timeout,
            prepared_statements=prepared_statements,
        )
        self._now = clock.now
        self._idle_starts = IdleStarts()
        self._store_config = dict(store_config or {})
        self._saver: RuntimePostgresSaver | None = None
        self._store: RuntimePostgresStore | None = None

    @property
    def database(self) -> PostgresDatabase:
        return self._db

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]:
        if self._saver is None:
            raise StorageError("The storage is not set up")
        return self._saver

    @property
    def read_checkpointer(self) -> BaseCheckpointSaver[str]:
        # On a pool, reads take connections of their own: they never hold up a run's writes.
        return self.checkpointer

    @property
    def store(self) -> BaseStore:
        if self._store is None:
            raise StorageError("The storage is not set up")
        return self._store

    async def setup(self) -> None:
        if self._saver is not None:
            return
        # Resolved before connecting: an index that cannot be built (its embeddings package
        # missing, say) must fail start-up with the database untouched.
        index = load_store_index(self._store_config.get("index"))
        await self._db.open()
        try:
            saver = RuntimePostgresSaver(self._db, serde=self._serde)
            # The migration lock is held on a connection outside the pool: LangGraph's set-ups
            # run under it on connections of the pool, which may hold only one.
            async with await self._db.connect() as conn:
                vector = index is not None and await has_pgvector(conn)
                store = RuntimePostgresStore(
                    self._db, index=index, ttl=self._store_config.get("ttl"), vector=vector
                )

                async def upstream_setup() -> None:
                    await saver.setup()
                    await store.setup()

                with self._db.translated():
                    await migrate(conn, now=self._now, then=upstream_setup)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, StorageError):
                raise StorageError(
                    f"Cannot set up the database {self._db.shown}: {exc.detail}"
                ) from None
            raise
        self._saver = saver
        self._store = store

    async def close(self) -> None:
        await _stop_batching(self._store)
        self._saver = None
        self._store = None
        await self._db.close()


async def _stop_batching(store: BaseStore | None) -> None:
    # LangGraph's async stores batch operations on a task of their own, cancelled only when the
    # store is garbage collected; an event loop closing first reports it destroyed while pending.
    task = getattr(store, "_task", None)
    if isinstance(task, asyncio.Task) and not task.done():
        await stop_tasks(task)
