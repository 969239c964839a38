"""Every statement against LangGraph's checkpoint tables (`checkpoints`, `writes`) in the SQLite
file: the checkpoint tree's cheap reads, the delta-channel history walk, and the deletes and copies
that threads, runs and retention make. Upstream owns these tables and may change them; this is
the one module to read when it does, and the only one that imports its private `_delta` helpers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any, cast

import aiosqlite
import ormsgpack
from langgraph.checkpoint.base import DeltaChannelHistory
from langgraph.checkpoint.serde.base import SerializerProtocol
from langgraph.checkpoint.sqlite._delta import (
    build_delta_channels_writes_history,
    build_delta_stage2_sql,
)

from agent_runtime.encoding import loads
from agent_runtime.storage.records import CheckpointSummary
from agent_runtime.storage.sqlite.database import SqliteDatabase, fetch_rows

CHECKPOINT_TABLES = ("checkpoints", "writes")
"""The tables of langgraph-checkpoint-sqlite keyed by thread_id."""

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

# The saver stores metadata as a JSON BLOB and copies `config["metadata"]["run_id"]` into it
# (into every namespace, subgraphs included); it filters the same way in its own `alist`.
_RUN_CHECKPOINTS = (
    "SELECT checkpoint_ns, checkpoint_id FROM checkpoints"
    " WHERE thread_id = ? AND json_extract(CAST(metadata AS TEXT), '$.run_id') = ?"
)

# What LangGraph's DeltaChannel leaves in checkpoint metadata. Such threads rebuild values from
# older checkpoints' writes, so keeping only the latest checkpoint would lose them.
_DELTA_MARKERS = ("counters_since_delta_snapshot", "delta_writes_versioned")


class SqliteCheckpoints:
    """Cheap reads of the checkpoint rows for the checkpoint tree: ids, parents, metadata and
    channel versions, without decoding any channel value."""

    _db: SqliteDatabase

    async def list_checkpoint_summaries(self, thread_id: str) -> list[CheckpointSummary]:
        rows = await self._db.fetch_all(
            "SELECT checkpoint_ns, checkpoint_id, parent_checkpoint_id, type, checkpoint,"
            " metadata FROM checkpoints WHERE thread_id = ? ORDER BY checkpoint_id",
            (thread_id,),
        )
        return [_summary(row) for row in rows]


def _skip_extension(code: int, data: bytes) -> None:
    # Channel values are msgpack extensions (messages, pydantic models...); the tree needs none.
    return None


def _summary(row: Any) -> CheckpointSummary:
    body: dict[str, Any] = {}
    if row["type"] == "msgpack" and row["checkpoint"] is not None:
        body = ormsgpack.unpackb(row["checkpoint"], ext_hook=_skip_extension)
    metadata = row["metadata"]
    values = body.get("channel_values") or {}
    return CheckpointSummary(
        checkpoint_ns=row["checkpoint_ns"],
        checkpoint_id=row["checkpoint_id"],
        parent_checkpoint_id=row["parent_checkpoint_id"],
        metadata=loads(metadata) if metadata else {},
        created_at=body.get("ts"),
        channel_versions=body.get("channel_versions") or {},
        versions_seen=body.get("versions_seen") or {},
        channels_with_values=frozenset(values),
    )


async def delete_thread_checkpoints(conn: aiosqlite.Connection, thread_ids: list[str]) -> None:
    """Every checkpoint and write of the threads, inside the caller's transaction."""
    tables = await _existing(conn, CHECKPOINT_TABLES)
    for thread_id in thread_ids:
        for table in tables:
            await conn.execute(f"DELETE FROM {table} WHERE thread_id = ?", (thread_id,))


async def copy_thread_checkpoints(
    conn: aiosqlite.Connection, thread_id: str, new_thread_id: str
) -> None:
    """Copy a thread's checkpoints and writes under a new thread id, column for column."""
    for table in await _existing(conn, CHECKPOINT_TABLES):
        columns = [c for c in await _columns(conn, table) if c != "thread_id"]
        names = ", ".join(columns)
        await conn.execute(
            f"INSERT INTO {table} (thread_id, {names})"
            f" SELECT ?, {names} FROM {table} WHERE thread_id = ?",
            (new_thread_id, thread_id),
        )


async def delete_run_checkpoints(conn: aiosqlite.Connection, thread_id: str, run_id: str) -> None:
    """Every checkpoint the run wrote (in any namespace), with its writes."""
    # Writes first: they are found through the checkpoints about to be deleted.
    await conn.execute(
        "DELETE FROM writes WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id)"
        f" IN ({_RUN_CHECKPOINTS})",
        (thread_id, thread_id, run_id),
    )
    await conn.execute(
        "DELETE FROM checkpoints WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id)"
        f" IN ({_RUN_CHECKPOINTS})",
        (thread_id, thread_id, run_id),
    )


async def uses_delta_channels(conn: aiosqlite.Connection, thread_id: str) -> bool:
    """Whether any checkpoint of the thread was written by a graph with a DeltaChannel."""
    marks = " OR ".join(
        f"json_extract(CAST(metadata AS TEXT), '$.{m}') IS NOT NULL" for m in _DELTA_MARKERS
    )
    async with conn.execute(
        f"SELECT 1 FROM checkpoints WHERE thread_id = ? AND ({marks}) LIMIT 1", (thread_id,)
    ) as cursor:
        return await cursor.fetchone() is not None


async def keep_latest_checkpoints(conn: aiosqlite.Connection, thread_id: str) -> None:
    """Keep each namespace's newest checkpoint (with its pending writes); delete the rest."""
    doomed = (
        "SELECT checkpoint_ns, checkpoint_id FROM checkpoints c WHERE thread_id = ?"
        " AND checkpoint_id < (SELECT MAX(checkpoint_id) FROM checkpoints"
        " WHERE thread_id = c.thread_id AND checkpoint_ns = c.checkpoint_ns)"
    )
    await conn.execute(
        f"DELETE FROM writes WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) IN ({doomed})",
        (thread_id, thread_id),
    )
    await conn.execute(
        f"DELETE FROM checkpoints WHERE thread_id = ? AND (checkpoint_ns, checkpoint_id) IN"
        f" ({doomed})",
        (thread_id, thread_id),
    )
    # The survivors' parents are gone; history must not point at them.
    await conn.execute(
        "UPDATE checkpoints SET parent_checkpoint_id = NULL WHERE thread_id = ?", (thread_id,)
    )


async def _existing(conn: aiosqlite.Connection, tables: tuple[str, ...]) -> list[str]:
    marks = ", ".join("?" for _ in tables)
    rows = await fetch_rows(
        conn, f"SELECT name FROM sqlite_master WHERE type = 'table' AND name IN ({marks})", tables
    )
    return [row[0] for row in rows]


async def _columns(conn: aiosqlite.Connection, table: str) -> list[str]:
    return [row[1] for row in await fetch_rows(conn, f"PRAGMA table_info({table})")]


async def read_delta_channel_history(
    conn: aiosqlite.Connection,
    *,
    lock: asyncio.Lock,
    serde: SerializerProtocol,
    has_task_path: bool,
    thread_id: str,
    namespace: str,
    target: str,
    channels: list[str],
) -> Mapping[str, DeltaChannelHistory]:
    """What upstream's `aget_delta_channel_history` returns for `target`, walking its parents
    on ids alone and reading only the blobs the walk uses (`saver.py` says why)."""
    walk = _Walk(channels)
    # The anchor, the recursive step, then the blob size limit and the outer join. Each
    # statement is one hop to SQLite's thread (`execute_fetchall`); a chunk after the first
    # runs the walk again past the rows already read, which costs little without blobs.
    walk_params: list[Any] = [thread_id, namespace, target, thread_id, namespace]
    walk_params += [INLINE_BLOB_BYTES, thread_id, namespace]
    async with lock:
        read, chunk = 0, FIRST_CHUNK_ROWS
        while not walk.done:
            rows = list(await conn.execute_fetchall(_WALK_SQL, [*walk_params, chunk, read]))
            for checkpoint_id, type_tag, blob in rows:
                if not walk.wants(checkpoint_id):
                    break
                if checkpoint_id == target:
                    continue  # the target's own values and writes are not in the answer
                if blob is None:
                    ((blob,),) = await conn.execute_fetchall(
                        _BLOB_SQL, (thread_id, namespace, checkpoint_id)
                    )
                walk.visit(checkpoint_id, serde.loads_typed((type_tag, blob)))
            if len(rows) < chunk:
                break  # the chain ended
            read += chunk
            chunk = min(2 * chunk, MAX_CHUNK_ROWS)
        chained = [channel for channel in channels if walk.chains[channel]]
        sql = build_delta_stage2_sql(
            has_task_path=has_task_path,
            chain_lens=[len(walk.chains[channel]) for channel in chained],
        )
        writes: list[tuple[str, str, str, int, str, bytes, str]] = []
        if sql:
            params: list[Any] = []
            for channel in chained:
                params.extend([thread_id, namespace, channel, *walk.chains[channel]])
            writes = cast(
                list[tuple[str, str, str, int, str, bytes, str]],
                list(await conn.execute_fetchall(sql, params)),
            )
    return build_delta_channels_writes_history(
        channels=channels,
        chain_by_ch=walk.chains,
        seed_val_by_ch=walk.seeds,
        seeded=set(walk.seeds),
        stage2_rows=writes,
        serde=serde,
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
