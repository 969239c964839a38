"""Our statements against langgraph-checkpoint-postgres's tables: channel values live in blobs
shared by version, so copies take them along, and deletes and pruning free exactly the blobs no
remaining checkpoint references. The tree's summaries match SQLite's for the same graph."""

from __future__ import annotations

import operator
from pathlib import Path
from typing import Annotated, Any

import psycopg
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import NewThread
from agent_runtime.storage.sqlite import SqliteStorage
from tests.storage.postgres.conftest import opened

# Blobs a checkpoint references (by channel and version) that no checkpoint row names.
_ORPHAN_BLOBS = """
SELECT count(*) FROM checkpoint_blobs b WHERE NOT EXISTS (
    SELECT 1 FROM checkpoints c WHERE c.thread_id = b.thread_id
    AND c.checkpoint_ns = b.checkpoint_ns
    AND c.checkpoint -> 'channel_versions' ->> b.channel = b.version)
"""


class _Notes(TypedDict):
    notes: Annotated[list[str], operator.add]
    count: int


def _graph(storage: Storage) -> Any:
    # `notes` is a list, so it lives in checkpoint_blobs; `count` is inlined in the row.
    inner = StateGraph(_Notes)
    inner.add_node("deep", lambda s: {"notes": ["deep"], "count": s["count"] + 1})
    inner.add_edge(START, "deep")
    inner.add_edge("deep", END)
    outer = StateGraph(_Notes)
    outer.add_node("write", lambda s: {"notes": ["write"], "count": s["count"] + 1})
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "write")
    outer.add_edge("write", "sub")
    outer.add_edge("sub", END)
    return outer.compile(checkpointer=storage.checkpointer)


def _config(thread_id: str, run_id: str | None = None) -> RunnableConfig:
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    if run_id is not None:
        config["metadata"] = {"run_id": run_id}
    return config


async def _scalar(uri: str, sql: str, *params: object) -> Any:
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        cursor = await conn.execute(sql, params)
        row = await cursor.fetchone()
        return None if row is None else row[0]


async def _two_runs(storage: Storage, thread_id: str = "t") -> tuple[Any, dict[str, Any]]:
    """The graph, and the thread's values after its first run."""
    await storage.create_thread(NewThread(thread_id=thread_id), if_exists="raise")
    graph = _graph(storage)
    first = await graph.ainvoke({"notes": ["a"], "count": 0}, _config(thread_id, "r1"))
    await graph.ainvoke({"notes": ["b"]}, _config(thread_id, "r2"))
    return graph, first


async def test_copy_takes_the_blobs_along(pg_uri: str) -> None:
    async with opened(pg_uri) as storage:
        graph, _ = await _two_runs(storage)
        await storage.copy_thread("t", "copy")
        source = await graph.aget_state(_config("t"))
        copied = await graph.aget_state(_config("copy"))
        assert copied.values == source.values
        assert copied.values["notes"][-3:] == ["b", "write", "deep"]
        count = "SELECT count(*) FROM checkpoint_blobs WHERE thread_id = %s"
        assert await _scalar(pg_uri, count, "copy") == await _scalar(pg_uri, count, "t") > 0
        await storage.delete_thread("t")
        assert (await graph.aget_state(_config("copy"))).values == copied.values
        assert await _scalar(pg_uri, count, "t") == 0


async def test_deleting_a_runs_checkpoints_frees_only_its_blobs(pg_uri: str) -> None:
    async with opened(pg_uri) as storage:
        graph, first = await _two_runs(storage)
        await storage.delete_run_checkpoints("t", "r2")
        state = await graph.aget_state(_config("t"))
        assert state.values == first
        assert {s.metadata["run_id"] async for s in graph.aget_state_history(_config("t"))} == {
            "r1"
        }
        assert await _scalar(pg_uri, _ORPHAN_BLOBS) == 0
        assert await _scalar(pg_uri, "SELECT count(*) FROM checkpoint_blobs") > 0


async def test_keep_latest_keeps_the_blobs_the_latest_checkpoints_read(pg_uri: str) -> None:
    async with opened(pg_uri) as storage:
        graph, _ = await _two_runs(storage)
        before = (await graph.aget_state(_config("t"))).values
        result = await storage.prune_threads(["t"], strategy="keep_latest")
        assert result.pruned == ["t"]
        assert (await graph.aget_state(_config("t"))).values == before
        assert len([s async for s in graph.aget_state_history(_config("t"))]) == 1
        namespaces = "SELECT count(DISTINCT checkpoint_ns) FROM checkpoints"
        per_namespace = "SELECT max(n) FROM (SELECT count(*) AS n FROM checkpoints GROUP BY 1) x"
        assert (
            await _scalar(pg_uri, per_namespace.replace("GROUP BY 1", "GROUP BY checkpoint_ns"))
            == 1
        )
        assert await _scalar(pg_uri, namespaces) >= 1
        assert await _scalar(pg_uri, _ORPHAN_BLOBS) == 0


async def test_summaries_match_sqlites(pg_uri: str, tmp_path: Path) -> None:
    sqlite = SqliteStorage(tmp_path / "runtime.sqlite")
    await sqlite.setup()
    try:
        async with opened(pg_uri) as postgres:
            shapes = []
            for storage in (sqlite, postgres):
                await _two_runs(storage)
                summaries = await storage.list_checkpoint_summaries("t")
                shapes.append(
                    sorted(
                        (
                            s.checkpoint_ns.split(":")[0],
                            s.metadata.get("step"),
                            s.metadata.get("run_id"),
                            s.parent_checkpoint_id is None,
                            sorted(s.channels_with_values),
                            sorted(s.channel_versions),
                            s.created_at is not None,
                        )
                        for s in summaries
                    )
                )
            assert shapes[0] == shapes[1]
            assert any("notes" in shape[4] for shape in shapes[1])
    finally:
        await sqlite.close()
