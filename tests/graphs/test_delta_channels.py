"""The example graphs keep their conversation in a delta channel: its reducer, what their
checkpoints store, and every state endpoint (state, history, updates and forks, thread copies,
diff, tree) through langgraph_sdk on a thread long enough to cross several snapshots."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, cast

import httpx
import pytest
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    RemoveMessage,
)
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.graph.message import REMOVE_ALL_MESSAGES, add_messages
from langgraph_sdk.client import LangGraphClient
from tests.conftest import json_of

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
_module_numbers = itertools.count()


def _load_module(filename: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"delta_{Path(filename).stem}_{next(_module_numbers)}", GRAPHS / filename
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


STATE = _load_module("state.py")
reduce = STATE.add_messages_batched
FREQUENCY: int = STATE.SNAPSHOT_FREQUENCY
# Two updates of the message list a chat turn (the input, the reply): enough turns to cross
# two snapshots and stop between them.
TURNS = FREQUENCY + FREQUENCY // 4


def _said(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _reply(text: str) -> str:
    return f"[offline model] You said: {text}"


def _conversation(count: int) -> list[str]:
    return [line for n in range(1, count + 1) for line in (f"turn {n}", _reply(f"turn {n}"))]


def _shape(messages: Sequence[BaseMessage]) -> list[tuple[str, str | None, Any]]:
    return [(m.type, m.id, m.content) for m in messages]


def _id(entry: object) -> str:
    checkpoint_id: str = json_of(entry)["checkpoint"]["checkpoint_id"]
    return checkpoint_id


def _contents(values: object) -> list[str]:
    return [m["content"] for m in json_of(values).get("messages", [])]


# A write sequence touching every rule: appends, replace by id, remove, remove-all, chunks,
# dicts, a bare string and a `(role, text)` pair (neither has an id).
WRITES: list[Any] = [
    [HumanMessage("a", id="1"), AIMessage("b", id="2")],
    {"role": "user", "content": "c", "id": "3"},
    [AIMessage("b edited", id="2"), RemoveMessage(id="1")],
    "bare text",
    AIMessageChunk(content="chunk", id="4"),
    [("user", "pair"), HumanMessage("e", id="5")],
    [RemoveMessage(id=REMOVE_ALL_MESSAGES), HumanMessage("after reset", id="6")],
    [HumanMessage("f", id="7"), RemoveMessage(id="7"), HumanMessage("f again", id="7")],
]


async def test_examples_keep_messages_in_a_delta_channel() -> None:
    for name in ("chat", "agent", "approval"):
        channel = _load_module(f"{name}.py").graph.channels["messages"]
        assert isinstance(channel, DeltaChannel), name
        assert channel.snapshot_frequency == FREQUENCY


@pytest.mark.parametrize("split", range(len(WRITES) + 1))
async def test_reducer_is_batching_invariant(split: int) -> None:
    start = [HumanMessage("seed", id="0")]
    at_once = reduce(start, WRITES)
    in_two = reduce(reduce(start, WRITES[:split]), WRITES[split:])
    one_by_one = start
    for write in WRITES:
        one_by_one = reduce(one_by_one, [write])
    assert _shape(in_two) == _shape(at_once)
    assert _shape(one_by_one) == _shape(at_once)
    assert [m.content for m in at_once] == ["after reset", "f again"]


async def test_reducer_matches_add_messages() -> None:
    start: list[Any] = [HumanMessage("seed", id="0")]
    # add_messages gives messages without ids random ones, so compare on writes that have ids.
    writes = [WRITES[i] for i in (0, 1, 2, 4, 6, 7)]
    expected = start
    for count, write in enumerate(writes, start=1):
        # Given lists, add_messages returns a list (its annotation also allows one message).
        expected = cast(list[Any], add_messages(expected, write))
        batched = reduce(start, writes[:count])
        assert _shape(batched) == _shape(expected)
        assert all(type(m) is not AIMessageChunk for m in batched)


async def test_reducer_append_path_matches_the_general_fold() -> None:
    # Appending to a long list skips rebuilding its index; wherever it applies it must give
    # what folding every message would. Every prefix of WRITES, as state and as the next write.
    taken = 0
    for split in range(len(WRITES)):
        state = reduce([HumanMessage("seed", id="0")], WRITES[:split])
        for write in [*WRITES[split:], "new bare text", [("user", "pair")], AIMessage("z")]:
            appended = STATE._append_only(state, [write])
            if appended is not None:
                taken += 1
                assert _shape(appended) == _shape(STATE._fold(state, [write]))
    assert taken >= 10
    # Where it may differ it steps aside: a replaced id, a removal, a chunk in the state.
    state = [HumanMessage("a", id="1"), AIMessage("b", id="2")]
    assert STATE._append_only(state, [AIMessage("b2", id="2")]) is None
    assert STATE._append_only(state, [RemoveMessage(id="1")]) is None
    assert STATE._append_only([AIMessageChunk(content="c", id="3")], ["x"]) is None
    assert STATE._append_only([HumanMessage("a", id="1")] * 2, ["x"]) is None


async def test_reducer_append_path_remembers_ids_only_along_one_line() -> None:
    # Each list the append path returns keeps its id set for the next append. A list appended
    # to twice (a fork), or grown in place, must still give what the general fold gives.
    base = STATE.add_messages_batched([], [HumanMessage("seed", id="0")])
    line = base
    for turn in range(30):
        line = STATE.add_messages_batched(line, [f"bare {turn}", AIMessage(f"r{turn}")])
    assert [m.id for m in line] == [
        m.id
        for m in STATE._fold(
            base, [item for turn in range(30) for item in (f"bare {turn}", AIMessage(f"r{turn}"))]
        )
    ]
    fork = STATE.add_messages_batched(base, ["bare 0"])  # base's set went into line's
    assert _shape(fork) == _shape(STATE._fold(base, ["bare 0"]))
    again = STATE.add_messages_batched(line[:-1], [line[-1]])  # a copy: no remembered set
    assert _shape(again) == _shape(line)
    grown = STATE.add_messages_batched(line, [])
    grown.append(HumanMessage("in place", id="dup"))  # a node breaking the rules
    assert _shape(STATE.add_messages_batched(grown, [AIMessage("x", id="dup")])) == _shape(
        STATE._fold(grown, [AIMessage("x", id="dup")])
    )


async def test_reducer_gives_the_same_ids_on_every_replay() -> None:
    first = reduce([], ["hello", ("assistant", "hi"), "hello"])
    again = reduce([], ["hello", ("assistant", "hi"), "hello"])
    assert [m.id for m in first] == [m.id for m in again]
    assert len({m.id for m in first}) == 3
    assert [m.type for m in first] == ["human", "ai", "human"]


async def test_reducer_refuses_to_remove_an_unknown_id() -> None:
    with pytest.raises(ValueError) as caught:
        reduce([HumanMessage("a", id="1")], [RemoveMessage(id="nope")])
    assert (
        str(caught.value) == "Attempting to delete a message with an ID that doesn't exist ('nope')"
    )


async def test_checkpoints_store_the_list_only_in_snapshots(tmp_path: Path) -> None:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "delta.sqlite")) as saver:
        chat = _load_module("chat.py").graph.copy(update={"checkpointer": saver})
        config: Any = {"configurable": {"thread_id": "t"}}
        for number in range(1, TURNS + 1):
            await chat.ainvoke(_said(f"turn {number}"), config)
        checkpoints = [c async for c in saver.alist(config)]
        state = await chat.aget_state(config)
    holding = [c for c in checkpoints if "messages" in c.checkpoint["channel_values"]]
    # Three checkpoints a turn, of which two update the list; a snapshot every FREQUENCY updates.
    assert len(checkpoints) == 3 * TURNS
    assert len(holding) == (2 * TURNS) // FREQUENCY
    assert [m.content for m in state.values["messages"]] == _conversation(TURNS)


async def _chat(client: LangGraphClient, thread_id: str, *texts: str) -> list[str]:
    run_ids = []
    for text in texts:
        run = await client.runs.create(thread_id, "chat", input=_said(text))
        await client.runs.join(thread_id, run["run_id"])
        run_ids.append(run["run_id"])
    return run_ids


async def _long_thread(client: LangGraphClient) -> tuple[str, list[str]]:
    thread_id: str = (await client.threads.create())["thread_id"]
    run_ids = await _chat(client, thread_id, *(f"turn {n}" for n in range(1, TURNS + 1)))
    return thread_id, run_ids


async def _history(client: LangGraphClient, thread_id: str, **kwargs: Any) -> list[dict[str, Any]]:
    return [json_of(s) for s in await client.threads.get_history(thread_id, limit=1000, **kwargs)]


@pytest.mark.timeout(60)
async def test_state_and_history_replay_every_checkpoint(client: LangGraphClient) -> None:
    thread_id, run_ids = await _long_thread(client)
    state = await client.threads.get_state(thread_id)
    final = json_of(state["values"])["messages"]
    assert _contents(state["values"]) == _conversation(TURNS)
    assert len({m["id"] for m in final}) == len(final)

    history = await _history(client, thread_id)
    assert len(history) == 3 * TURNS
    assert history[0] == state
    # Each checkpoint holds a prefix of the conversation, snapshots or not: a turn's input
    # checkpoint has its human message, the one before the model too, the end the reply.
    lengths = [len(s["values"].get("messages", [])) for s in reversed(history)]
    assert lengths == [n for t in range(TURNS) for n in (2 * t, 2 * t + 1, 2 * t + 2)]
    for entry in history:
        messages = entry["values"].get("messages", [])
        assert messages == final[: len(messages)]

    # A page before a checkpoint, and the metadata filter, read the same snapshots.
    pivot = history[len(history) // 2]
    before = await client.threads.get_history(thread_id, before=_id(pivot), limit=5)
    position = len(history) // 2 + 1
    assert before == history[position : position + 5]
    middle_run = run_ids[TURNS // 2]
    of_run = await _history(client, thread_id, metadata={"run_id": middle_run})
    assert [s["metadata"]["step"] for s in of_run] == [
        s["metadata"]["step"] for s in history if s["metadata"].get("run_id") == middle_run
    ]
    assert of_run == [s for s in history if s["metadata"].get("run_id") == middle_run]
    inputs = await _history(client, thread_id, metadata={"source": "input"})
    assert [len(s["values"].get("messages", [])) for s in inputs] == [
        2 * t for t in reversed(range(TURNS))
    ]


@pytest.mark.timeout(60)
async def test_updates_fork_and_copy_on_a_delta_channel(client: LangGraphClient) -> None:
    thread_id, _ = await _long_thread(client)
    history = await _history(client, thread_id)
    tip = history[0]
    # The end of a turn in the middle, between two snapshots.
    middle = [s for s in history if s["next"] == []][TURNS // 2]
    kept = middle["values"]["messages"]
    edit = {**kept[-1], "content": "edited"}

    forked = await client.threads.update_state(
        thread_id, {"messages": [edit]}, as_node="model", checkpoint_id=_id(middle)
    )
    fork = await client.threads.get_state(thread_id)
    assert fork["checkpoint"] == forked["checkpoint"]
    assert json_of(fork["parent_checkpoint"])["checkpoint_id"] == _id(middle)
    assert _contents(fork["values"]) == [*_contents(middle["values"])[:-1], "edited"]
    # The fork goes on; the old branch still reads as it was.
    after = json_of(await client.runs.wait(thread_id, "chat", input=_said("on the fork")))
    assert _contents(after)[-3:] == ["edited", "on the fork", _reply("on the fork")]
    assert await client.threads.get_state(thread_id, checkpoint_id=_id(tip)) == tip

    # Removing a message by id is a write too, replayed like the others.
    removed = after["messages"][0]["id"]
    await client.threads.update_state(
        thread_id, {"messages": [{"type": "remove", "id": removed, "content": ""}]}, as_node="model"
    )
    without = await client.threads.get_state(thread_id)
    assert [m["id"] for m in json_of(without["values"])["messages"]] == [
        m["id"] for m in after["messages"][1:]
    ]

    # __copy__ of a past checkpoint brings its list back as the latest, unchanged.
    await client.threads.update_state(thread_id, None, as_node="__copy__", checkpoint_id=_id(tip))
    copied = await client.threads.get_state(thread_id)
    assert copied["values"] == tip["values"]
    assert json_of(copied["metadata"])["source"] == "fork"
    again = json_of(await client.runs.wait(thread_id, "chat", input=_said("after the copy")))
    assert _contents(again) == [*_conversation(TURNS), "after the copy", _reply("after the copy")]


@pytest.mark.timeout(60)
async def test_thread_copy_keeps_the_delta_history(client: LangGraphClient) -> None:
    thread_id, _ = await _long_thread(client)
    original = await _history(client, thread_id)
    # The SDK types `copy` as returning None; the API answers with the new thread.
    copy_id = json_of(await client.threads.copy(thread_id))["thread_id"]  # type: ignore[func-returns-value]
    copy = await _history(client, copy_id)

    def _without_thread(entries: list[dict[str, Any]]) -> list[Any]:
        return [(_id(s), s["values"], s["next"], s["metadata"]["step"]) for s in entries]

    assert _without_thread(copy) == _without_thread(original)
    # The copy goes on from its own history; the original is untouched.
    values = json_of(await client.runs.wait(copy_id, "chat", input=_said("in the copy")))
    assert _contents(values) == [*_conversation(TURNS), "in the copy", _reply("in the copy")]
    assert await _history(client, thread_id) == original


@pytest.mark.timeout(60)
async def test_diff_and_tree_on_a_delta_channel(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id, _ = await _long_thread(client)
    history = await _history(client, thread_id)
    ends = [s for s in history if s["next"] == []]
    assert len(ends) == TURNS

    latest = (await http.get(f"/threads/{thread_id}/history/diff")).json()
    assert latest["messages"]["messages"]["added"] == [history[0]["values"]["messages"][-1]]
    # Across every snapshot: from the end of the first turn to the latest.
    whole = await http.get(
        f"/threads/{thread_id}/history/diff", params={"from": _id(ends[-1]), "to": _id(ends[0])}
    )
    body = whole.json()["messages"]["messages"]
    assert body["added"] == history[0]["values"]["messages"][2:]
    assert body["removed"] == []
    assert body["changed"] == []

    tree = (await http.get(f"/threads/{thread_id}/tree")).json()
    assert [n["checkpoint_id"] for n in tree] == [_id(s) for s in reversed(history)]
    assert [n["next"] for n in tree] == [s["next"] for s in reversed(history)]
    assert [n["parent_checkpoint_id"] for n in tree[1:]] == [n["checkpoint_id"] for n in tree[:-1]]


async def test_messages_without_ids_keep_their_ids_between_reads(
    client: LangGraphClient,
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "chat", input={"messages": "plain text"})
    first = await client.threads.get_state(thread_id)
    again = await client.threads.get_state(thread_id)
    assert _contents(first["values"]) == ["plain text", _reply("plain text")]
    assert json_of(first["values"])["messages"][0]["id"]
    assert again["values"] == first["values"]


async def test_agent_tool_calls_through_a_delta_channel(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    await client.runs.wait(thread_id, "approval", input=_said("what is 6 * 7"))
    waiting = await client.threads.get_state(thread_id)
    assert waiting["next"] == ["approve"]
    resumed = json_of(await client.runs.wait(thread_id, "approval", command={"resume": "approve"}))
    assert [m["type"] for m in resumed["messages"]] == ["human", "ai", "tool", "ai"]
    assert resumed["messages"][2]["content"] == "42"
    assert resumed["messages"][-1]["content"] == "The result is 42."
    tool_call = resumed["messages"][1]["tool_calls"][0]
    assert resumed["messages"][2]["tool_call_id"] == tool_call["id"]
    assert (await client.threads.get_state(thread_id))["values"] == resumed
