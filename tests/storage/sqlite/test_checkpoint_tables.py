"""The runtime's SQLite saver answers delta-channel history reads exactly as upstream's does, on
every checkpoint of forked threads, subgraph namespaces and looping parent links, while reading
only the large blobs its walk needs."""

from __future__ import annotations

import operator
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any, TypedDict
from unittest.mock import ANY

import aiosqlite
import pytest
from graphs.state import add_messages_batched
from langchain_core.messages import AIMessage, AnyMessage
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph import END, START, StateGraph
from langgraph.pregel import Pregel

from agent_runtime.storage.sqlite.checkpoint_tables import FIRST_CHUNK_ROWS, INLINE_BLOB_BYTES
from agent_runtime.storage.sqlite.saver import RuntimeSqliteSaver

AnyGraph = Pregel[Any, Any, Any, Any]


def _extend(state: list[str], writes: list[list[str]]) -> list[str]:
    return [*state, *(item for write in writes for item in write)]


class Inner(TypedDict):
    # A key of its own: a subgraph returning a shared list would append it to itself.
    scratch: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=2)]


class Outer(TypedDict):
    messages: Annotated[list[AnyMessage], DeltaChannel(add_messages_batched, snapshot_frequency=3)]
    notes: Annotated[list[str], DeltaChannel(_extend, snapshot_frequency=2)]
    turns: Annotated[int, operator.add]


def _graph(padding: int, *, notes_once: bool = False) -> AnyGraph:
    def jot(state: Inner) -> dict[str, Any]:
        return {"scratch": [f"inner {len(state.get('scratch', []))}"]}

    inner = StateGraph(Inner)
    inner.add_node("jot", jot)
    inner.add_edge(START, "jot")
    inner.add_edge("jot", END)

    def reply(state: Outer) -> dict[str, Any]:
        count = len(state["messages"])
        update: dict[str, Any] = {
            "messages": [AIMessage(content=f"reply {count} " + "x" * padding, id=f"ai-{count}")],
            "turns": 1,
        }
        # The second delta channel is written on some turns only, or on the first alone.
        if (count == 1) if notes_once else (count % 4 == 1):
            update["notes"] = [f"outer {count}"]
        return update

    outer = StateGraph(Outer)
    outer.add_node("reply", reply)
    outer.add_node("inner", inner.compile())
    outer.add_edge(START, "reply")
    outer.add_edge("reply", "inner")
    outer.add_edge("inner", END)
    return outer.compile()


@pytest.fixture
async def connection(tmp_path: Path) -> AsyncIterator[aiosqlite.Connection]:
    async with aiosqlite.connect(tmp_path / "saver.sqlite") as conn:
        yield conn


async def _converse(graph: AnyGraph, thread_id: str, turns: int) -> None:
    config: Any = {"configurable": {"thread_id": thread_id}}
    for turn in range(turns):
        await graph.ainvoke({"messages": [("user", f"turn {turn}")], "turns": 0}, config)


async def _everything(
    saver: AsyncSqliteSaver, thread_id: str
) -> list[tuple[str, str, dict[str, Any]]]:
    """Each checkpoint of the thread, in every namespace, with both channels' history."""
    answers = []
    async with saver.conn.execute(
        "SELECT checkpoint_ns, checkpoint_id FROM checkpoints WHERE thread_id = ?", (thread_id,)
    ) as cursor:
        rows = list(await cursor.fetchall())
    assert rows
    for namespace, checkpoint_id in rows:
        config: Any = {
            "configurable": {
                "thread_id": thread_id,
                "checkpoint_ns": namespace,
                "checkpoint_id": checkpoint_id,
            }
        }
        history = await saver.aget_delta_channel_history(
            config=config, channels=["messages", "notes", "scratch"]
        )
        answers.append((namespace, checkpoint_id, _comparable(history)))
    return answers


def _comparable(history: Any) -> dict[str, Any]:
    def value(item: Any) -> Any:
        if isinstance(item, list):
            return [value(part) for part in item]
        if hasattr(item, "model_dump"):
            return (type(item).__name__, item.model_dump())
        return item

    return {
        channel: {
            "seed": value(entry["seed"]) if "seed" in entry else "<none>",
            "writes": [(task, name, value(write)) for task, name, write in entry["writes"]],
        }
        for channel, entry in history.items()
    }


@pytest.mark.parametrize("padding", [0, INLINE_BLOB_BYTES // 8])
async def test_answers_equal_upstream_on_forked_threads_and_subgraphs(
    connection: aiosqlite.Connection, padding: int
) -> None:
    # With padding, snapshots outgrow INLINE_BLOB_BYTES after a few turns and are read apart.
    ours = RuntimeSqliteSaver(connection)
    upstream = AsyncSqliteSaver(connection)
    graph = _graph(padding).copy(update={"checkpointer": ours})
    await _converse(graph, "t", 9)
    config: Any = {"configurable": {"thread_id": "t"}}
    past = [s async for s in graph.aget_state_history(config)]
    # Fork twice from the past: an edit and a re-run, each a new branch.
    fork = await graph.aupdate_state(
        past[7].config, {"messages": [AIMessage(content="edited", id="edit")]}, as_node="reply"
    )
    await graph.ainvoke(None, fork)
    await graph.ainvoke({"messages": [("user", "again")], "turns": 0}, past[12].config)

    expected = await _everything(upstream, "t")
    assert await _everything(ours, "t") == expected
    assert {namespace for namespace, _, _ in expected} > {""}  # subgraph namespaces are covered
    seeded = [answer for _, _, answer in expected if answer["messages"]["seed"] != "<none>"]
    assert seeded and any(answer["notes"]["writes"] for _, _, answer in expected)
    assert (await _large_blobs(connection) > 0) == (padding > 0)


async def _large_blobs(connection: aiosqlite.Connection) -> int:
    async with connection.execute(
        "SELECT count(*) FROM checkpoints WHERE length(checkpoint) > ?", (INLINE_BLOB_BYTES,)
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None
    return int(row[0])


async def test_unknown_and_latest_checkpoints_answer_as_upstream(
    connection: aiosqlite.Connection,
) -> None:
    ours = RuntimeSqliteSaver(connection)
    upstream = AsyncSqliteSaver(connection)
    await _converse(_graph(0).copy(update={"checkpointer": ours}), "t", 4)
    for configurable in (
        {"thread_id": "t"},
        {"thread_id": "t", "checkpoint_id": "1f0ffff0-0000-6000-8000-000000000000"},
        {"thread_id": "nobody"},
    ):
        config: Any = {"configurable": {"checkpoint_ns": "", **configurable}}
        got = await ours.aget_delta_channel_history(config=config, channels=["messages", "notes"])
        want = await upstream.aget_delta_channel_history(
            config=config, channels=["messages", "notes"]
        )
        assert _comparable(got) == _comparable(want)
    assert await ours.aget_delta_channel_history(config={"configurable": {}}, channels=[]) == {}


async def test_a_loop_in_the_parent_links_ends_the_walk(connection: aiosqlite.Connection) -> None:
    ours = RuntimeSqliteSaver(connection)
    upstream = AsyncSqliteSaver(connection)
    await _converse(_graph(0).copy(update={"checkpointer": ours}), "t", 3)
    # Re-putting an id under a descendant (upstream's put replaces rows) links the chain back
    # on itself: the root's parent becomes the newest checkpoint.
    async with connection.execute(
        "SELECT checkpoint_id FROM checkpoints WHERE thread_id = 't' AND checkpoint_ns = '' "
        "ORDER BY checkpoint_id"
    ) as cursor:
        ids = [row[0] for row in await cursor.fetchall()]
    await connection.execute(
        "UPDATE checkpoints SET parent_checkpoint_id = ? WHERE thread_id = 't' "
        "AND checkpoint_ns = '' AND checkpoint_id = ?",
        (ids[-1], ids[0]),
    )
    await connection.commit()
    assert await _everything(ours, "t") == await _everything(upstream, "t")


async def test_a_long_thread_reads_only_the_snapshot_it_seeds_from(
    connection: aiosqlite.Connection,
) -> None:
    ours = RuntimeSqliteSaver(connection)
    graph = _graph(INLINE_BLOB_BYTES // 8).copy(update={"checkpointer": ours})
    await _converse(graph, "t", 30)
    statements: list[str] = []
    await connection.set_trace_callback(statements.append)
    config: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    latest = await ours.aget_tuple(config)
    assert latest is not None
    statements.clear()
    history = await ours.aget_delta_channel_history(config=latest.config, channels=["messages"])
    # aiosqlite annotates the handler as a Callable; sqlite3 documents None as "remove it".
    await connection.set_trace_callback(None)  # type: ignore[arg-type]
    assert "seed" in history["messages"]
    # Many snapshots larger than INLINE_BLOB_BYTES lie up the chain, all left in the walk's
    # rows; one is read, by itself: the newest, which seeds the channel.
    big = [s for s in statements if s.startswith("SELECT checkpoint FROM checkpoints")]
    assert len(big) == 1
    assert await _large_blobs(connection) >= 5


async def test_a_walk_longer_than_its_chunks_answers_as_upstream(
    connection: aiosqlite.Connection,
) -> None:
    # "notes" is written on the first turn only, so its walk from a late checkpoint runs past
    # several chunks (32, 64, 128 rows) to the start of the thread.
    ours = RuntimeSqliteSaver(connection)
    upstream = AsyncSqliteSaver(connection)
    await _converse(_graph(0, notes_once=True).copy(update={"checkpointer": ours}), "t", 50)
    latest = await ours.aget_tuple({"configurable": {"thread_id": "t", "checkpoint_ns": ""}})
    assert latest is not None
    got = await ours.aget_delta_channel_history(config=latest.config, channels=["notes"])
    want = await upstream.aget_delta_channel_history(config=latest.config, channels=["notes"])
    assert _comparable(got) == _comparable(want)
    assert _comparable(got)["notes"]["writes"] == [(ANY, "notes", ["outer 1"])]
    async with connection.execute(
        "SELECT count(*) FROM checkpoints WHERE thread_id = 't' AND checkpoint_ns = ''"
    ) as cursor:
        row = await cursor.fetchone()
    assert row is not None and row[0] > FIRST_CHUNK_ROWS + 2 * FIRST_CHUNK_ROWS
