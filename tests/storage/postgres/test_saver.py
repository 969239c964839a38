"""The runtime's Postgres saver writes the rows upstream's `AsyncPostgresSaver` writes, each
checkpoint and each task's writes in one statement, and reads back as upstream does: plain
channels, blobs, a delta channel's snapshots and replays, interrupts and special writes,
decoded on the event loop."""

from __future__ import annotations

import asyncio
import concurrent.futures
import operator
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any, cast

import psycopg
import pytest
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import (
    Checkpoint,
    CheckpointMetadata,
    CheckpointTuple,
    empty_checkpoint,
)
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph.graph import END, START, StateGraph
from langgraph.types import Command, interrupt
from psycopg.rows import dict_row
from typing_extensions import TypedDict

from agent_runtime.storage.postgres import PostgresStorage
from agent_runtime.storage.postgres.checkpoint_tables import ROWS_A_STATEMENT
from agent_runtime.storage.postgres.database import connection_kwargs
from tests.storage.postgres.conftest import opened


def _concatenated(state: list[str], writes: Sequence[list[str]]) -> list[str]:
    return [*state, *(item for write in writes for item in write)]


class State(TypedDict):
    notes: Annotated[list[str], DeltaChannel(_concatenated, snapshot_frequency=2)]
    count: Annotated[int, operator.add]
    last: str


def _graph(saver: Any) -> Any:
    def note(state: State) -> dict[str, Any]:
        return {"notes": [f"note {state['count']}"], "count": 1, "last": "note"}

    def ask(state: State) -> dict[str, Any]:
        answer = interrupt("more?")  # a pending write (the interrupt) on the checkpoint
        return {"notes": [str(answer)], "last": "ask"}

    graph = StateGraph(State).add_sequence([("note", note), ("ask", ask)])
    graph.add_edge(START, "note")
    graph.add_edge("ask", END)
    return graph.compile(checkpointer=saver)


@pytest.fixture
async def storage(pg_uri: str) -> AsyncIterator[PostgresStorage]:
    async with opened(pg_uri) as storage:
        yield storage


@pytest.fixture
async def upstream(pg_uri: str) -> AsyncIterator[AsyncPostgresSaver]:
    """Upstream's saver on its own connection to the same database (whose tables our storage
    set up)."""
    kwargs = {**connection_kwargs(), "row_factory": dict_row}
    async with await psycopg.AsyncConnection.connect(pg_uri, **kwargs) as conn:
        yield AsyncPostgresSaver(conn)  # type: ignore[arg-type]


def _comparable(found: CheckpointTuple | None) -> Any:
    if found is None:
        return None
    return (found.checkpoint, found.metadata, found.pending_writes)


async def _rows(storage: PostgresStorage, table: str, thread_id: str) -> list[dict[str, Any]]:
    # Every column but the thread's, in a stable order.
    rows = await storage._db.fetch_all(
        f"SELECT * FROM {table} WHERE thread_id = %s ORDER BY 2, 3, 4, 5, 6", (thread_id,)
    )
    return [{k: v for k, v in row.items() if k != "thread_id"} for row in rows]


async def test_a_graph_stores_the_rows_upstream_stores_and_reads_back_alike(
    storage: PostgresStorage, upstream: AsyncPostgresSaver
) -> None:
    # The same graph on both savers, three turns each (snapshots of the delta channel, blobs
    # of a plain list, inline primitives, an interrupt and its resume): the same rows, and
    # each saver reads the other's checkpoints as its own.
    for thread_id, saver in (("ours", storage.checkpointer), ("theirs", upstream)):
        graph = _graph(saver)
        config: Any = {"configurable": {"thread_id": thread_id}}
        for turn in range(3):
            await graph.ainvoke({"notes": [f"turn {turn}"]}, config)  # stops at the interrupt
            await graph.ainvoke(Command(resume=f"answer {turn}"), config)
        state = await graph.aget_state(config)
        assert state.values["notes"][-2:] == ["note 2", "answer 2"]
        assert state.values["count"] == 3
    # Versions end in a random fraction; the rest of a blob's row is the same.
    blobs = [
        sorted((b["channel"], b["version"].split(".")[0], b["type"], b["blob"]) for b in rows)
        for rows in [await _rows(storage, "checkpoint_blobs", t) for t in ("ours", "theirs")]
    ]
    assert blobs[0] == blobs[1]
    assert "notes" in {blob[0] for blob in blobs[0]}  # the delta channel's snapshots
    # Checkpoint, task and interrupt ids differ between the two threads; the rest does not.
    writes = [await _rows(storage, "checkpoint_writes", t) for t in ("ours", "theirs")]
    held = [
        sorted(
            (w["task_path"], w["idx"], w["channel"], w["type"])
            + ((len(w["blob"]),) if w["channel"] == "__interrupt__" else (w["blob"],))
            for w in rows
        )
        for rows in writes
    ]
    assert held[0] == held[1]
    assert len(held[0]) > 10
    for thread_id in ("ours", "theirs"):
        history = [
            state.config
            async for state in _graph(storage.checkpointer).aget_state_history(
                {"configurable": {"thread_id": thread_id}}
            )
        ]
        assert len(history) >= 12
        for asked in history:
            mine = await storage.checkpointer.aget_tuple(asked)
            assert _comparable(mine) == _comparable(await upstream.aget_tuple(asked))


async def test_calls_store_the_rows_upstream_stores(
    storage: PostgresStorage, upstream: AsyncPostgresSaver
) -> None:
    # The same calls with the same ids on two threads: the tables equal row for row, special
    # channels replaced (the last of one index in a call kept) and ordinary ones kept first.
    checkpoint: Checkpoint = {
        **empty_checkpoint(),
        "id": "1f0aaaa0-0000-6000-8000-000000000001",
        "channel_values": {"text": "inline", "number": 2, "none": None, "list": ["blob"]},
        "channel_versions": {"text": "1", "number": "1", "none": "1", "list": "1"},
    }
    child: Checkpoint = {
        **empty_checkpoint(),
        "id": "1f0aaaa0-0000-6000-8000-000000000002",
        "channel_values": {"text": "inline", "list": ["blob", "two"], "dict": {"a": 1}},
        "channel_versions": {"text": "1", "list": "2", "dict": "1"},
    }
    for thread_id, saver in (("ours", storage.checkpointer), ("theirs", upstream)):
        base: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        stored = await saver.aput(
            base, checkpoint, {"source": "input", "step": -1}, {"list": "1", "text": "1"}
        )
        stored_child = await saver.aput(
            stored, child, {"source": "loop", "step": 0}, {"list": "2", "dict": "1"}
        )
        again = cast(CheckpointMetadata, {"source": "loop", "step": 0, "again": True})
        await saver.aput(stored, child, again, {})
        await saver.aput_writes(stored_child, [("notes", ["a"]), ("other", 1)], "task-1")
        await saver.aput_writes(stored_child, [("notes", ["b"])], "task-1")  # kept: a
        await saver.aput_writes(stored_child, [("__error__", "first")], "task-2", "p")
        await saver.aput_writes(stored_child, [("__error__", "second")], "task-2", "p")
        await saver.aput_writes(
            stored_child, [("__interrupt__", "x"), ("__interrupt__", "y")], "task-3"
        )
        await saver.aput_writes(stored_child, [("__interrupt__", "z"), ("n", 1)], "task-4")
        await saver.aput_writes(stored_child, [], "task-5")
    for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
        assert await _rows(storage, table, "ours") == await _rows(storage, table, "theirs")
    writes = await _rows(storage, "checkpoint_writes", "ours")
    assert [(w["task_id"], w["idx"], w["channel"]) for w in writes] == [
        ("task-1", 0, "notes"),
        ("task-1", 1, "other"),
        ("task-2", -1, "__error__"),
        ("task-3", -3, "__interrupt__"),
        ("task-4", -3, "__interrupt__"),
        ("task-4", 1, "n"),
    ]
    assert writes[2]["task_path"] == "p"
    checkpoints = await _rows(storage, "checkpoints", "ours")
    assert checkpoints[1]["metadata"]["again"] is True  # the second put replaced the first
    assert checkpoints[0]["checkpoint"]["channel_values"] == {
        "text": "inline",
        "number": 2,
        "none": None,
    }
    blobs = await _rows(storage, "checkpoint_blobs", "ours")
    assert [(b["channel"], b["version"]) for b in blobs] == [
        ("dict", "1"),
        ("list", "1"),
        ("list", "2"),
    ]
    found = await storage.checkpointer.aget_tuple(
        {"configurable": {"thread_id": "ours", "checkpoint_ns": "", "checkpoint_id": child["id"]}}
    )
    assert found is not None
    assert found.checkpoint["channel_values"] == child["channel_values"]
    assert ("task-3", "__interrupt__", "y") in (found.pending_writes or [])


async def test_calls_of_more_rows_than_a_statement_takes_store_them_all(
    storage: PostgresStorage, upstream: AsyncPostgresSaver
) -> None:
    # A checkpoint of more blobbed channels, and a task of more writes, than one statement
    # carries (`ROWS_A_STATEMENT`): the same rows as upstream's, in one transaction each.
    count = ROWS_A_STATEMENT * 2 + 7
    channels = {f"c{n}": [n] for n in range(count)}
    checkpoint: Checkpoint = {
        **empty_checkpoint(),
        "id": "1f0aaaa0-0000-6000-8000-000000000003",
        "channel_values": channels,
        "channel_versions": dict.fromkeys(channels, "1"),
    }
    writes = [(f"c{n % 10}", n) for n in range(count)]
    for thread_id, saver in (("ours", storage.checkpointer), ("theirs", upstream)):
        base: Any = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
        stored = await saver.aput(base, checkpoint, {}, dict.fromkeys(channels, "1"))
        await saver.aput_writes(stored, writes, "task")
    for table in ("checkpoints", "checkpoint_blobs", "checkpoint_writes"):
        assert await _rows(storage, table, "ours") == await _rows(storage, table, "theirs")
    assert len(await _rows(storage, "checkpoint_blobs", "ours")) == count
    assert len(await _rows(storage, "checkpoint_writes", "ours")) == count
    found = await storage.checkpointer.aget_tuple({"configurable": {"thread_id": "ours"}})
    assert found is not None and found.checkpoint["channel_values"] == channels


async def test_a_checkpoint_and_its_writes_are_one_statement_each(
    storage: PostgresStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    statements: list[str] = []
    execute = psycopg.AsyncConnection.execute

    async def counted(self: psycopg.AsyncConnection[Any], query: Any, *args: Any, **kw: Any) -> Any:
        statements.append(str(query))
        return await execute(self, query, *args, **kw)

    monkeypatch.setattr(psycopg.AsyncConnection, "execute", counted)
    base: Any = {"configurable": {"thread_id": "t", "checkpoint_ns": ""}}
    checkpoint: Checkpoint = {
        **empty_checkpoint(),
        "channel_values": {"a": ["x"], "b": {"y": 1}},
        "channel_versions": {"a": "1", "b": "1"},
    }
    stored = await storage.checkpointer.aput(base, checkpoint, {}, {"a": "1", "b": "1"})
    await storage.checkpointer.aput_writes(stored, [("a", ["z"]), ("b", 2), ("c", 3)], "task")
    assert len(statements) == 2
    assert len(await _rows(storage, "checkpoint_blobs", "t")) == 2
    assert len(await _rows(storage, "checkpoint_writes", "t")) == 3


class _NoThreads(concurrent.futures.ThreadPoolExecutor):
    """A default executor that refuses work: whatever is handed to it fails the test."""

    def submit(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a checkpoint read went to a thread of the default executor")


async def test_reads_decode_on_the_event_loop(storage: PostgresStorage) -> None:
    graph = _graph(storage.checkpointer)
    config: Any = {"configurable": {"thread_id": "on-loop"}}
    await graph.ainvoke({"notes": [], "count": 0, "last": ""}, config)  # stops at `ask`
    asyncio.get_running_loop().set_default_executor(_NoThreads(max_workers=1))

    latest = await storage.checkpointer.aget_tuple(config)
    history = [found async for found in storage.checkpointer.alist(config)]

    assert latest is not None
    assert latest.pending_writes  # the interrupt, decoded
    assert len(history) == 3  # the input, START, `note`
    assert _comparable(history[0]) == _comparable(latest)
