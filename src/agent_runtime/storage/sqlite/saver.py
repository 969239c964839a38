"""LangGraph's `AsyncSqliteSaver` with a delta-channel history read whose cost does not grow
with the thread.

To rebuild a `DeltaChannel`, LangGraph asks the saver for the writes since the channel's last
snapshot: a walk from the checkpoint up its parents to the first one holding the snapshot.
Upstream's walk carries every ancestor's whole checkpoint blob through its recursive query and
reads them 64 rows at a time, so each turn of a long conversation copied two or three
snapshots (165 KiB each at 600 messages) out of SQLite only to drop them. This walk follows
the parent links on ids alone and reads a blob only when it is small or the walk needs it, so
a turn reads the one snapshot it seeds from. What it returns is what upstream returns; the
contract tests in `tests/storage/test_sqlite_saver.py` run both on the same threads. The walk's SQL
lives with every other statement against the checkpoint tables, in `checkpoint_tables.py`.

Its reads and writes also take one trip each to SQLite's thread (`writer.on_thread`) where
upstream's take three or four (execute, fetch, commit, close: each a thread handoff and a
wake-up of the event loop), with the same statements, in the same order, under the same lock.
"""

from __future__ import annotations

import functools
import json
import sqlite3
from collections.abc import Callable, Mapping, Sequence
from typing import Any, cast

import aiosqlite
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import (
    WRITES_IDX_MAP,
    ChannelVersions,
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    DeltaChannelHistory,
    get_checkpoint_id,
    get_checkpoint_metadata,
)
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.checkpoint.sqlite.utils import load_pending_writes, pending_writes_sql

from agent_runtime.storage.primed import PrimedReads
from agent_runtime.storage.serde import GuardedDecoding
from agent_runtime.storage.sqlite.checkpoint_tables import read_delta_channel_history
from agent_runtime.storage.sqlite.writer import GroupCommit, one_trip, write_once

_SELECT = (
    "SELECT thread_id, checkpoint_id, parent_checkpoint_id, type, checkpoint, metadata"
    " FROM checkpoints WHERE thread_id = ? AND checkpoint_ns = ?"
)
_PUT = (
    "INSERT OR REPLACE INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id,"
    " parent_checkpoint_id, type, checkpoint, metadata) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
_WRITE_COLUMNS = (
    " INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, task_path, idx, channel,"
    " type, value) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)"
)


class _OneTripSaver(AsyncSqliteSaver):
    """`aget_tuple`, `aput` and `aput_writes` of upstream, each one trip to SQLite's thread."""

    group_commit: GroupCommit | None = None
    """The writer connection's (`SqliteDatabase.group_commit`), set by whoever shares it."""

    def __init__(self, conn: aiosqlite.Connection, *, serde: SerializerProtocol | None = None):
        super().__init__(conn, serde=serde)
        self.primed = PrimedReads()
        """Reads of a thread's latest checkpoint made by runs' creations (`storage.primed`)."""

    def latest_reader(self, thread_id: str) -> Callable[[sqlite3.Connection], Any]:
        """What `aget_tuple` runs on the connection's thread to read the thread's latest
        checkpoint at the root, for a transaction of the writer connection to call; its result
        is what `primed` keeps."""
        return functools.partial(
            _read, thread_id=thread_id, namespace="", wanted=None, has_task_path=self._has_task_path
        )

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        await self.setup()
        configurable = config["configurable"]
        thread_id = str(configurable["thread_id"])
        namespace = configurable.get("checkpoint_ns", "")
        wanted = get_checkpoint_id(config)
        primed = self.primed.take(config)
        if primed is not None:
            found = primed.found
        else:
            read = functools.partial(
                _read,
                thread_id=thread_id,
                namespace=namespace,
                wanted=wanted,
                has_task_path=self._has_task_path,
            )
            found = await one_trip(self.lock, self.conn, read)
        if found is None:
            return None
        (found_thread, checkpoint_id, parent_id, type_, blob, metadata), writes = found
        if not wanted:
            config = {
                "configurable": {
                    "thread_id": found_thread,
                    "checkpoint_ns": namespace,
                    "checkpoint_id": checkpoint_id,
                }
            }
        parent: RunnableConfig | None = None
        if parent_id:
            parent = {
                "configurable": {
                    "thread_id": found_thread,
                    "checkpoint_ns": namespace,
                    "checkpoint_id": parent_id,
                }
            }
        return CheckpointTuple(
            config,
            self.serde.loads_typed((type_, blob)),
            cast(CheckpointMetadata, json.loads(metadata) if metadata is not None else {}),
            parent,
            load_pending_writes(writes, self.serde),
        )

    async def aput(
        self,
        config: RunnableConfig,
        checkpoint: Checkpoint,
        metadata: CheckpointMetadata,
        new_versions: ChannelVersions,
    ) -> RunnableConfig:
        await self.setup()
        configurable = config["configurable"]
        thread_id = configurable["thread_id"]
        namespace = configurable["checkpoint_ns"]
        type_, blob = self.serde.dumps_typed(checkpoint)
        encoded_metadata = json.dumps(
            get_checkpoint_metadata(config, metadata), ensure_ascii=False
        ).encode("utf-8", "ignore")
        params = (
            str(thread_id),
            namespace,
            checkpoint["id"],
            configurable.get("checkpoint_id"),
            type_,
            blob,
            encoded_metadata,
        )
        await write_once(
            self.lock, self.conn, lambda db: db.execute(_PUT, params), self.group_commit
        )
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
        # Special channels (errors, interrupts) replace; the others keep the first write.
        verb = (
            "INSERT OR REPLACE"
            if all(w[0] in WRITES_IDX_MAP for w in writes)
            else ("INSERT OR IGNORE")
        )
        await self.setup()
        configurable = config["configurable"]
        rows = [
            (
                str(configurable["thread_id"]),
                str(configurable["checkpoint_ns"]),
                str(configurable["checkpoint_id"]),
                task_id,
                task_path,
                WRITES_IDX_MAP.get(channel, idx),
                channel,
                *self.serde.dumps_typed(value),
            )
            for idx, (channel, value) in enumerate(writes)
        ]

        def put(db: sqlite3.Connection) -> None:
            db.executemany(verb + _WRITE_COLUMNS, rows)

        await write_once(self.lock, self.conn, put, self.group_commit)


def _read(
    db: sqlite3.Connection,
    *,
    thread_id: str,
    namespace: str,
    wanted: str | None,
    has_task_path: bool,
) -> tuple[Any, list[Any]] | None:
    params: tuple[str, ...]
    if wanted:
        sql, params = f"{_SELECT} AND checkpoint_id = ?", (thread_id, namespace, wanted)
    else:
        sql = f"{_SELECT} ORDER BY checkpoint_id DESC LIMIT 1"
        params = (thread_id, namespace)
    row = db.execute(sql, params).fetchone()
    if row is None:
        return None
    writes_sql = pending_writes_sql(has_task_path)
    return row, db.execute(writes_sql, (thread_id, namespace, row[1])).fetchall()


class RuntimeSqliteSaver(GuardedDecoding, _OneTripSaver):
    """`AsyncSqliteSaver` whose delta-channel history reads only the blobs it uses, whose
    reads and writes take one trip each to SQLite's thread, and whose undecodable blobs raise
    `CheckpointDecodeError` naming their thread."""

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        if not channels:
            return {}
        channels = list(channels)
        await self.setup()
        thread_id = str(config["configurable"]["thread_id"])
        namespace = config["configurable"].get("checkpoint_ns", "")
        target = get_checkpoint_id(config)
        if not target:
            latest = await self.aget_tuple(config)
            if latest is None:
                return {channel: {"writes": []} for channel in channels}
            target = latest.config["configurable"]["checkpoint_id"]
        return await read_delta_channel_history(
            self.conn,
            lock=self.lock,
            serde=self.serde,
            has_task_path=self._has_task_path,
            thread_id=thread_id,
            namespace=namespace,
            target=target,
            channels=channels,
        )
