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
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import DeltaChannelHistory, get_checkpoint_id
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver

from agent_runtime.storage.serde import GuardedDecoding
from agent_runtime.storage.sqlite.checkpoint_tables import read_delta_channel_history


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
