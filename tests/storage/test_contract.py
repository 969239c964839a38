"""The contract every storage backend passes; new backends join the `storage` fixture's params
(in conftest.py)."""

from __future__ import annotations

import operator
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, cast

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import CheckpointMetadata, empty_checkpoint
from langgraph.graph import START, StateGraph
from typing_extensions import TypedDict

from agent_runtime.clock import FakeClock
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.schema import Json
from agent_runtime.storage.base import Storage
from agent_runtime.storage.filters import AuthFilter
from agent_runtime.storage.records import (
    AssistantPatch,
    AssistantQuery,
    NewAssistant,
    NewThread,
    RunOutcome,
    ThreadPatch,
    ThreadQuery,
)
from agent_runtime.storage.sqlite import SqliteStorage


async def _put_checkpoint(storage: Storage, thread_id: str) -> str:
    checkpoint = empty_checkpoint()
    config: RunnableConfig = {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}
    await storage.checkpointer.aput(config, checkpoint, {"source": "input", "step": -1}, {})
    return str(checkpoint["id"])


async def test_setup_is_idempotent_and_creates_folders(storage: Storage) -> None:
    await storage.setup()
    assert await storage.count_threads(ThreadQuery()) == 0


async def test_assistant_lifecycle(storage: Storage) -> None:
    created = await storage.create_assistant(
        NewAssistant(assistant_id="a", graph_id="g", metadata={"x": 1}), if_exists="raise"
    )
    assert created["version"] == 1 and created["name"] == "Untitled"
    with pytest.raises(ConflictError):
        await storage.create_assistant(
            NewAssistant(assistant_id="a", graph_id="g"), if_exists="raise"
        )
    same = await storage.create_assistant(
        NewAssistant(assistant_id="a", graph_id="other"), if_exists="do_nothing"
    )
    assert same == created

    patched = await storage.update_assistant("a", AssistantPatch(metadata={"y": 2}, name="n"))
    assert patched["version"] == 2
    assert patched["metadata"] == {"x": 1, "y": 2}
    assert patched["created_at"] == created["created_at"]
    assert patched["updated_at"] > created["updated_at"]
    versions = await storage.list_assistant_versions("a", metadata=None, limit=10, offset=0)
    assert [v["version"] for v in versions] == [2, 1]
    restored = await storage.set_latest_assistant_version("a", 1)
    assert restored["version"] == 1 and restored["metadata"] == {"x": 1}
    # A patch after going back still numbers versions after the highest one.
    assert (await storage.update_assistant("a", AssistantPatch(name="m")))["version"] == 3

    await storage.delete_assistant("a")
    with pytest.raises(NotFoundError):
        await storage.get_assistant("a")
    with pytest.raises(NotFoundError):
        await storage.list_assistant_versions("a", metadata=None, limit=10, offset=0)


async def test_assistant_search(storage: Storage) -> None:
    for index, graph in enumerate(["g1", "g1", "g2"]):
        await storage.create_assistant(
            NewAssistant(
                assistant_id=f"a{index}",
                graph_id=graph,
                name=f"Bot {index}",
                metadata={"i": index, "even": index % 2 == 0},
            ),
            if_exists="raise",
        )
    assert await storage.count_assistants(AssistantQuery(graph_id="g1")) == 2
    assert await storage.count_assistants(AssistantQuery(metadata={"even": True})) == 2
    assert await storage.count_assistants(AssistantQuery(metadata={"i": True})) == 0
    assert await storage.count_assistants(AssistantQuery(name="BOT 2")) == 1
    newest = await storage.search_assistants(AssistantQuery())
    assert [a["assistant_id"] for a in newest] == ["a2", "a1", "a0"]
    by_name = await storage.search_assistants(
        AssistantQuery(sort_by="name", sort_order="asc", limit=2, offset=1)
    )
    assert [a["name"] for a in by_name] == ["Bot 1", "Bot 2"]


async def test_thread_lifecycle(storage: Storage) -> None:
    created = await storage.create_thread(
        NewThread(thread_id="t", metadata={"u": 1}, ttl=None), if_exists="raise"
    )
    assert created["status"] == "idle" and created["values"] is None
    with pytest.raises(ConflictError):
        await storage.create_thread(
            NewThread(thread_id="t", metadata={}, ttl=None), if_exists="raise"
        )
    assert (
        await storage.create_thread(
            NewThread(thread_id="t", metadata={}, ttl=None), if_exists="do_nothing"
        )
        == created
    )
    updated = await storage.update_thread(
        "t", ThreadPatch(metadata={"v": 2}, ttl={"strategy": "delete", "ttl": 5})
    )
    assert updated["metadata"] == {"u": 1, "v": 2}
    assert updated["ttl"] == {"strategy": "delete", "ttl": 5}
    await storage.delete_thread("t")
    with pytest.raises(NotFoundError):
        await storage.get_thread("t")
    with pytest.raises(NotFoundError):
        await storage.update_thread("t", ThreadPatch(metadata={}, ttl=None))


async def test_thread_read_without_its_values(storage: Storage) -> None:
    await storage.create_thread(
        NewThread(thread_id="t", metadata={"u": 1}, ttl=None), if_exists="raise"
    )
    values = {"messages": [{"type": "human", "content": "hi"}]}
    await storage.settle_thread("t", RunOutcome(status="success", values=values))
    whole = await storage.get_thread("t")
    assert whole["values"] == values
    row = await storage.get_thread("t", values=False)
    assert row["values"] is None
    assert {**row, "values": values} == whole
    with pytest.raises(NotFoundError):
        await storage.get_thread("nobody", values=False)


async def test_long_values_read_back_and_filter_like_short_ones(storage: Storage) -> None:
    # Long values (SQLite compresses them) behave as short ones do: read back exactly, found by
    # `values` containment and by the text of their first message, copied with their thread.
    def conversation(turns: int) -> Json:
        messages = [
            {"type": kind, "content": f"turn {n}: {'grüße ' * 20}", "id": f"m{n}-{kind}"}
            for n in range(turns)
            for kind in ("human", "ai")
        ]
        return {"messages": messages, "topic": "tea", "score": 1}

    for thread_id in ("long", "short"):
        await storage.create_thread(NewThread(thread_id=thread_id, metadata={}), if_exists="raise")
    await storage.settle_thread("short", RunOutcome(status="success", values={"topic": "tea"}))
    for turns in (5, 6, 7):  # a thread growing run after run
        values = conversation(turns)
        await storage.settle_thread("long", RunOutcome(status="success", values=values))
        assert (await storage.get_thread("long"))["values"] == values
    assert await storage.count_threads(ThreadQuery(values={"topic": "tea"})) == 2
    assert await storage.count_threads(ThreadQuery(values={"score": 1.0})) == 1
    assert await storage.count_threads(ThreadQuery(values={"score": True})) == 0
    found = ThreadQuery(values={"messages": [{"id": "m6-ai"}]})
    assert [t["thread_id"] for t in await storage.search_threads(found)] == ["long"]
    assert await storage.count_threads(ThreadQuery(values={"messages": [{"id": "m7-ai"}]})) == 0
    assert await storage.count_threads(ThreadQuery(text="TURN 0: grüße")) == 1
    assert await storage.count_threads(ThreadQuery(text="turn 1:")) == 0  # not the first message
    copied = await storage.copy_thread("long", "copy")
    assert copied["values"] == conversation(7)
    assert await storage.count_threads(ThreadQuery(values={"topic": "tea"})) == 3


async def test_delete_thread_removes_checkpoints(storage: Storage) -> None:
    await storage.create_thread(NewThread(thread_id="t", metadata={}, ttl=None), if_exists="raise")
    await _put_checkpoint(storage, "t")
    config: RunnableConfig = {"configurable": {"thread_id": "t"}}
    assert await storage.checkpointer.aget_tuple(config) is not None
    await storage.delete_thread("t")
    assert await storage.checkpointer.aget_tuple(config) is None


async def test_copy_thread_copies_checkpoints(storage: Storage) -> None:
    await storage.create_thread(
        NewThread(thread_id="src", metadata={"m": 1}, ttl=None), if_exists="raise"
    )
    checkpoint_id = await _put_checkpoint(storage, "src")
    copied = await storage.copy_thread("src", "dst")
    assert copied["thread_id"] == "dst" and copied["metadata"] == {"m": 1}
    found = await storage.checkpointer.aget_tuple({"configurable": {"thread_id": "dst"}})
    assert found is not None
    assert found.config["configurable"]["checkpoint_id"] == checkpoint_id
    with pytest.raises(NotFoundError):
        await storage.copy_thread("missing", "x")


async def test_thread_search_filters(storage: Storage) -> None:
    await storage.create_thread(
        NewThread(thread_id="t1", metadata={"user": "a", "n": 1}, ttl=None), if_exists="raise"
    )
    await storage.create_thread(
        NewThread(thread_id="t2", metadata={"user": "b", "n": 1.0}, ttl=None), if_exists="raise"
    )
    await storage.create_thread(
        NewThread(thread_id="t3", metadata={"user": "a", "n": True}, ttl=None), if_exists="raise"
    )
    assert await storage.count_threads(ThreadQuery(metadata={"user": "a"})) == 2
    assert await storage.count_threads(ThreadQuery(metadata={"n": 1})) == 2
    assert await storage.count_threads(ThreadQuery(metadata={"n": True})) == 1
    assert await storage.count_threads(ThreadQuery(ids=["t1", "t3", "nope"])) == 2
    found = await storage.search_threads(ThreadQuery(sort_by="thread_id", sort_order="asc"))
    assert [t["thread_id"] for t in found] == ["t1", "t2", "t3"]


async def test_thread_search_by_metadata_follows_every_write(storage: Storage) -> None:
    # Newest first (the default sort), which SQLite answers from an index of metadata keys:
    # every kind of value must find what containment finds, through every write of metadata.
    kinds: dict[str, Json] = {
        "a": {"n": 1, "flag": True, "none": None, "s": "x", "obj": {"k": 1}, "list": ["p", "q"]},
        "b": {"n": 1.0, "flag": False, "s": "y"},
        "c": {"n": "1", "flag": 1, "s": "x"},
    }
    for thread_id, metadata in kinds.items():
        await storage.create_thread(
            NewThread(thread_id=thread_id, metadata=metadata), if_exists="raise"
        )

    async def ids(metadata: Json, **options: Any) -> list[str]:
        found = await storage.search_threads(ThreadQuery(metadata=metadata, **options))
        return [thread["thread_id"] for thread in found]

    assert await ids({"n": 1}) == ["b", "a"]
    assert await ids({"n": 1.0}) == ["b", "a"]
    assert await ids({"n": "1"}) == ["c"]
    assert await ids({"flag": True}) == ["a"]
    assert await ids({"flag": False}) == ["b"]
    assert await ids({"flag": 1}) == ["c"]
    assert await ids({"none": None}) == ["a"]
    assert await ids({"s": None}) == []
    assert await ids({"obj": {"k": 1}}) == ["a"]
    assert await ids({"list": ["q"]}) == ["a"]
    assert await ids({"s": "x", "n": 1}) == ["a"]
    assert await ids({"s": "x"}, sort_order="asc") == ["a", "c"]
    assert await ids({"s": "x"}, limit=1, offset=1) == ["a"]
    assert await ids({"s": "x"}, auth=AuthFilter.parse({"n": {"$eq": "1"}})) == ["c"]
    assert await ids({"s": "x"}, sort_by="updated_at") == ["c", "a"]

    await storage.update_thread("a", ThreadPatch(metadata={"s": "z"}))
    assert await ids({"s": "x"}) == ["c"]
    assert await ids({"s": "z"}) == ["a"]
    assert await ids({"s": "x"}, sort_by="updated_at") == ["c"]
    assert await ids({"n": 1}, sort_by="updated_at") == ["a", "b"]
    await storage.update_thread("b", ThreadPatch(visible=False))
    assert await ids({"n": 1}) == ["a"]
    assert await ids({"n": 1}, visible=False) == ["b"]
    await storage.copy_thread("a", "a-copy")
    assert await ids({"s": "z"}) == ["a-copy", "a"]
    await storage.delete_thread("a")
    assert await ids({"s": "z"}) == ["a-copy"]
    assert await ids({"n": 1}, auth=AuthFilter.parse({"s": "z"})) == ["a-copy"]


async def test_delete_assistant_with_threads(storage: Storage) -> None:
    await storage.create_assistant(NewAssistant(assistant_id="a", graph_id="g"), if_exists="raise")
    await storage.create_thread(
        NewThread(thread_id="mine", metadata={"assistant_id": "a"}, ttl=None), if_exists="raise"
    )
    await storage.create_thread(
        NewThread(thread_id="other", metadata={"assistant_id": "b"}, ttl=None), if_exists="raise"
    )
    await _put_checkpoint(storage, "mine")
    await storage.delete_assistant("a", delete_threads=True)
    assert [t["thread_id"] for t in await storage.search_threads(ThreadQuery())] == ["other"]
    assert await storage.checkpointer.aget_tuple({"configurable": {"thread_id": "mine"}}) is None


async def test_ttl_sweep(storage: Storage, clock: FakeClock) -> None:
    await storage.create_thread(
        NewThread(thread_id="short", metadata={}, ttl={"ttl": 1}), if_exists="raise"
    )
    await storage.create_thread(
        NewThread(thread_id="long", metadata={}, ttl={"ttl": 60}), if_exists="raise"
    )
    await storage.create_thread(
        NewThread(thread_id="none", metadata={}, ttl=None), if_exists="raise"
    )
    assert await storage.sweep_expired_threads() == 0
    clock.advance(timedelta(minutes=2))
    assert await storage.sweep_expired_threads() == 1
    remaining = await storage.search_threads(ThreadQuery(sort_by="thread_id", sort_order="asc"))
    assert [t["thread_id"] for t in remaining] == ["long", "none"]


async def _steps_graph(storage: Storage) -> Any:
    """A real graph on the storage's checkpointer: each invoke adds four checkpoints."""

    class Steps(TypedDict):
        steps: Annotated[list[str], operator.add]

    builder = StateGraph(Steps)
    builder.add_node("one", lambda _: {"steps": ["one"]})
    builder.add_node("two", lambda _: {"steps": ["two"]})
    builder.add_edge(START, "one")
    builder.add_edge("one", "two")
    return builder.compile(checkpointer=storage.checkpointer)


async def _history_length(storage: Storage, thread_id: str) -> int:
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    return len([c async for c in storage.checkpointer.alist(config)])


async def test_ttl_sweep_keep_latest_trims_and_keeps_the_thread(
    storage: Storage, clock: FakeClock
) -> None:
    keep_latest = {"strategy": "keep_latest", "ttl": 1}
    for thread_id, ttl in (
        ("trim", keep_latest),
        ("delta", keep_latest),
        ("held", keep_latest),
        ("gone", {"strategy": "delete", "ttl": 1}),
    ):
        await storage.create_thread(
            NewThread(thread_id=thread_id, metadata={}, ttl=ttl), if_exists="raise"
        )
    graph = await _steps_graph(storage)
    trim = {"configurable": {"thread_id": "trim"}}
    for _ in range(2):
        await graph.ainvoke({"steps": []}, trim)
    await graph.ainvoke({"steps": []}, {"configurable": {"thread_id": "held"}})
    assert await _history_length(storage, "trim") == 8
    # What LangGraph's DeltaChannel leaves in checkpoint metadata.
    for step in range(3):
        await storage.checkpointer.aput(
            {"configurable": {"thread_id": "delta", "checkpoint_ns": ""}},
            empty_checkpoint(),
            # Only the key marks a delta checkpoint; LangGraph's own counters are (int, int) pairs.
            cast(
                CheckpointMetadata,
                {"source": "loop", "step": step, "counters_since_delta_snapshot": {"m": step}},
            ),
            {},
        )
    await storage.update_thread("held", ThreadPatch(lifecycle="locked"))

    clock.advance(timedelta(seconds=59))
    assert await storage.sweep_expired_threads() == 0
    clock.advance(timedelta(seconds=2))
    assert await storage.sweep_expired_threads() == 2  # trim kept, gone deleted

    thread = await storage.get_thread("trim")
    assert thread["ttl"] == keep_latest
    assert await _history_length(storage, "trim") == 1
    latest = await graph.aget_state(trim)
    assert latest.values == {"steps": ["one", "two"] * 2}
    assert latest.parent_config is None
    with pytest.raises(NotFoundError):
        await storage.get_thread("gone")
    # Skipped and left whole: a DeltaChannel rebuilds values from older checkpoints' writes.
    assert await _history_length(storage, "delta") == 3
    assert await _history_length(storage, "held") == 4
    # Trimmed threads no longer count as expired; the delta one is looked at (and skipped)
    # again on each sweep.
    clock.advance(timedelta(minutes=5))
    assert await storage.sweep_expired_threads() == 0
    assert await _history_length(storage, "delta") == 3

    # Activity restarts the TTL: the thread is trimmed again a minute after its next run.
    await graph.ainvoke({"steps": []}, trim)
    await storage.settle_thread("trim", RunOutcome(status="success"))
    clock.advance(timedelta(seconds=30))
    assert await storage.sweep_expired_threads() == 0
    clock.advance(timedelta(seconds=31))
    assert await storage.sweep_expired_threads() == 1
    assert await _history_length(storage, "trim") == 1
    assert (await graph.aget_state(trim)).values == {"steps": ["one", "two"] * 3}


async def test_data_survives_reopen(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    first = SqliteStorage(path)
    await first.setup()
    await first.create_thread(
        NewThread(thread_id="t", metadata={"keep": True}, ttl=None), if_exists="raise"
    )
    await first.create_assistant(NewAssistant(assistant_id="a", graph_id="g"), if_exists="raise")
    await first.store.aput(("ns",), "k", {"v": 1})
    await first.close()
    second = SqliteStorage(path)
    await second.setup()
    try:
        assert (await second.get_thread("t"))["metadata"] == {"keep": True}
        assert (await second.get_assistant("a"))["graph_id"] == "g"
        item = await second.store.aget(("ns",), "k")
        assert item is not None and item.value == {"v": 1}
    finally:
        await second.close()
