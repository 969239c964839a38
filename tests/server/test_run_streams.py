"""Run streams as the SDK reads them: every stream mode, subgraph event names, joining and
resuming a run's stream (`Last-Event-ID`), reconnects after a drop, bursts, heartbeats."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import re
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import RunCreateMetadata, StreamMode, StreamPart

REPLY = "[offline model] You said: hello there friend"
CHAT_INPUT: dict[str, Any] = {"messages": [{"role": "user", "content": "hello there friend"}]}
REPLY_TOKENS = 7  # the offline model streams one chunk per word
STEPS: dict[str, Any] = {"steps": []}
# The `slow` graph under stream_mode=["values", "updates"]: ids 1..9.
SLOW_EVENTS = [
    "metadata",
    "values",
    "updates",
    "values",
    "updates",
    "values",
    "updates",
    "values",
    "end",
]
SLOW_MODES = ["values", "updates"]
BURST = 500
NAMESPACE = re.compile(r"(?P<node>[a-z_]+):(?P<task>[0-9a-f-]{36})")
STREAM_TIMEOUT = 15


@dataclass(frozen=True, slots=True)
class Frame:
    event: str
    data: Any
    id: int


async def frames(response: httpx.Response) -> AsyncGenerator[Frame, None]:
    """Parse a raw SSE body strictly: `event`, `data`, `id` lines in that order per frame."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            lines.append(line)
            continue
        if not lines:
            continue
        assert [field.partition(": ")[0] for field in lines] == ["event", "data", "id"], lines
        event, data, event_id = (field.partition(": ")[2] for field in lines)
        lines = []
        yield Frame(event=event, data=json.loads(data), id=int(event_id))
    assert not lines, f"stream ended mid-frame: {lines}"


async def read_all(response: httpx.Response) -> list[Frame]:
    async with asyncio.timeout(STREAM_TIMEOUT):
        return [frame async for frame in frames(response)]


async def read_until(stream: AsyncIterator[Frame], event_id: int) -> list[Frame]:
    """Frames up to and including `event_id`, leaving the rest of the stream unread."""
    read: list[Frame] = []
    async with asyncio.timeout(STREAM_TIMEOUT):
        async for frame in stream:
            read.append(frame)
            if frame.id >= event_id:
                return read
    raise AssertionError(f"stream ended before event {event_id}: {read}")


async def wait_for_event(response: httpx.Response, event_id: int) -> None:
    """Read `response` until `event_id`, to know the run has got that far."""
    async with contextlib.aclosing(frames(response)) as stream:
        await read_until(stream, event_id)


async def collect(parts: AsyncIterator[StreamPart]) -> list[StreamPart]:
    async with asyncio.timeout(STREAM_TIMEOUT):
        return [part async for part in parts]


async def stream_parts(
    client: LangGraphClient, graph: str, stream_mode: str | Sequence[str], **kwargs: Any
) -> list[StreamPart]:
    thread = await client.threads.create()
    kwargs.setdefault("input", STEPS)
    return await collect(
        client.runs.stream(thread["thread_id"], graph, stream_mode=stream_mode, **kwargs)  # type: ignore[arg-type]
    )


def names(parts: Sequence[StreamPart | Frame]) -> list[str]:
    return [part.event for part in parts]


def assert_ids_from(parts: Sequence[StreamPart], first: int) -> None:
    assert [int(part.id or 0) for part in parts] == list(range(first, first + len(parts)))


async def start_slow(client: LangGraphClient, *, delay: float = 0.3) -> tuple[str, str]:
    thread = await client.threads.create()
    run = await client.runs.create(
        thread["thread_id"],
        "slow",
        input=STEPS,
        stream_mode=SLOW_MODES,  # type: ignore[arg-type]
        context={"delay": delay},
    )
    return thread["thread_id"], run["run_id"]


def join_url(thread_id: str, run_id: str) -> str:
    return f"/threads/{thread_id}/runs/{run_id}/stream"


# Stream modes, one at a time and together


async def test_stream_values_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", "values", context={"delay": 0})
    assert names(parts) == ["metadata", "values", "values", "values", "values", "end"]
    assert [p.data for p in parts[1:-1]] == [
        {"steps": []},
        {"steps": ["one"]},
        {"steps": ["one", "two"]},
        {"steps": ["one", "two", "three"]},
    ]
    assert parts[-1].data is None
    assert_ids_from(parts, 1)


async def test_stream_updates_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", "updates", context={"delay": 0})
    assert names(parts) == ["metadata", "updates", "updates", "updates", "end"]
    assert [p.data for p in parts[1:-1]] == [
        {"one": {"steps": ["one"]}},
        {"two": {"steps": ["two"]}},
        {"three": {"steps": ["three"]}},
    ]


async def test_stream_messages_tuple_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "chat", "messages-tuple", input=CHAT_INPUT)
    assert names(parts) == ["metadata", *["messages"] * REPLY_TOKENS, "end"]
    chunks = [p.data for p in parts[1:-1]]
    for chunk in chunks:
        assert isinstance(chunk, list) and len(chunk) == 2
        message, metadata = chunk
        assert message["type"] == "AIMessageChunk"
        assert message["id"] == chunks[0][0]["id"]
        assert metadata["langgraph_node"] == "model"
        assert metadata["graph_id"] == "chat"
    assert "".join(message["content"] for message, _ in chunks) == REPLY


async def test_stream_legacy_messages_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "chat", "messages", input=CHAT_INPUT)
    assert names(parts) == [
        "metadata",
        "messages/metadata",
        *["messages/partial"] * REPLY_TOKENS,
        "messages/complete",
        "end",
    ]
    [(message_id, described)] = parts[1].data.items()
    assert described["metadata"]["langgraph_node"] == "model"
    partials = [p.data for p in parts[2:-2]]
    contents = []
    for partial in partials:
        [message] = partial
        assert message["id"] == message_id
        contents.append(message["content"])
    for shorter, longer in itertools.pairwise(contents):
        assert longer.startswith(shorter) and len(longer) > len(shorter)
    assert contents[-1] == REPLY
    [complete] = parts[-2].data
    assert complete["id"] == message_id
    assert complete["type"] == "ai"
    assert complete["content"] == REPLY


async def test_stream_events_mode_with_values(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", ["events", "values"], context={"delay": 0})
    assert set(names(parts)) == {"metadata", "events", "values", "end"}
    assert (parts[0].event, parts[-1].event) == ("metadata", "end")
    events = [p.data for p in parts if p.event == "events"]
    assert all(e["event"] in {"on_chain_start", "on_chain_stream", "on_chain_end"} for e in events)
    assert (events[0]["event"], events[0]["name"]) == ("on_chain_start", "LangGraph")
    assert (events[-1]["event"], events[-1]["name"]) == ("on_chain_end", "LangGraph")
    started = [e["name"] for e in events if e["event"] == "on_chain_start"]
    assert started == ["LangGraph", "one", "two", "three"]
    values = [p.data["steps"] for p in parts if p.event == "values"]
    assert values == [[], ["one"], ["one", "two"], ["one", "two", "three"]]


async def test_stream_events_mode_alone_has_no_other_modes(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", ["events"], context={"delay": 0})
    assert set(names(parts[1:-1])) == {"events"}


async def test_stream_events_mode_with_messages_tuple(rclient: LangGraphClient) -> None:
    parts = await stream_parts(
        rclient, "chat", ["events", "messages-tuple", "updates"], input=CHAT_INPUT
    )
    events = [p.data for p in parts if p.event == "events"]
    streamed = [
        e["data"]["chunk"]["content"] for e in events if e["event"] == "on_chat_model_stream"
    ]
    tokens = [p.data[0]["content"] for p in parts if p.event == "messages"]
    assert "".join(tokens) == REPLY
    assert streamed == tokens
    assert [e["event"] for e in events].count("on_chat_model_end") == 1
    [update] = [p.data for p in parts if p.event == "updates"]
    assert update["model"]["messages"][0]["content"] == REPLY


async def test_stream_debug_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", "debug", context={"delay": 0})
    assert names(parts) == ["metadata", *["debug"] * 11, "end"]
    debug = [p.data for p in parts[1:-1]]
    assert [(d["type"], d["step"]) for d in debug] == [
        ("checkpoint", -1),
        ("checkpoint", 0),
        *[(kind, step) for step in (1, 2, 3) for kind in ("task", "task_result", "checkpoint")],
    ]
    tasks = [d["payload"]["name"] for d in debug if d["type"] == "task"]
    assert tasks == ["one", "two", "three"]
    assert debug[-1]["payload"]["values"] == {"steps": ["one", "two", "three"]}


async def test_stream_custom_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "custom", "custom")
    assert names(parts) == ["metadata", "custom", "custom", "custom", "end"]
    assert [p.data for p in parts[1:-1]] == [{"progress": 0}, {"progress": 1}, {"progress": 2}]


async def test_stream_tasks_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", "tasks", context={"delay": 0})
    assert names(parts) == ["metadata", *["tasks"] * 6, "end"]
    tasks = [p.data for p in parts[1:-1]]
    assert [t["name"] for t in tasks] == ["one", "one", "two", "two", "three", "three"]
    starts, results = tasks[0::2], tasks[1::2]
    assert [t["input"] for t in starts] == [
        {"steps": []},
        {"steps": ["one"]},
        {"steps": ["one", "two"]},
    ]
    assert [(t["result"], t["error"], t["interrupts"]) for t in results] == [
        ({"steps": [name]}, None, []) for name in ("one", "two", "three")
    ]
    assert [t["id"] for t in starts] == [t["id"] for t in results]


async def test_stream_checkpoints_mode(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "slow", "checkpoints", context={"delay": 0})
    assert names(parts) == ["metadata", *["checkpoints"] * 5, "end"]
    checkpoints = [p.data for p in parts[1:-1]]
    for checkpoint in checkpoints:
        assert set(checkpoint) >= {"config", "metadata", "values", "next", "parent_config", "tasks"}
    assert [c["next"] for c in checkpoints] == [["__start__"], ["one"], ["two"], ["three"], []]
    assert [c["metadata"]["step"] for c in checkpoints] == [-1, 0, 1, 2, 3]
    assert checkpoints[-1]["values"] == {"steps": ["one", "two", "three"]}
    assert checkpoints[0]["parent_config"] is None
    for parent, child in itertools.pairwise(checkpoints):
        parent_id = parent["config"]["configurable"]["checkpoint_id"]
        assert child["parent_config"]["configurable"]["checkpoint_id"] == parent_id


async def test_stream_several_modes_at_once(rclient: LangGraphClient) -> None:
    modes = ["values", "updates", "custom", "tasks", "checkpoints", "debug"]
    parts = await stream_parts(rclient, "custom", modes)
    assert names(parts) == [
        "metadata",
        "checkpoints",
        "debug",
        "values",
        "checkpoints",
        "debug",
        "tasks",
        "debug",
        "custom",
        "custom",
        "custom",
        "updates",
        "tasks",
        "debug",
        "values",
        "checkpoints",
        "debug",
        "end",
    ]
    assert [p.data for p in parts if p.event == "custom"] == [{"progress": i} for i in range(3)]
    assert [p.data for p in parts if p.event == "updates"] == [{"chatty": {"steps": ["chatty"]}}]
    assert_ids_from(parts, 1)


async def test_stream_interrupt_values_sent_once(rclient: LangGraphClient) -> None:
    parts = await stream_parts(rclient, "nested", SLOW_MODES)
    # LangGraph itself ends an interrupted `values` stream with the state plus `__interrupt__`;
    # the server must not repeat that event.
    assert names(parts) == ["metadata", "values", "updates", "values", "updates", "values", "end"]
    [pending] = parts[-2].data["__interrupt__"]
    assert pending["value"] == {"question": "continue?"}
    assert parts[-2].data["steps"] == ["before"]
    assert parts[-3].data == {"__interrupt__": [pending]}


# Subgraphs


async def test_stream_subgraphs_names_events_by_namespace(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    parts = await collect(
        rclient.runs.stream(
            tid, "nested", input=STEPS, stream_mode=["values", "updates"], stream_subgraphs=True
        )
    )
    state = await rclient.threads.get_state(tid)
    [child_task] = state["tasks"]
    namespace = f"child:{child_task['id']}"
    assert NAMESPACE.fullmatch(namespace)
    nested = [p for p in parts if "|" in p.event]
    assert names(nested) == [f"values|{namespace}", f"updates|{namespace}", f"values|{namespace}"]
    assert nested[0].data == {"steps": ["before"]}
    assert nested[1].data["__interrupt__"][0]["value"] == {"question": "continue?"}
    parent = [p.event for p in parts if "|" not in p.event]
    assert set(parent) == {"metadata", "values", "updates", "end"}
    # Parent events before the subgraph starts, the subgraph's, then the parent's interrupt.
    first_nested = names(parts).index(f"values|{namespace}")
    assert names(parts)[:first_nested] == ["metadata", "values", "updates", "values"]
    assert names(parts)[first_nested + 3] == "updates"
    assert_ids_from(parts, 1)


async def test_stream_without_subgraphs_has_no_namespaced_events(rclient: LangGraphClient) -> None:
    modes = ["values", "updates", "custom", "tasks", "checkpoints", "debug"]
    parts = await stream_parts(rclient, "nested", modes)
    assert not [p.event for p in parts if "|" in p.event]
    tasks = [p.data["name"] for p in parts if p.event == "tasks"]
    assert "ask" not in tasks  # the subgraph's own node
    assert tasks == ["before", "before", "child", "child"]


async def test_stream_subgraph_tokens_carry_namespace(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    parts = await collect(
        rclient.runs.stream(
            tid,
            "chat_nested",
            input=CHAT_INPUT,
            stream_mode=["messages-tuple", "messages"],
            stream_subgraphs=True,
        )
    )
    event_names = names(parts)
    namespace = event_names[1].partition("|")[2]
    match = NAMESPACE.fullmatch(namespace)
    assert match and match["node"] == "agent", event_names
    tuples = [p.data for p in parts if p.event == f"messages|{namespace}"]
    assert len(tuples) == REPLY_TOKENS
    assert "".join(message["content"] for message, _ in tuples) == REPLY
    assert {metadata["langgraph_node"] for _, metadata in tuples} == {"reply"}
    assert event_names.count(f"messages/metadata|{namespace}") == 1
    assert event_names.count(f"messages/partial|{namespace}") == REPLY_TOKENS
    [complete] = [p.data for p in parts if p.event == f"messages/complete|{namespace}"]
    assert complete[0]["content"] == REPLY
    assert set(event_names) == {
        "metadata",
        f"messages|{namespace}",
        f"messages/metadata|{namespace}",
        f"messages/partial|{namespace}",
        f"messages/complete|{namespace}",
        "end",
    }


async def test_stream_subgraph_reply_without_subgraphs_is_one_message(
    rclient: LangGraphClient,
) -> None:
    # LangGraph (astream with subgraphs=False) hands a subgraph's reply to the parent's stream
    # as one whole message from the parent's node; the tokens stay inside the subgraph.
    parts = await stream_parts(rclient, "chat_nested", "messages-tuple", input=CHAT_INPUT)
    assert names(parts) == ["metadata", "messages", "end"]
    message, metadata = parts[1].data
    assert (message["type"], message["content"]) == ("ai", REPLY)
    assert metadata["langgraph_node"] == "agent"
    legacy = await stream_parts(rclient, "chat_nested", "messages", input=CHAT_INPUT)
    assert names(legacy) == ["metadata", "messages/metadata", "messages/complete", "end"]
    assert legacy[2].data[0]["content"] == REPLY


# Joining a run's stream: Last-Event-ID


async def test_join_stream_replays_everything_with_minus_one(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient)
    async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "-1"}) as first:
        assert first.status_code == 200
        assert first.headers["location"] == join_url(tid, rid)
        assert first.headers["content-location"] == f"/threads/{tid}/runs/{rid}"
        stream = frames(first)
        head = await read_until(stream, 3)  # the run is under way: step "one" is done
        async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "-1"}) as late:
            replayed = await read_all(late)
        rest = [frame async for frame in stream]
    for seen in (head + rest, replayed):
        assert names(seen) == SLOW_EVENTS
        assert [f.id for f in seen] == list(range(1, len(SLOW_EVENTS) + 1))
    assert replayed == head + rest
    assert replayed[0].data == {"run_id": rid, "attempt": 1}


async def test_join_stream_resumes_after_last_event_id(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient)
    async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "-1"}) as watch:
        await wait_for_event(watch, 3)
        async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "3"}) as r:
            resumed = await read_all(r)
    assert [f.id for f in resumed] == list(range(4, len(SLOW_EVENTS) + 1))
    assert names(resumed) == SLOW_EVENTS[3:]
    assert resumed[0].data == {"steps": ["one"]}


async def test_join_stream_without_last_event_id_gets_only_new_events(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient)
    async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "-1"}) as watch:
        await wait_for_event(watch, 3)
        async with rhttp.stream("GET", join_url(tid, rid)) as r:
            live = await read_all(r)
    ids = [f.id for f in live]
    assert ids[0] > 3, "events published before joining were replayed"
    assert ids == list(range(ids[0], len(SLOW_EVENTS) + 1))
    assert names(live) == SLOW_EVENTS[ids[0] - 1 :]
    assert "updates" in names(live)  # steps two and three happen after joining


async def test_join_stream_after_run_ended_replays_from_retention(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient, delay=0)
    await rclient.runs.join(tid, rid)
    assert (await rclient.runs.get(tid, rid))["status"] == "success"
    url = join_url(tid, rid)
    async with rhttp.stream("GET", url, headers={"Last-Event-ID": "-1"}) as r:
        everything = await read_all(r)
    assert names(everything) == SLOW_EVENTS
    assert [f.id for f in everything] == list(range(1, len(SLOW_EVENTS) + 1))
    async with rhttp.stream("GET", url, headers={"Last-Event-ID": "5"}) as r:
        tail = await read_all(r)
    assert tail == everything[5:]
    for header in ({}, {"Last-Event-ID": "9"}, {"Last-Event-ID": "99"}):
        async with rhttp.stream("GET", url, headers=header) as r:
            assert r.status_code == 200
            assert await read_all(r) == [], header
    response = await rhttp.get(url, headers={"Last-Event-ID": "abc"})
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_last_event_id"


async def test_sdk_join_stream_with_last_event_id(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient, delay=0.2)
    async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "-1"}) as watch:
        await wait_for_event(watch, 2)
        parts = await collect(rclient.runs.join_stream(tid, rid, last_event_id="2"))
    assert names(parts) == SLOW_EVENTS[2:]
    assert [p.id for p in parts] == [str(i) for i in range(3, len(SLOW_EVENTS) + 1)]
    assert parts[0].data == {"one": {"steps": ["one"]}}
    again = await collect(rclient.runs.join_stream(tid, rid, last_event_id="2"))
    assert again == parts


async def test_join_stream_sends_only_the_requested_modes(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient, delay=0)
    await rclient.runs.join(tid, rid)
    # As a user writes it: the ids are the run's own, so the gaps show what was left out.
    parts = await collect(
        rclient.runs.join_stream(tid, rid, stream_mode="updates", last_event_id="-1")
    )
    assert names(parts) == ["metadata", "updates", "updates", "updates", "end"]
    assert [p.id for p in parts] == ["1", "3", "5", "7", "9"]
    both = await collect(
        rclient.runs.join_stream(tid, rid, stream_mode=["values", "updates"], last_event_id="-1")
    )
    assert names(both) == SLOW_EVENTS
    # No mode named (the SDK then sends an empty `stream_mode=`): everything.
    assert names(await collect(rclient.runs.join_stream(tid, rid, last_event_id="-1"))) == (
        SLOW_EVENTS
    )
    # A mode the run does not stream: only what every stream carries.
    async with rhttp.stream(
        "GET", join_url(tid, rid), params={"stream_mode": "custom"}, headers={"Last-Event-ID": "-1"}
    ) as r:
        assert r.status_code == 200
        # Where the SDK reconnects after a drop: the same selection.
        assert r.headers["location"] == join_url(tid, rid) + "?stream_mode=custom"
        assert names(await read_all(r)) == ["metadata", "end"]


async def test_join_stream_mode_matches_subgraph_and_message_events(
    rclient: LangGraphClient,
) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    modes: list[StreamMode] = ["values", "updates", "messages-tuple"]
    parts = await collect(
        rclient.runs.stream(
            tid,
            "chat_nested",
            input=CHAT_INPUT,
            stream_mode=modes,
            stream_subgraphs=True,  # type: ignore[arg-type]
        )
    )
    rid = parts[0].data["run_id"]
    updates = await collect(
        rclient.runs.join_stream(tid, rid, stream_mode="updates", last_event_id="-1")
    )
    expected = [p for p in parts if p.event.partition("|")[0] in ("metadata", "updates", "end")]
    assert any("|" in p.event for p in expected), names(parts)
    assert updates == expected
    # `messages-tuple` events are named `messages`, in the parent and in the subgraph.
    tuples = await collect(
        rclient.runs.join_stream(tid, rid, stream_mode="messages-tuple", last_event_id="-1")
    )
    expected = [p for p in parts if p.event.partition("|")[0] in ("metadata", "messages", "end")]
    assert len(expected) == REPLY_TOKENS + 2
    assert tuples == expected


async def test_join_stream_unknown_mode_is_422(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient, delay=0)
    response = await rhttp.get(join_url(tid, rid), params={"stream_mode": ["values", "valeus"]})
    assert response.status_code == 422
    assert response.json() == {
        "detail": 'stream_mode: unknown stream mode "valeus"; the modes are values, updates, '
        "messages, messages-tuple, events, debug, custom, tasks, checkpoints",
        "code": "invalid_stream_mode",
    }


async def test_stream_reconnect_after_drop_has_no_gaps_or_duplicates(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    body = {
        "assistant_id": "slow",
        "input": STEPS,
        "stream_mode": SLOW_MODES,
        "context": {"delay": 0.3},
    }
    async with rhttp.stream("POST", f"/threads/{tid}/runs/stream", json=body) as r:
        assert r.status_code == 200
        location = r.headers["location"]
        async with contextlib.aclosing(frames(r)) as stream:
            before = await read_until(stream, 3)
    # Dropped mid-run (on_disconnect defaults to continue); events go on while we are away.
    await asyncio.sleep(0.4)
    rid = location.split("/")[-2]
    async with rhttp.stream("GET", location, headers={"Last-Event-ID": str(before[-1].id)}) as r:
        after = await read_all(r)
    union = before + after
    assert [f.id for f in union] == list(range(1, len(SLOW_EVENTS) + 1))
    assert names(union) == SLOW_EVENTS
    assert union[-2].data == {"steps": ["one", "two", "three"]}
    assert (await rclient.runs.get(tid, rid))["status"] == "success"


# Bursts


def assert_burst(seen: Sequence[StreamPart | Frame]) -> None:
    assert names(seen) == ["metadata", *["custom"] * BURST, "end"]
    assert [int(part.id or 0) for part in seen] == list(range(1, BURST + 3))
    assert [part.data for part in seen[1:-1]] == [{"n": n} for n in range(BURST)]


async def test_burst_reaches_creator_and_joiners_in_order(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    # A slow run holds the thread, so the burst's run waits pending while everyone subscribes.
    tid, blocker = await start_slow(rclient, delay=0.2)
    created: list[RunCreateMetadata] = []
    announced = asyncio.Event()

    def on_run_created(metadata: RunCreateMetadata) -> None:
        created.append(metadata)
        announced.set()

    creator = asyncio.create_task(
        collect(
            rclient.runs.stream(
                tid,
                "bursty",
                input=STEPS,
                stream_mode="custom",
                multitask_strategy="enqueue",
                on_run_created=on_run_created,
            )
        )
    )
    async with asyncio.timeout(STREAM_TIMEOUT):
        await announced.wait()
    rid = created[0]["run_id"]
    async with (
        rhttp.stream("GET", join_url(tid, rid)) as one,
        rhttp.stream("GET", join_url(tid, rid)) as two,
    ):
        # Both subscribed (headers are sent after subscribing) before the burst began.
        assert (await rclient.runs.get(tid, rid))["status"] == "pending"
        joined = await asyncio.gather(read_all(one), read_all(two))
    for seen in (await creator, *joined):
        assert_burst(seen)
    assert (await rclient.runs.get(tid, blocker))["status"] == "success"


async def test_burst_reconnect_mid_burst(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    thread = await rclient.threads.create()
    body = {"assistant_id": "bursty", "input": STEPS, "stream_mode": "custom"}
    url = f"/threads/{thread['thread_id']}/runs/stream"
    async with rhttp.stream("POST", url, json=body) as r:
        location = r.headers["location"]
        async with contextlib.aclosing(frames(r)) as stream:
            before = await read_until(stream, 200)
    async with rhttp.stream("GET", location, headers={"Last-Event-ID": "200"}) as r:
        after = await read_all(r)
    assert after[0].id == 201
    assert_burst(before + after)


# Heartbeats


async def test_join_stream_heartbeat_while_idle(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid, rid = await start_slow(rclient, delay=6)
    sdk_parts = asyncio.create_task(collect(rclient.runs.join_stream(tid, rid, last_event_id="-1")))
    seen: list[str] = []
    async with rhttp.stream("GET", join_url(tid, rid), headers={"Last-Event-ID": "-1"}) as r:
        async with asyncio.timeout(10):
            async for line in r.aiter_lines():
                seen.append(line)
                if line.startswith(":"):
                    break
    # The run published `metadata` and its first `values`, then sat in a 6 s step.
    assert seen[-1] == ": heartbeat"
    data_events = [line for line in seen if line.startswith("event: ")]
    assert data_events == ["event: metadata", "event: values"]
    await rclient.runs.cancel(tid, rid)
    # The SDK skips the comment line: no empty part for the heartbeat.
    parts = await sdk_parts
    assert names(parts) == ["metadata", "values", "error", "end"]
    assert parts[2].data["error"] == "CancelledError"
