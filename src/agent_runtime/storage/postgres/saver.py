"""LangGraph's `AsyncPostgresSaver` on our pool, decoding through our strict serializer, its
undecodable blobs raising `CheckpointDecodeError` and its database failures `StorageError`."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row

from agent_runtime.storage.postgres.database import PostgresDatabase
from agent_runtime.storage.serde import GuardedDecoding


class RuntimePostgresSaver(GuardedDecoding, AsyncPostgresSaver):
    """`AsyncPostgresSaver` sharing the storage's pool. Upstream serialises every statement of
    a saver behind one lock, which a single connection needs; on a pool each statement has its
    own connection, so ours takes none and runs beside the reads and writes of other runs."""

    def __init__(self, database: PostgresDatabase, *, serde: SerializerProtocol) -> None:
        super().__init__(database.pool, serde=serde)
        self._database = database

    @asynccontextmanager
    async def _cursor(self, *, pipeline: bool = False) -> AsyncIterator[AsyncCursor[DictRow]]:
        async with self._database.connection() as conn:
            if pipeline and self.supports_pipeline:
                async with conn.pipeline(), conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur
            elif pipeline:
                async with (
                    conn.transaction(),
                    conn.cursor(binary=True, row_factory=dict_row) as cur,
                ):
                    yield cur
            else:
                async with conn.cursor(binary=True, row_factory=dict_row) as cur:
                    yield cur

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        with self._database.translated():
            return await super().aget_tuple(config)

    async def alist(
        self, config: RunnableConfig | None, **kwargs: Any
    ) -> AsyncIterator[CheckpointTuple]:
        with self._database.translated():
            async for item in super().alist(config, **kwargs):
                yield item

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        with self._database.translated():
            return await super().aput(config, checkpoint, metadata, new_versions)

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        with self._database.translated():
            await super().aput_writes(config, writes, task_id, task_path)

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        with self._database.translated():
            return await super().aget_delta_channel_history(config=config, channels=channels)
