"""LangGraph's `AsyncSqliteSaver` with a delta-channel history read whose cost does not grow
with the thread.

To rebuild a `DeltaChannel`, LangGraph asks the saver for the writes since the channel's last
snapshot: a walk from the checkpoint up its parents to the first one holding the snapshot.
Upstream's walk carries every ancestor's whole checkpoint blob through its recursive query and
reads them 64 rows at a time, so each turn of a long conversation copied two or three
snapshots (165 KiB each at 600 messages) out of SQLite only to drop them. This walk follows
the parent links on ids alone and reads a blob only when it is small or the walk needs it, so
a turn reads the one snapshot it seeds from. What it returns is what upstream returns; the
contract tests in `tests/storage/test_sqlite_saver.py` run both on the same threads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import DeltaChannelHistory, get_checkpoint_id
from langgraph.checkpoint.sqlite._delta import (
    build_delta_channels_writes_history,
    build_delta_stage2_sql,
)
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent_runtime.storage.serde import GuardedDecoding

INLINE_BLOB_BYTES = 16 * 1024
"""Ancestor blobs up to this size come back with the walk; larger ones (snapshots, big plain
channels) are read one by one, and only if the walk reaches them before it ends."""

FIRST_CHUNK_ROWS = 32
MAX_CHUNK_ROWS = 256
"""The walk reads rows in chunks, each a hop to SQLite's thread, doubling from the first: a
snapshot is usually a few dozen checkpoints up, and rows read past it are wasted."""

# Newest first from the target, following `parent_checkpoint_id` as upstream's walk does (ids
# are not ordered across processes). The recursion carries ids only; the outer join reads each
# row's blob by primary key, and `CASE` leaves a large blob unread. `CROSS JOIN` keeps the
# ancestors as the outer loop in both places, so SQLite stops after LIMIT + OFFSET rows.
_WALK_SQL = """
WITH RECURSIVE ancestors(checkpoint_id, parent_checkpoint_id) AS (
    SELECT checkpoint_id, parent_checkpoint_id FROM checkpoints
    WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?
    UNION ALL
    SELECT c.checkpoint_id, c.parent_checkpoint_id
    FROM ancestors a CROSS JOIN checkpoints c
    ON c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = a.parent_checkpoint_id
)
SELECT a.checkpoint_id, c.type, CASE WHEN length(c.checkpoint) <= ? THEN c.checkpoint END
FROM ancestors a CROSS JOIN checkpoints c
ON c.thread_id = ? AND c.checkpoint_ns = ? AND c.checkpoint_id = a.checkpoint_id
LIMIT ? OFFSET ?
"""

_BLOB_SQL = (
    "SELECT checkpoint FROM checkpoints "
    "WHERE thread_id = ? AND checkpoint_ns = ? AND checkpoint_id = ?"
)


class RuntimeSqliteSaver(GuardedDecoding, AsyncSqliteSaver):
    """`AsyncSqliteSaver` whose delta-channel history reads only the blobs it uses, and whose
    undecodable blobs raise `CheckpointDecodeError` naming their thread."""

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
        walk = _Walk(channels)
        # The anchor, the recursive step, then the blob size limit and the outer join. Each
        # statement is one hop to SQLite's thread (`execute_fetchall`); a chunk after the first
        # runs the walk again past the rows already read, which costs little without blobs.
        walk_params = [thread_id, namespace, target, thread_id, namespace]
        walk_params += [INLINE_BLOB_BYTES, thread_id, namespace]
        async with self.lock:
            read, chunk = 0, FIRST_CHUNK_ROWS
            while not walk.done:
                rows = list(
                    await self.conn.execute_fetchall(_WALK_SQL, [*walk_params, chunk, read])
                )
                for checkpoint_id, type_tag, blob in rows:
                    if not walk.wants(checkpoint_id):
                        break
                    if checkpoint_id == target:
                        continue  # the target's own values and writes are not in the answer
                    if blob is None:
                        ((blob,),) = await self.conn.execute_fetchall(
                            _BLOB_SQL, (thread_id, namespace, checkpoint_id)
                        )
                    walk.visit(checkpoint_id, self.serde.loads_typed((type_tag, blob)))
                if len(rows) < chunk:
                    break  # the chain ended
                read += chunk
                chunk = min(2 * chunk, MAX_CHUNK_ROWS)
            chained = [channel for channel in channels if walk.chains[channel]]
            sql = build_delta_stage2_sql(
                has_task_path=self._has_task_path,
                chain_lens=[len(walk.chains[channel]) for channel in chained],
            )
            writes: list[tuple[str, str, str, int, str, bytes, str]] = []
            if sql:
                params: list[Any] = []
                for channel in chained:
                    params.extend([thread_id, namespace, channel, *walk.chains[channel]])
                writes = cast(
                    list[tuple[str, str, str, int, str, bytes, str]],
                    list(await self.conn.execute_fetchall(sql, params)),
                )
        return build_delta_channels_writes_history(
            channels=channels,
            chain_by_ch=walk.chains,
            seed_val_by_ch=walk.seeds,
            seeded=set(walk.seeds),
            stage2_rows=writes,
            serde=self.serde,
        )


class _Walk:
    """Where the walk up the parents stands: each channel's checkpoints (newest first) whose
    writes it needs, and the value it starts from once an ancestor holds one."""

    def __init__(self, channels: list[str]) -> None:
        self.chains: dict[str, list[str]] = {channel: [] for channel in channels}
        self.seeds: dict[str, Any] = {}
        self._seeking = set(channels)
        self._seen: set[str] = set()
        self._looped = False

    @property
    def done(self) -> bool:
        return not self._seeking or self._looped

    def wants(self, checkpoint_id: str) -> bool:
        """False once every channel has its seed, or the parent links loop (upstream's `put`
        replaces rows, so re-putting an id under a descendant can make a cycle)."""
        if not self._seeking:
            return False
        if checkpoint_id in self._seen:
            self._looped = True
            return False
        self._seen.add(checkpoint_id)
        return True

    def visit(self, checkpoint_id: str, checkpoint: Mapping[str, Any]) -> None:
        values: Mapping[str, Any] = checkpoint.get("channel_values") or {}
        for channel in list(self._seeking):
            self.chains[channel].append(checkpoint_id)
            if channel in values:
                self.seeds[channel] = values[channel]
                self._seeking.discard(channel)
