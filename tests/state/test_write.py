"""The one write path, called directly over a real SQLite storage and the run fixtures' compiled
graphs (no HTTP): the lifecycle refusal comes before anything is planned or written, a refused
plan writes nothing, and the thread is settled from the state the write left."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from agent_runtime.config import load_config
from agent_runtime.errors import ConflictError, InvalidRequestError
from agent_runtime.registry import GraphRegistry, check_graphs, default_assistant_id, import_graphs
from agent_runtime.schema import Json, Lifecycle, Thread
from agent_runtime.state import Change, add_messages, update_state, write_state
from agent_runtime.storage import Storage, open_storage
from agent_runtime.storage.records import NewAssistant, NewThread, ThreadPatch
from agent_runtime.storage.serde import graph_types
from tests.conftest import ROOT

RUNS_CONFIG = ROOT / "tests" / "fixtures" / "runs" / "langgraph.json"


@dataclass(frozen=True, slots=True, kw_only=True)
class Parts:
    storage: Storage
    registry: GraphRegistry


@pytest.fixture
async def parts(tmp_path: Path) -> AsyncIterator[Parts]:
    config = load_config(RUNS_CONFIG, database=tmp_path / "runtime.sqlite")
    sources = import_graphs(config)
    storage = await open_storage(config, graph_types=graph_types(await check_graphs(sources)))
    try:
        registry = GraphRegistry(sources, checkpointer=storage.checkpointer, store=storage.store)
        yield Parts(storage=storage, registry=registry)
    finally:
        await storage.close()


async def _thread(parts: Parts, metadata: Json, lifecycle: Lifecycle = "open") -> str:
    thread_id = str(uuid.uuid4())
    new = NewThread(thread_id=thread_id, metadata=metadata)
    await parts.storage.create_thread(new, if_exists="raise")
    if lifecycle != "open":
        await parts.storage.update_thread(thread_id, ThreadPatch(lifecycle=lifecycle))
    return thread_id


async def _checkpoints(parts: Parts, thread_id: str) -> int:
    return len(await parts.storage.list_checkpoint_summaries(thread_id))


@pytest.mark.parametrize(
    ("lifecycle", "way_out"),
    [
        ("locked", 'reopen it with PATCH {"lifecycle": "open"} first'),
        ("archived", "archived threads stay read-only; copy it to continue"),
    ],
)
async def test_write_state_refuses_a_read_only_thread_before_planning(
    parts: Parts, lifecycle: Lifecycle, way_out: str
) -> None:
    thread_id = await _thread(parts, {"graph_id": "notes"}, lifecycle)
    planned: list[Thread] = []

    async def plan(thread: Thread) -> Change[None]:
        planned.append(thread)
        raise AssertionError("a read-only thread must not be planned for")

    with pytest.raises(ConflictError) as refused:
        await write_state(parts.storage, thread_id, plan, doing="testing", action="be tested")
    assert refused.value.code == f"thread_{lifecycle}"
    assert refused.value.detail == (
        f'Thread "{thread_id}" is {lifecycle}, so it cannot be tested; {way_out}'
    )
    assert planned == []
    assert await _checkpoints(parts, thread_id) == 0


async def test_update_state_refuses_a_locked_thread_before_anything_is_written(
    parts: Parts,
) -> None:
    thread_id = await _thread(parts, {"graph_id": "notes"}, "locked")
    with pytest.raises(ConflictError) as refused:
        await update_state(
            parts.storage, parts.registry, thread_id, values={"steps": ["x"]}, as_node="draft"
        )
    assert refused.value.code == "thread_locked"
    assert refused.value.detail == (
        f'Thread "{thread_id}" is locked, so it cannot have its state updated; '
        'reopen it with PATCH {"lifecycle": "open"} first'
    )
    assert await _checkpoints(parts, thread_id) == 0
    thread = await parts.storage.get_thread(thread_id)
    assert (thread["status"], thread["values"]) == ("idle", None)


async def test_update_state_settles_the_thread_from_the_state_it_wrote(parts: Parts) -> None:
    thread_id = await _thread(parts, {"graph_id": "notes"})
    checkpoint = await update_state(
        parts.storage, parts.registry, thread_id, values={"steps": ["x"]}, as_node="draft"
    )
    assert checkpoint is not None
    assert checkpoint["thread_id"] == thread_id
    assert await _checkpoints(parts, thread_id) == 1
    # Written as `draft`, the state waits for `final`: settling read it after the write.
    thread = await parts.storage.get_thread(thread_id)
    assert thread["status"] == "interrupted"
    assert thread["values"] == {"steps": ["x"]}


async def test_a_refused_plan_writes_and_settles_nothing(parts: Parts) -> None:
    thread_id = await _thread(parts, {"graph_id": "notes"})
    with pytest.raises(InvalidRequestError) as refused:
        await update_state(
            parts.storage, parts.registry, thread_id, values={"steps": ["x"]}, as_node="drat"
        )
    assert refused.value.code == "unknown_node"
    assert refused.value.detail == (
        'as_node: graph "notes" has no node "drat"; its nodes are draft, final '
        "(or __copy__ to copy the checkpoint unchanged)"
    )
    assert await _checkpoints(parts, thread_id) == 0
    thread = await parts.storage.get_thread(thread_id)
    assert (thread["status"], thread["values"]) == ("idle", None)


async def test_add_messages_stamps_the_graph_and_settles_after_the_write(parts: Parts) -> None:
    await parts.storage.create_assistant(
        NewAssistant(assistant_id=default_assistant_id("chat"), graph_id="chat", name="chat"),
        if_exists="raise",
    )
    thread_id = await _thread(parts, {})
    written = await add_messages(
        parts.storage,
        parts.registry,
        thread_id,
        [{"role": "user", "content": "hello", "id": "m1"}],
        assistant_id="chat",
        resolve_assistant=default_assistant_id,
        max_messages=10,
    )
    assert [(m.id, m.content) for m in written.result] == [("m1", "hello")]
    assert written.checkpoint is not None
    thread = await parts.storage.get_thread(thread_id)
    assert thread["metadata"] == {
        "graph_id": "chat",
        "assistant_id": default_assistant_id("chat"),
    }
    # On a thread with no checkpoint the messages are the graph's input, so it waits to run.
    assert thread["status"] == "interrupted"
    assert [m["content"] for m in (thread["values"] or {})["messages"]] == ["hello"]
