"""`POST /threads/{id}/messages` over HTTP: messages added without a run, as a new checkpoint
seen by the messages view, the state and history; threads that never ran; every refusal with
its exact status and message; and its place in /openapi.json."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from agent_runtime.config import load_config
from agent_runtime.registry import default_assistant_id
from tests.conftest import RunningServer, json_of
from tests.server.conftest import RUNS_CONFIG
from tests.server.run_probes import until_busy


def _echo(text: str) -> str:
    return f"[offline model] You said: {text}"


async def _chat(rclient: LangGraphClient, text: str) -> str:
    tid: str = (await rclient.threads.create())["thread_id"]
    turn: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
    await rclient.runs.wait(tid, "chat", input=turn)
    return tid


async def _add(rhttp: httpx.AsyncClient, tid: str, body: Any) -> dict[str, Any]:
    response = await rhttp.post(f"/threads/{tid}/messages", json=body)
    assert response.status_code == 200, response.text
    found: dict[str, Any] = response.json()
    return found


async def _contents(rhttp: httpx.AsyncClient, tid: str) -> list[Any]:
    return [m["content"] for m in (await rhttp.get(f"/threads/{tid}/messages")).json()]


async def test_messages_are_added_as_a_new_checkpoint(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    before = await rclient.threads.get_state(tid)
    history = await rclient.threads.get_history(tid, limit=100)

    body = {
        "messages": [
            {"role": "user", "content": "first", "name": "ada"},
            {"type": "ai", "content": [{"type": "text", "text": "noted"}], "id": "ai-1"},
        ]
    }
    added = await _add(rhttp, tid, body)

    human, ai = added["messages"]
    assert (human["type"], human["content"], human["name"]) == ("human", "first", "ada")
    assert human["id"]  # generated
    assert (ai["type"], ai["content"], ai["id"]) == (
        "ai",
        [{"type": "text", "text": "noted"}],
        "ai-1",
    )
    after = await rclient.threads.get_state(tid)
    assert added["checkpoint"] == after["checkpoint"]
    assert after["parent_checkpoint"] == before["checkpoint"]
    # As stored: the messages view, the state and the thread all hold them, ids and all.
    listed = (await rhttp.get(f"/threads/{tid}/messages")).json()
    assert listed[-2:] == added["messages"]
    assert json_of(after["values"])["messages"] == listed
    assert [m["content"] for m in listed[:2]] == ["hello", _echo("hello")]
    thread = await rclient.threads.get(tid)
    assert (thread["status"], json_of(thread)["message_count"]) == ("idle", 4)
    assert json_of(thread["values"])["messages"] == listed
    assert len(await rclient.threads.get_history(tid, limit=100)) == len(history) + 1
    assert after["next"] == []

    # Nothing ran; the next run answers the conversation as it now stands.
    assert len(await rclient.runs.list(tid)) == 1
    await rclient.runs.wait(tid, "chat", input={"messages": []})
    assert (await _contents(rhttp, tid))[-1] == _echo("first")


async def test_one_message_object_is_a_list_of_one(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    added = await _add(rhttp, tid, {"messages": {"role": "user", "content": "solo", "id": "m-1"}})
    assert [(m["id"], m["content"]) for m in added["messages"]] == [("m-1", "solo")]
    assert (await _contents(rhttp, tid))[-1] == "solo"


async def test_a_thread_that_never_ran_takes_messages_for_the_graph_named(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create(metadata={"owner": "ada"}))["thread_id"]
    response = await rhttp.post(
        f"/threads/{tid}/messages", json={"messages": [{"role": "user", "content": "hi"}]}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{tid}" has never run and names no graph, so it has no messages '
        'channel yet; send "assistant_id" with the messages, run it first, or create it with '
        'metadata {"graph_id": ...}',
        "code": "thread_has_no_graph",
    }

    body = {"assistant_id": "chat", "messages": [{"role": "user", "content": "hi"}]}
    added = await _add(rhttp, tid, body)
    assert [m["content"] for m in added["messages"]] == ["hi"]
    thread = await rclient.threads.get(tid)
    assert thread["metadata"] == {
        "owner": "ada",
        "graph_id": "chat",
        "assistant_id": default_assistant_id("chat"),
    }
    # The messages are the graph's input: its first node is next, and a run with no input
    # answers them.
    assert (await rclient.threads.get_state(tid))["next"] == ["model"]
    assert thread["status"] == "interrupted"
    await rclient.runs.wait(tid, "chat", input=None)
    assert await _contents(rhttp, tid) == ["hi", _echo("hi")]
    assert (await rclient.threads.get(tid))["status"] == "idle"

    # A thread created for a graph needs no assistant_id.
    named = (await rclient.threads.create(graph_id="chat"))["thread_id"]
    await _add(rhttp, named, {"messages": [{"role": "user", "content": "yo"}]})
    assert await _contents(rhttp, named) == ["yo"]


async def test_assistant_id_must_name_the_threads_graph(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    message = {"role": "user", "content": "x"}
    response = await rhttp.post(
        f"/threads/{tid}/messages", json={"assistant_id": "approval", "messages": [message]}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{tid}" runs graph "chat", not "approval" (of assistant_id '
        '"approval"); leave assistant_id out to add to its conversation',
        "code": "graph_mismatch",
    }
    same = await _add(rhttp, tid, {"assistant_id": "chat", "messages": [message]})
    assert [m["content"] for m in same["messages"]] == ["x"]

    response = await rhttp.post(
        f"/threads/{tid}/messages", json={"assistant_id": "nope", "messages": [message]}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "assistant_not_found"


@pytest.mark.parametrize(
    ("body", "detail"),
    [
        ({}, 'The request body is missing the required field "messages"'),
        ([], "The request body must be a JSON object, got []"),
        (
            {"messages": []},
            "messages: value should have at least 1 item after validation, not 0, got []",
        ),
        ({"messages": "hi"}, 'messages: value should be a valid list, got "hi"'),
        (
            {"messages": [{"role": "robot", "content": "x"}]},
            "messages.0.role: value should be 'human', 'user', 'ai', 'assistant', 'system', "
            "'developer', 'tool' or 'function', got \"robot\"",
        ),
        (
            {"messages": [{"role": "user"}]},
            'The request body is missing the required field "messages.0.content"',
        ),
        (
            {"messages": [{"role": "user", "content": 5}]},
            "messages.0.content: value should be a valid string, got 5; "
            "messages.0.content: value should be a valid list, got 5",
        ),
        (
            {"messages": [{"role": "user", "content": "ok"}, {"content": "x"}]},
            'messages.1: a message needs "role" (user, assistant, system, tool) or "type" '
            "(human, ai, system, tool)",
        ),
        (
            {"messages": [{"role": "tool", "content": "42"}]},
            'messages.0: a tool message needs the field "tool_call_id"',
        ),
        (
            {"messages": [{"role": "assistant", "content": "", "tool_calls": [{"bogus": 1}]}]},
            "messages.0 is not a message LangChain can read: tool_call() got an unexpected "
            "keyword argument 'bogus'",
        ),
        (
            {"messages": [{"role": "user", "content": "a", "id": "same"}] * 2},
            'messages.1: the id "same" is given twice in the request',
        ),
        (
            {"messages": [{"role": "user", "content": "x"}], "run": True},
            'Unknown field "run" in the request body',
        ),
        (
            {"role": "user", "content": "x"},
            'The request body is missing the required field "messages"; Unknown field "role" '
            'in the request body; Unknown field "content" in the request body',
        ),
    ],
)
async def test_bad_bodies_are_422_naming_the_problem(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient, body: Any, detail: str
) -> None:
    tid = await _chat(rclient, "hello")
    response = await rhttp.post(f"/threads/{tid}/messages", json=body)
    assert response.status_code == 422
    assert response.json() == {"detail": detail, "code": "validation_error"}
    assert await _contents(rhttp, tid) == ["hello", _echo("hello")]


async def test_refusals_for_unknown_threads_taken_ids_and_graphs_without_messages(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    message = {"role": "user", "content": "x"}
    missing = "00000000-0000-4000-8000-000000000000"
    response = await rhttp.post(f"/threads/{missing}/messages", json={"messages": [message]})
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Thread "{missing}" not found',
        "code": "thread_not_found",
    }

    tid = await _chat(rclient, "hello")
    taken = (await rhttp.get(f"/threads/{tid}/messages")).json()[0]["id"]
    response = await rhttp.post(
        f"/threads/{tid}/messages", json={"messages": [{**message, "id": taken}]}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'messages.0: thread "{tid}" already holds a message with id "{taken}"; '
        f"PATCH /threads/{tid}/messages/{taken} edits it, or leave the id out to have one "
        "generated",
        "code": "message_exists",
    }

    steps = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(steps, "slow", input={"steps": []}, context={"delay": 0})
    response = await rhttp.post(f"/threads/{steps}/messages", json={"messages": [message]})
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Graph "slow" has no "messages" channel, so thread "{steps}" has no '
        "messages to show; its state keys are: steps",
        "code": "no_messages_channel",
    }


@pytest.mark.parametrize(
    ("lifecycle", "way_out"),
    [
        ("locked", 'reopen it with PATCH {"lifecycle": "open"} first'),
        ("archived", "archived threads stay read-only; copy it to continue"),
    ],
)
async def test_read_only_threads_refuse_new_messages(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient, lifecycle: str, way_out: str
) -> None:
    tid = await _chat(rclient, "hello")
    assert (await rhttp.patch(f"/threads/{tid}", json={"lifecycle": lifecycle})).is_success
    response = await rhttp.post(
        f"/threads/{tid}/messages", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{tid}" is {lifecycle}, so it cannot have messages added; {way_out}',
        "code": f"thread_{lifecycle}",
    }
    assert await _contents(rhttp, tid) == ["hello", _echo("hello")]


async def test_busy_thread_refuses_new_messages(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await rclient.runs.create(tid, "slow", input={"steps": []}, context={"delay": 0.3})
    await until_busy(rclient, tid)
    response = await rhttp.post(
        f"/threads/{tid}/messages", json={"messages": [{"role": "user", "content": "x"}]}
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{tid}" is busy with a run; wait for it or cancel it before '
        "adding messages",
        "code": "thread_busy",
    }
    await rclient.runs.join(tid, run["run_id"])


@pytest.fixture
async def capped_http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    config = load_config(RUNS_CONFIG, database=tmp_path / "capped.sqlite", environ={})
    config = replace(config, limits=replace(config.limits, max_messages_per_thread=3))
    running = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as raw:
            yield raw
    finally:
        await running.stop()


async def test_the_message_limit_holds(capped_http: httpx.AsyncClient) -> None:
    tid = (await capped_http.post("/threads", json={"metadata": {"graph_id": "chat"}})).json()[
        "thread_id"
    ]
    two = [{"role": "user", "content": "a"}, {"role": "ai", "content": "b"}]
    await _add(capped_http, tid, {"messages": two})
    response = await capped_http.post(f"/threads/{tid}/messages", json={"messages": two})
    assert response.status_code == 413
    assert response.json() == {
        "detail": "The thread would hold 4 messages, over the limit of 3 "
        "(agent_runtime.limits.max_messages_per_thread in langgraph.json)",
        "code": "too_many_messages",
    }
    assert await _contents(capped_http, tid) == ["a", "b"]


_PLAIN_GRAPH = """
from typing import Any

from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict


class Plain(TypedDict):
    messages: list[Any]


_plain = StateGraph(Plain)
_plain.add_node("write", lambda _: {"messages": [{"id": "d1", "type": "human", "content": "hi"}]})
_plain.add_edge(START, "write")
_plain.add_edge("write", END)
plain = _plain.compile()
"""


async def test_a_channel_without_reducer_gets_the_whole_list(tmp_path: Path) -> None:
    (tmp_path / "plain_graph.py").write_text(_PLAIN_GRAPH)
    (tmp_path / "langgraph.json").write_text('{"graphs": {"plain": "./plain_graph.py:plain"}}')
    config = load_config(tmp_path / "langgraph.json", database=tmp_path / "p.sqlite", environ={})
    running = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as raw:
            tid = (await raw.post("/threads", json={})).json()["thread_id"]
            body = {"assistant_id": "plain", "input": {"messages": []}}
            assert (await raw.post(f"/threads/{tid}/runs/wait", json=body)).is_success
            added = await _add(raw, tid, {"messages": [{"role": "user", "content": "more"}]})
            listed = (await raw.get(f"/threads/{tid}/messages")).json()
            assert [m["content"] for m in listed] == ["hi", "more"]
            assert listed[1] == added["messages"][0]
    finally:
        await running.stop()


async def test_openapi_describes_adding_messages(rhttp: httpx.AsyncClient) -> None:
    document = (await rhttp.get("/openapi.json")).json()
    operation = document["paths"]["/threads/{thread_id}/messages"]["post"]
    assert operation["summary"].startswith("Add messages to the end of the thread's conversation")
    assert operation["tags"] == ["thread messages"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    ref = body["$ref"].rsplit("/", 1)[1]
    schema = document["components"]["schemas"][ref]
    assert schema["required"] == ["messages"]
    assert set(schema["properties"]) == {"messages", "assistant_id"}
