"""LangGraph's `AsyncPostgresSaver` on our pool, decoding through our strict serializer, its
undecodable blobs raising `CheckpointDecodeError` and its database failures `StorageError`; it
writes upstream's rows in fewer statements (`checkpoint_tables.put_checkpoint_sql`)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager, nullcontext
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_serializable_checkpoint_metadata,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from psycopg import AsyncCursor
from psycopg.rows import DictRow, dict_row
from psycopg.types.json import Jsonb

from agent_runtime.storage.postgres.checkpoint_tables import (
    ROWS_A_STATEMENT,
    put_blobs_sql,
    put_checkpoint_sql,
    put_writes_sql,
)
from agent_runtime.storage.postgres.database import Conn, PostgresDatabase
from agent_runtime.storage.primed import PrimedReads
from agent_runtime.storage.serde import GuardedDecoding


class RuntimePostgresSaver(GuardedDecoding, AsyncPostgresSaver):
    """`AsyncPostgresSaver` sharing the storage's pool. Upstream serialises every statement of
    a saver behind one lock, which a single connection needs; on a pool each statement has its
    own connection, so ours takes none and runs beside the reads and writes of other runs."""

    def __init__(self, database: PostgresDatabase, *, serde: SerializerProtocol) -> None:
        super().__init__(database.pool, serde=serde)
        self._database = database
        self.primed = PrimedReads()
        """Reads of a thread's latest checkpoint made by runs' creations (`storage.primed`)."""

    def prime(self, run_id: str, thread_id: str, latest: Mapping[str, Any] | None) -> None:
        """Keep, for the run's first read, the row upstream's read of the thread's latest
        checkpoint returns (`checkpoint_tables.latest_row`; None: it has none)."""
        if latest is not None and latest["checkpoint"]["v"] < 4 and latest["parent_checkpoint_id"]:
            return  # an old checkpoint: upstream's read moves its pending sends, a statement more
        self.primed.put(run_id, thread_id, latest)

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
        primed = self.primed.take(config)
        with self._database.translated():
            if primed is None:
                return await super().aget_tuple(config)
            if primed.found is None:
                return None
            return await self._load_checkpoint_tuple(primed.found)

    async def _load_checkpoint_tuple(self, value: DictRow) -> CheckpointTuple:
        """Upstream's, the pending writes decoded here, as `aput` dumps: upstream decodes them
        on a thread of the default executor, a hop for every checkpoint read (each state
        read, each item of a history page), empty writes included."""
        thread_id, namespace = value["thread_id"], value["checkpoint_ns"]
        stored = value["checkpoint"]
        values = {
            **(stored.get("channel_values") or {}),
            **self._load_blobs(value["channel_values"]),
        }
        checkpoint = cast(Checkpoint, {**stored, "channel_values": values})
        parent_id = value["parent_checkpoint_id"]
        return CheckpointTuple(
            _config(thread_id, namespace, value["checkpoint_id"]),
            checkpoint,
            value["metadata"],
            _config(thread_id, namespace, parent_id) if parent_id else None,
            self._load_writes(value["pending_writes"]),
        )

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
        """Upstream's rows: primitive channel values inline in the checkpoint, others (and a
        delta channel's snapshot, marked `True` inline) as blobs of their new versions. The
        values are dumped here, on the event loop, as the SQLite saver does: a hop to a
        thread costs more than dumping a turn's values."""
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        namespace = configurable["checkpoint_ns"]
        inline = dict(checkpoint["channel_values"])
        blobbed: dict[str, Any] = {}
        for channel, value in checkpoint["channel_values"].items():
            if isinstance(value, _DeltaSnapshot):
                blobbed[channel] = inline.pop(channel)
                inline[channel] = True
            elif value is not None and not isinstance(value, str | int | float | bool):
                blobbed[channel] = inline.pop(channel)
        versions = {ch: v for ch, v in new_versions.items() if ch in blobbed}
        blobs = self._dump_blobs(thread_id, namespace, blobbed, versions)
        row = (
            thread_id,
            namespace,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            Jsonb({**checkpoint, "channel_values": inline}),
            Jsonb(get_serializable_checkpoint_metadata(config, metadata)),
        )
        *earlier, last = _batches(blobs) or [[]]
        async with self._database.connection() as conn, _atomic(conn, several=bool(earlier)):
            for batch in earlier:
                await conn.execute(put_blobs_sql(len(batch)), _flat(batch))
            await conn.execute(put_checkpoint_sql(len(last)), [*_flat(last), *row])
        return {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": namespace,
                "checkpoint_id": checkpoint["id"],
            }
        }

    async def aput_writes(
        self,
        config: RunnableConfig,
        writes: Sequence[tuple[str, Any]],
        task_id: str,
        task_path: str = "",
    ) -> None:
        """Upstream's rows, dumped here as `aput`'s. When every channel is a special one,
        a write replaces an earlier one of its index (upstream's upsert; of several with one
        index in a call, the last is kept, as its statement a row would leave it); otherwise
        the first of an index stays."""
        configurable = config["configurable"]
        rows = self._dump_writes(
            configurable["thread_id"],
            configurable["checkpoint_ns"],
            configurable["checkpoint_id"],
            task_id,
            task_path,
            writes,
        )
        if not rows:
            return
        replacing = all(channel in WRITES_IDX_MAP for channel, _ in writes)
        if replacing:
            rows = list({row[5]: row for row in rows}.values())
        batches = _batches(rows)
        async with self._database.connection() as conn, _atomic(conn, several=len(batches) > 1):
            for batch in batches:
                await conn.execute(put_writes_sql(len(batch), replacing=replacing), _flat(batch))

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        with self._database.translated():
            return await super().aget_delta_channel_history(config=config, channels=channels)


def _config(thread_id: str, namespace: str, checkpoint_id: str) -> RunnableConfig:
    return {
        "configurable": {
            "thread_id": thread_id,
            "checkpoint_ns": namespace,
            "checkpoint_id": checkpoint_id,
        }
    }


def _batches(rows: Sequence[Sequence[Any]]) -> list[Sequence[Sequence[Any]]]:
    return [rows[at : at + ROWS_A_STATEMENT] for at in range(0, len(rows), ROWS_A_STATEMENT)]


def _flat(rows: Sequence[Sequence[Any]]) -> list[Any]:
    return [value for row in rows for value in row]


def _atomic(conn: Conn, *, several: bool) -> AbstractAsyncContextManager[Any]:
    # One statement is atomic on its own; several (thousands of rows) share a transaction.
    return conn.transaction() if several else nullcontext()
