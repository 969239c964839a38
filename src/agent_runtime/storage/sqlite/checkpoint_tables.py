"""Cheap reads of LangGraph's SQLite checkpoint rows for the checkpoint tree: ids, parents,
metadata and channel versions, without decoding any channel value."""

from __future__ import annotations

from typing import Any

import ormsgpack

from agent_runtime.encoding import loads
from agent_runtime.storage.base import CheckpointSummary
from agent_runtime.storage.sqlite.database import SqliteDatabase


class SqliteCheckpoints:
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
