"""The messages view over HTTP: paging, reading one message, edits and deletions as new
checkpoints (with history keeping the old version), the graph's flow left as it was, and every
refusal with its exact status and message."""

from __future__ import annotations

import textwrap
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from agent_runtime.config import load_config
from tests.conftest import RunningServer, json_of
from tests.server.run_probes import until_busy

UNKNOWN = "no-such-message"


def _said(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _echo(text: str) -> str:
    return f"[offline model] You said: {text}"


async def _chat(rclient: LangGraphClient, *texts: str) -> str:
    """A new chat thread with one turn per text; its id."""
    tid: str = (await rclient.threads.create())["thread_id"]
    for text in texts:
        await rclient.runs.wait(tid, "chat", input=_said(text))
    return tid


async def _listed(rhttp: httpx.AsyncClient, tid: str, **params: Any) -> list[dict[str, Any]]:
    response = await rhttp.get(f"/threads/{tid}/messages", params=params)
    assert response.status_code == 200, response.text
    found: list[dict[str, Any]] = response.json()
    return found


async def _contents(rhttp: httpx.AsyncClient, tid: str) -> list[Any]:
    return [m["content"] for m in await _listed(rhttp, tid)]


async def _history_contents(rclient: LangGraphClient, tid: str) -> list[list[Any]]:
    history = await rclient.threads.get_history(tid, limit=1000)
    return [[m["content"] for m in json_of(h["values"]).get("messages", [])] for h in history]


def _not_found(tid: str, message_id: str) -> dict[str, str]:
    return {
        "detail": f'Message "{message_id}" not found on thread "{tid}"; '
        f"GET /threads/{tid}/messages lists its messages",
        "code": "message_not_found",
    }


async def test_list_is_the_conversation_oldest_first(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "one", "two")
    response = await rhttp.get(f"/threads/{tid}/messages")
    assert response.status_code == 200
    assert response.headers["X-Pagination-Total"] == "4"
    assert "X-Pagination-Next" not in response.headers
    listed = response.json()
    assert [(m["type"], m["content"]) for m in listed] == [
        ("human", "one"),
        ("ai", _echo("one")),
        ("human", "two"),
        ("ai", _echo("two")),
    ]
    # The same JSON the state carries, ids included.
    assert listed == json_of((await rclient.threads.get_state(tid))["values"])["messages"]
    assert all(m["id"] for m in listed)


async def test_list_pages_with_limit_offset_and_total(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create(graph_id="chat"))["thread_id"]
    many = [{"role": "user", "content": f"m{i}", "id": f"m{i}"} for i in range(120)]
    await rclient.threads.update_state(tid, {"messages": many}, as_node="model")

    first = await rhttp.get(f"/threads/{tid}/messages")
    assert [m["content"] for m in first.json()] == [f"m{i}" for i in range(100)]
    assert first.headers["X-Pagination-Total"] == "120"
    assert first.headers["X-Pagination-Next"] == "100"

    page = await rhttp.get(f"/threads/{tid}/messages", params={"limit": 3, "offset": 10})
    assert [m["id"] for m in page.json()] == ["m10", "m11", "m12"]
    assert page.headers["X-Pagination-Total"] == "120"
    assert page.headers["X-Pagination-Next"] == "13"

    last = await rhttp.get(f"/threads/{tid}/messages", params={"limit": 1000, "offset": 118})
    assert [m["id"] for m in last.json()] == ["m118", "m119"]
    assert "X-Pagination-Next" not in last.headers
    assert await _listed(rhttp, tid, offset=500) == []

    for params, detail in [
        ({"limit": 1001}, 'limit: value should be less than or equal to 1000, got "1001"'),
        ({"limit": 0}, 'limit: value should be greater than or equal to 1, got "0"'),
        ({"offset": -1}, 'offset: value should be greater than or equal to 0, got "-1"'),
        ({"page": 2}, 'Unknown field "page" in the request query'),
    ]:
        response = await rhttp.get(f"/threads/{tid}/messages", params=params)
        assert response.status_code == 422
        assert response.json() == {"detail": detail, "code": "validation_error"}


async def test_get_one_message_and_an_unknown_id(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    _, reply = await _listed(rhttp, tid)
    response = await rhttp.get(f"/threads/{tid}/messages/{reply['id']}")
    assert response.status_code == 200
    assert response.json() == reply
    for method in ("GET", "PATCH", "DELETE"):
        body = {"content": "x"} if method == "PATCH" else None
        response = await rhttp.request(method, f"/threads/{tid}/messages/{UNKNOWN}", json=body)
        assert response.status_code == 404
        assert response.json() == _not_found(tid, UNKNOWN)


async def test_patch_content_is_a_new_checkpoint_and_history_keeps_the_old(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    human, reply = await _listed(rhttp, tid)
    before = await rclient.threads.get_state(tid)

    response = await rhttp.patch(
        f"/threads/{tid}/messages/{human['id']}", json={"content": "bonjour"}
    )
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"message", "checkpoint"}
    assert body["message"] == {**human, "content": "bonjour"}

    assert await _listed(rhttp, tid) == [body["message"], reply]
    assert (await rhttp.get(f"/threads/{tid}/messages/{human['id']}")).json() == body["message"]
    state = await rclient.threads.get_state(tid)
    assert state["checkpoint"] == body["checkpoint"]
    assert state["parent_checkpoint"] == before["checkpoint"]
    assert json_of(state["metadata"])["source"] == "update"
    assert state["next"] == before["next"] == []
    # The thread's cached values follow the edit.
    thread = await rclient.threads.get(tid)
    assert json_of(thread["values"])["messages"] == [body["message"], reply]
    history = await _history_contents(rclient, tid)
    assert history[0] == ["bonjour", _echo("hello")]
    assert history[1] == ["hello", _echo("hello")]


async def test_patch_content_blocks_and_metadata(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    _, reply = await _listed(rhttp, tid)
    url = f"/threads/{tid}/messages/{reply['id']}"

    blocks = [{"type": "text", "text": "first"}, {"type": "text", "text": "second"}]
    edited = (await rhttp.patch(url, json={"content": blocks})).json()["message"]
    assert edited["content"] == blocks

    await rhttp.patch(url, json={"metadata": {"rating": 1, "note": "good"}})
    edited = (await rhttp.patch(url, json={"metadata": {"rating": 5}})).json()["message"]
    assert edited["additional_kwargs"]["metadata"] == {"rating": 5, "note": "good"}
    assert edited["content"] == blocks
    assert edited["id"] == reply["id"]
    assert edited["response_metadata"] == reply["response_metadata"]
    assert (await rhttp.get(url)).json() == edited

    both = {"content": "plain again", "metadata": {"edited_by": "ada"}}
    edited = (await rhttp.patch(url, json=both)).json()["message"]
    assert edited["content"] == "plain again"
    assert edited["additional_kwargs"]["metadata"] == {
        "rating": 5,
        "note": "good",
        "edited_by": "ada",
    }


async def test_patch_body_errors(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = await _chat(rclient, "hello")
    [human, _] = await _listed(rhttp, tid)
    url = f"/threads/{tid}/messages/{human['id']}"
    for body, detail in [
        ({}, 'The request body must set "content", "metadata" or both; it set neither'),
        ({"role": "ai"}, 'Unknown field "role" in the request body'),
        ({"metadata": "x"}, 'metadata: value should be a valid dictionary, got "x"'),
    ]:
        response = await rhttp.patch(url, json=body)
        assert response.status_code == 422
        assert response.json() == {"detail": detail, "code": "validation_error"}
    assert await _contents(rhttp, tid) == ["hello", _echo("hello")]


async def test_delete_removes_the_message_and_history_keeps_it(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "one", "two")
    listed = await _listed(rhttp, tid)
    url = f"/threads/{tid}/messages/{listed[1]['id']}"

    response = await rhttp.delete(url)
    assert response.status_code == 200
    body = response.json()
    assert set(body) == {"checkpoint"}
    assert await _listed(rhttp, tid) == [listed[0], *listed[2:]]
    total = (await rhttp.get(f"/threads/{tid}/messages")).headers["X-Pagination-Total"]
    assert total == "3"
    state = await rclient.threads.get_state(tid)
    assert state["checkpoint"] == body["checkpoint"]
    assert json_of(state["metadata"])["source"] == "update"
    assert len(json_of((await rclient.threads.get(tid))["values"])["messages"]) == 3
    assert _echo("one") in (await _history_contents(rclient, tid))[1]

    response = await rhttp.delete(url)
    assert response.status_code == 404
    assert response.json() == _not_found(tid, listed[1]["id"])


async def test_a_later_run_continues_from_the_edited_conversation(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = await _chat(rclient, "hello")
    human, reply = await _listed(rhttp, tid)
    await rhttp.patch(f"/threads/{tid}/messages/{human['id']}", json={"content": "bonjour"})
    await rhttp.delete(f"/threads/{tid}/messages/{reply['id']}")

    # No new message: the model answers the conversation as edited.
    await rclient.runs.wait(tid, "chat", input={"messages": []})
    assert await _contents(rhttp, tid) == ["bonjour", _echo("bonjour")]


async def test_editing_an_interrupted_thread_keeps_its_next_node(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "approval", input=_said("what is 6 * 7"))
    before = await rclient.threads.get_state(tid)
    assert before["next"] == ["approve"]
    human, request = await _listed(rhttp, tid)

    await rhttp.patch(f"/threads/{tid}/messages/{human['id']}", json={"content": "6 * 7?"})
    await rhttp.patch(f"/threads/{tid}/messages/{request['id']}", json={"metadata": {"a": 1}})

    after = await rclient.threads.get_state(tid)
    assert after["next"] == ["approve"]
    assert (await rclient.threads.get(tid))["status"] == "interrupted"
    # LangGraph keeps a pending interrupt with the checkpoint it was raised at, so the new
    # checkpoint's approve task has none recorded; it asks again when the thread resumes,
    # and the resume value answers it.
    assert after["interrupts"] == []
    done = await rclient.runs.wait(tid, "approval", command={"resume": "approve"})
    assert [m["content"] for m in json_of(done)["messages"]] == [
        "6 * 7?",
        "",
        "42",
        "The result is 42.",
    ]


async def test_edits_work_on_a_plain_add_messages_channel(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "chat_nested", input=_said("hello"))
    human, reply = await _listed(rhttp, tid)
    await rhttp.patch(f"/threads/{tid}/messages/{human['id']}", json={"content": "hi"})
    await rhttp.delete(f"/threads/{tid}/messages/{reply['id']}")
    assert await _contents(rhttp, tid) == ["hi"]


async def test_thread_that_never_ran_has_no_messages(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    for tid in [
        (await rclient.threads.create())["thread_id"],
        (await rclient.threads.create(graph_id="chat"))["thread_id"],
    ]:
        response = await rhttp.get(f"/threads/{tid}/messages")
        assert response.json() == []
        assert response.headers["X-Pagination-Total"] == "0"
        for method in ("GET", "PATCH", "DELETE"):
            body = {"content": "x"} if method == "PATCH" else None
            response = await rhttp.request(method, f"/threads/{tid}/messages/m1", json=body)
            assert response.status_code == 404
            assert response.json() == _not_found(tid, "m1")


async def test_graph_without_a_messages_channel_is_404(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "slow", input={"steps": []}, context={"delay": 0})
    expected = {
        "detail": f'Graph "slow" has no "messages" channel, so thread "{tid}" has no messages '
        "to show; its state keys are: steps",
        "code": "no_messages_channel",
    }
    for method, path in [
        ("GET", f"/threads/{tid}/messages"),
        ("GET", f"/threads/{tid}/messages/m1"),
        ("PATCH", f"/threads/{tid}/messages/m1"),
        ("DELETE", f"/threads/{tid}/messages/m1"),
    ]:
        body = {"content": "x"} if method == "PATCH" else None
        response = await rhttp.request(method, path, json=body)
        assert response.status_code == 404
        assert response.json() == expected


@pytest.mark.parametrize(
    ("lifecycle", "way_out"),
    [
        ("locked", 'reopen it with PATCH {"lifecycle": "open"} first'),
        ("archived", "archived threads stay read-only; copy it to continue"),
    ],
)
async def test_read_only_threads_refuse_edits_but_not_reads(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient, lifecycle: str, way_out: str
) -> None:
    tid = await _chat(rclient, "hello")
    listed = await _listed(rhttp, tid)
    url = f"/threads/{tid}/messages/{listed[0]['id']}"
    response = await rhttp.patch(f"/threads/{tid}", json={"lifecycle": lifecycle})
    assert response.status_code == 200

    expected = {
        "detail": f'Thread "{tid}" is {lifecycle}, so it cannot have its messages edited; '
        f"{way_out}",
        "code": f"thread_{lifecycle}",
    }
    for response in [await rhttp.patch(url, json={"content": "x"}), await rhttp.delete(url)]:
        assert response.status_code == 409
        assert response.json() == expected
    assert await _listed(rhttp, tid) == listed
    assert (await rhttp.get(url)).json() == listed[0]

    if lifecycle == "locked":
        await rhttp.patch(f"/threads/{tid}", json={"lifecycle": "open"})
        assert (await rhttp.patch(url, json={"content": "x"})).status_code == 200


async def test_busy_thread_refuses_edits(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await rclient.runs.create(tid, "slow", input={"steps": []}, context={"delay": 0.3})
    await until_busy(rclient, tid)
    expected = {
        "detail": f'Thread "{tid}" is busy with a run; wait for it or cancel it before '
        "editing its messages",
        "code": "thread_busy",
    }
    url = f"/threads/{tid}/messages/m1"
    for response in [await rhttp.patch(url, json={"content": "x"}), await rhttp.delete(url)]:
        assert response.status_code == 409
        assert response.json() == expected
    await rclient.runs.join(tid, run["run_id"])


# Graphs the fixture set lacks: a messages channel with no reducer, and two nodes that write
# the conversation in the same step.
_EDGE_GRAPHS = """
from typing import Annotated, Any

from langchain_core.messages import AIMessage, AnyMessage, HumanMessage
from langgraph.graph import END, START, MessagesState, StateGraph
from typing_extensions import TypedDict


class Plain(TypedDict):
    messages: list[Any]


def _write(state: Plain) -> dict[str, list[Any]]:
    return {
        "messages": [
            HumanMessage("hi", id="h1"),
            {"id": "d1", "type": "human", "content": "a dict"},
            AIMessage("ok", id="a1"),
        ]
    }


_plain = StateGraph(Plain)
_plain.add_node("write", _write)
_plain.add_edge(START, "write")
_plain.add_edge("write", END)
plain = _plain.compile()

_fanout = StateGraph(MessagesState)
_fanout.add_node("left", lambda state: {"messages": [AIMessage("left", id="l1")]})
_fanout.add_node("right", lambda state: {"messages": [AIMessage("right", id="r1")]})
_fanout.add_edge(START, "left")
_fanout.add_edge(START, "right")
_fanout.add_edge("left", END)
_fanout.add_edge("right", END)
fanout = _fanout.compile()
"""


@pytest.fixture
async def edge_http(tmp_path: Path) -> AsyncIterator[httpx.AsyncClient]:
    (tmp_path / "edge_graphs.py").write_text(textwrap.dedent(_EDGE_GRAPHS))
    (tmp_path / "langgraph.json").write_text(
        '{"graphs": {"plain": "./edge_graphs.py:plain", "fanout": "./edge_graphs.py:fanout"}}'
    )
    config = load_config(tmp_path / "langgraph.json", database=tmp_path / "edge.sqlite", environ={})
    running = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=running.url, timeout=30) as raw:
            yield raw
    finally:
        await running.stop()


async def _run(raw: httpx.AsyncClient, graph: str, values: dict[str, Any]) -> str:
    tid: str = (await raw.post("/threads", json={})).json()["thread_id"]
    response = await raw.post(
        f"/threads/{tid}/runs/wait", json={"assistant_id": graph, "input": values}
    )
    assert response.status_code == 200, response.text
    return tid


async def test_edits_on_a_channel_without_reducer_rewrite_the_whole_list(
    edge_http: httpx.AsyncClient,
) -> None:
    tid = await _run(edge_http, "plain", {"messages": []})
    assert [m["id"] for m in await _listed(edge_http, tid)] == ["h1", "d1", "a1"]

    response = await edge_http.patch(f"/threads/{tid}/messages/d1", json={"content": "edited"})
    assert response.json()["message"] == {"id": "d1", "type": "human", "content": "edited"}
    await edge_http.patch(f"/threads/{tid}/messages/h1", json={"metadata": {"k": "v"}})
    await edge_http.delete(f"/threads/{tid}/messages/a1")

    listed = await _listed(edge_http, tid)
    assert [(m["id"], m["content"]) for m in listed] == [("h1", "hi"), ("d1", "edited")]
    assert listed[0]["additional_kwargs"] == {"metadata": {"k": "v"}}


async def test_edit_after_a_parallel_step_is_409(edge_http: httpx.AsyncClient) -> None:
    tid = await _run(edge_http, "fanout", {"messages": []})
    assert {m["id"] for m in await _listed(edge_http, tid)} == {"l1", "r1"}
    response = await edge_http.patch(f"/threads/{tid}/messages/l1", json={"content": "x"})
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'LangGraph cannot tell which node an edit of thread "{tid}" comes from '
        "(Ambiguous update, specify as_node), as when its last step ran several nodes at "
        f"once; send the change to POST /threads/{tid}/state with an explicit as_node instead",
        "code": "ambiguous_update",
    }
