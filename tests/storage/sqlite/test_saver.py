"""The runtime's SQLite saver stores and reads checkpoints and writes exactly as upstream's
`AsyncSqliteSaver` does, in one trip to SQLite's thread per call where upstream takes three or
four."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiosqlite
import pytest
from langgraph.checkpoint.base import Checkpoint, CheckpointTuple, empty_checkpoint
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from agent_runtime.storage.sqlite.saver import RuntimeSqliteSaver


class State(TypedDict):
    notes: list[str]


def _graph(saver: AsyncSqliteSaver) -> Any:
    def ask(state: State) -> dict[str, Any]:
        answer = interrupt("more?")  # a pending write (the interrupt) on the checkpoint
        return {"notes": [*state["notes"], str(answer)]}

    def note(state: State) -> dict[str, Any]:
        return {"notes": [*state["notes"], "noted"]}

    graph = StateGraph(State)
    graph.add_node("note", note)
    graph.add_node("ask", ask)
    graph.add_edge(START, "note")
    graph.add_edge("note", "ask")
    graph.add_edge("ask", END)
    return graph.compile(checkpointer=saver)


@pytest.fixture
async def connection(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    async with aiosqlite.connect(tmp_path / "saver.sqlite") as conn:
        yield conn


def _comparable(found: CheckpointTuple | None) -> Any:
    if found is None:
        return None
    return (
        found.config,
        found.checkpoint,
        found.metadata,
        found.parent_config,
        found.pending_writes,
    )


async def _rows(conn: aiosqlite.Connection, table: str) -> list[Any]:
    return list(await conn.execute_fetchall(f"SELECT * FROM {table} ORDER BY 1, 2, 3, 4, 5, 6"))


async def test_reads_answer_as_upstream_on_every_checkpoint(
    connection: aiosqlite.Connection,
) -> None:
    ours = RuntimeSqliteSaver(connection)
    upstream = AsyncSqliteSaver(connection)
    graph = _graph(ours)
    config: Any = {"configurable": {"thread_id": "t"}}
    await graph.ainvoke({"notes": []}, config)  # stops at the interrupt, writes pending
    history = [state.config async for state in graph.aget_state_history(config)]
    assert len(history) >= 3
    asked = [
        *history,
        config,
        {"configurable": {"thread_id": "t", "checkpoint_ns": ""}},
        {"configurable": {"thread_id": "nobody"}},
        {"configurable": {"thread_id": "t", "checkpoint_id": "1f0ffff0-0000-6000-8000-0000"}},
    ]
    for asking in asked:
        want = await upstream.aget_tuple(asking)
        assert _comparable(await ours.aget_tuple(asking)) == _comparable(want)
    latest = await ours.aget_tuple(config)
    assert latest is not None and latest.pending_writes  # the interrupt was compared too


async def test_writes_store_the_rows_upstream_stores(tmp_path: Path) -> None:
    # The same calls, with the same ids, on two files: the tables must be equal row for row,
    # including special channels (replaced) against ordinary ones (the first write kept).
    tables = []
    checkpoint: Checkpoint = {**empty_checkpoint(), "id": "1f0aaaa0-0000-6000-8000-000000000001"}
    child: Checkpoint = {**empty_checkpoint(), "id": "1f0aaaa0-0000-6000-8000-000000000002"}
    for name, kind in (("ours", RuntimeSqliteSaver), ("upstream", AsyncSqliteSaver)):
        async with aiosqlite.connect(tmp_path / f"{name}.sqlite") as conn:
            saver = kind(conn)
            base: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
            stored = await saver.aput(base, checkpoint, {"source": "input", "step": -1}, {})
            stored_child = await saver.aput(stored, child, {"source": "loop", "step": 0}, {})
            await saver.aput_writes(stored_child, [("notes", ["a"]), ("other", 1)], "task-1")
            await saver.aput_writes(stored_child, [("notes", ["b"])], "task-1")  # kept: a
            await saver.aput_writes(stored_child, [("__error__", "first")], "task-2", "p")
            await saver.aput_writes(stored_child, [("__error__", "second")], "task-2", "p")
            assert stored_child["configurable"]["checkpoint_id"] == child["id"]
            tables.append((await _rows(conn, "checkpoints"), await _rows(conn, "writes")))
    assert tables[0] == tables[1]
    assert len(tables[0][1]) == 3


async def test_each_call_is_one_trip_to_the_connection_thread(
    connection: aiosqlite.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    ours = RuntimeSqliteSaver(connection)
    await ours.setup()
    trips: list[object] = []
    execute = aiosqlite.Connection._execute

    def counted(self: aiosqlite.Connection, fn: Any, *args: Any, **kwargs: Any) -> Any:
        trips.append(fn)
        return execute(self, fn, *args, **kwargs)

    monkeypatch.setattr(aiosqlite.Connection, "_execute", counted)
    base: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    stored = await ours.aput(base, empty_checkpoint(), {}, {})
    await ours.aput_writes(stored, [("notes", ["a"]), ("other", 1)], "task-1")
    assert await ours.aget_tuple(base) is not None
    assert len(trips) == 3
