"""Runs through langgraph_sdk: waited, background, streamed; interrupts and resume; errors."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from tests.conftest import json_of

USER: dict[str, Any] = {"messages": [{"role": "user", "content": "hello there"}]}


async def test_wait_returns_final_values(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    result = json_of(await rclient.runs.wait(thread["thread_id"], "chat", input=USER))
    assert [m["type"] for m in result["messages"]] == ["human", "ai"]
    assert result["messages"][1]["content"] == "[offline model] You said: hello there"
    stored = await rclient.threads.get(thread["thread_id"])
    assert stored["status"] == "idle"
    assert json_of(stored["values"])["messages"][1]["content"] == result["messages"][1]["content"]
    assert json_of(stored["metadata"])["graph_id"] == "chat"
    runs = await rclient.runs.list(thread["thread_id"])
    assert [r["status"] for r in runs] == ["success"]


def _last_values_data(sse: str) -> bytes:
    frames = [f for f in sse.split("\n\n") if f.startswith("event: values\n")]
    return frames[-1].split("\n")[1].removeprefix("data: ").encode()


async def test_wait_answers_the_state_the_thread_stores(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    thread_id = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(thread_id, "chat", input=USER)
    body = {"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": "more"}]}}
    response = await rhttp.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    result = response.json()
    assert [m["type"] for m in result["messages"]] == ["human", "ai", "human", "ai"]
    state = await rclient.threads.get_state(thread_id)
    thread = await rclient.threads.get(thread_id)
    assert result == state["values"] == thread["values"]
    assert json_of(thread)["message_count"] == 4
    run_path = response.headers["content-location"]
    joined = await rhttp.get(run_path + "/join")
    assert (joined.status_code, joined.json()) == (200, result)
    # The answer is the run's last `values` event, byte for byte: encoded once.
    replay = await rhttp.get(run_path + "/stream", headers={"Last-Event-ID": "-1"})
    assert _last_values_data(replay.text) == response.content


async def test_wait_without_values_events_still_stores_the_state(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    thread_id = (await rclient.threads.create())["thread_id"]
    body = {"assistant_id": "chat", "input": USER, "stream_mode": ["updates"]}
    response = await rhttp.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert response.status_code == 200
    result = response.json()
    assert [m["type"] for m in result["messages"]] == ["human", "ai"]
    thread = await rclient.threads.get(thread_id)
    assert thread["values"] == result == (await rclient.threads.get_state(thread_id))["values"]
    assert (thread["status"], json_of(thread)["message_count"]) == ("idle", 2)


async def test_background_run_and_join(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    run = await rclient.runs.create(thread["thread_id"], "slow", input={"steps": []})
    assert run["status"] == "pending"
    assert run["thread_id"] == thread["thread_id"]
    result = await rclient.runs.join(thread["thread_id"], run["run_id"])
    assert result == {"steps": ["one", "two", "three"]}
    final = await rclient.runs.get(thread["thread_id"], run["run_id"])
    assert final["status"] == "success"
    assert json_of(final)["attempt"] == 1


async def test_stream_values_event_order(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    parts = [
        part
        async for part in rclient.runs.stream(
            thread["thread_id"], "slow", input={"steps": []}, context={"delay": 0}
        )
    ]
    assert parts[0].event == "metadata"
    assert set(parts[0].data) == {"run_id", "attempt"}
    values = [p.data["steps"] for p in parts if p.event == "values"]
    assert values == [[], ["one"], ["one", "two"], ["one", "two", "three"]]
    assert parts[-1].event == "end"


async def test_stream_raw_sse_framing(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    thread = await rclient.threads.create()
    body = {"assistant_id": "slow", "input": {"steps": []}, "context": {"delay": 0}}
    async with rhttp.stream("POST", f"/threads/{thread['thread_id']}/runs/stream", json=body) as r:
        assert r.status_code == 200
        assert r.headers["content-type"].startswith("text/event-stream")
        location = r.headers["location"]
        content_location = r.headers["content-location"]
        text = (await r.aread()).decode()
    run_id = content_location.rsplit("/", 1)[1]
    assert content_location == f"/threads/{thread['thread_id']}/runs/{run_id}"
    assert location == content_location + "/stream"
    frames = [f for f in text.split("\n\n") if f and not f.startswith(":")]
    ids = []
    for frame in frames:
        lines = frame.split("\n")
        assert lines[0].startswith("event: ")
        assert lines[1].startswith("data: ")
        assert lines[2].startswith("id: ")
        ids.append(int(lines[2][4:]))
    assert ids == list(range(1, len(frames) + 1))
    assert frames[0].startswith("event: metadata\ndata: {")
    assert frames[-1].startswith("event: end\n")


async def test_graph_error_becomes_error_event(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    parts = [
        p
        async for p in rclient.runs.stream(
            thread["thread_id"], "failing", input={"steps": []}, stream_mode="updates"
        )
    ]
    assert [p.event for p in parts] == ["metadata", "updates", "error", "end"]
    assert parts[2].data == {
        "error": "ValueError",
        "message": "the fixture graph failed on purpose",
    }
    assert (await rclient.threads.get(thread["thread_id"]))["status"] == "error"
    runs = await rclient.runs.list(thread["thread_id"])
    assert runs[0]["status"] == "error"
    assert json_of(runs[0])["error"] == "ValueError: the fixture graph failed on purpose"


async def test_wait_on_failing_graph_raises_in_sdk(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    with pytest.raises(Exception, match="ValueError: the fixture graph failed on purpose"):
        await rclient.runs.wait(thread["thread_id"], "failing", input={"steps": []})
    raw = await rclient.runs.wait(
        thread["thread_id"], "failing", input={"steps": []}, raise_error=False
    )
    assert raw == {
        "__error__": {"error": "ValueError", "message": "the fixture graph failed on purpose"}
    }


async def test_failed_run_is_logged_with_its_ids_and_traceback(
    rclient: LangGraphClient, caplog: pytest.LogCaptureFixture
) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]

    with caplog.at_level(logging.ERROR, logger="agent_runtime.runs"):
        await rclient.runs.wait(tid, "failing", input={"steps": []}, raise_error=False)

    run = (await rclient.runs.list(tid))[0]
    records = [r for r in caplog.records if r.name == "agent_runtime.runs"]
    assert [r.getMessage() for r in records] == [
        f"Run {run['run_id']} on thread {tid} (graph failing) failed: "
        "ValueError: the fixture graph failed on purpose"
    ]
    assert records[0].levelno == logging.ERROR
    assert records[0].exc_info is not None
    assert 'raise ValueError("the fixture graph failed on purpose")' in caplog.text


async def test_interrupt_and_resume(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    ask: dict[str, Any] = {"messages": [{"role": "user", "content": "what is 6 * 7"}]}
    paused = json_of(await rclient.runs.wait(tid, "approval", input=ask))
    interrupts = paused["__interrupt__"]
    assert interrupts[0]["value"]["action_requests"][0]["name"] == "calculator"
    stored = await rclient.threads.get(tid)
    assert stored["status"] == "interrupted"
    [(_task_id, pending)] = stored["interrupts"].items()
    assert pending[0]["id"] == interrupts[0]["id"]
    state = (await rclient.threads.get_state(tid))["values"]
    assert stored["values"] == state == {k: v for k, v in paused.items() if k != "__interrupt__"}
    assert json_of(stored)["message_count"] == len(state["messages"]) == 2
    assert (await rclient.runs.list(tid))[0]["status"] == "interrupted"

    done = json_of(await rclient.runs.wait(tid, "approval", command={"resume": "approve"}))
    assert done["messages"][-1]["content"] == "The result is 42."
    assert "__interrupt__" not in done
    assert (await rclient.threads.get(tid))["status"] == "idle"


async def test_command_wins_over_input_as_agent_chat_ui_sends_them(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    ask: dict[str, Any] = {"messages": [{"role": "user", "content": "what is 6 * 7"}]}
    await rclient.runs.wait(tid, "approval", input=ask)

    # agent-chat-ui's Approve button: an empty input beside the resume command.
    body = {
        "assistant_id": "approval",
        "input": {},
        "command": {"resume": {"decisions": [{"type": "approve"}]}},
    }
    response = await rhttp.post(f"/threads/{tid}/runs/wait", json=body)

    assert response.status_code == 200
    assert response.json()["messages"][-1]["content"] == "The result is 42."
    [run, _first] = await rclient.runs.list(tid)
    assert "input" not in json_of(run)["kwargs"]
    assert json_of(run)["kwargs"]["command"] == body["command"]


async def test_resume_by_interrupt_id_inside_subgraph(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    paused = json_of(await rclient.runs.wait(tid, "nested", input={"steps": []}))
    [pending] = paused["__interrupt__"]
    assert pending["value"] == {"question": "continue?"}
    done = json_of(
        await rclient.runs.wait(tid, "nested", command={"resume": {pending["id"]: "yes"}})
    )
    # The subgraph hands back its whole `steps` list, which the parent's reducer appends.
    assert done == {"steps": ["before", "before", "answer:yes", "after"]}


async def test_stream_interrupt_shows_in_last_values(rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    parts = [
        p async for p in rclient.runs.stream(thread["thread_id"], "nested", input={"steps": []})
    ]
    last_values = [p for p in parts if p.event == "values"][-1]
    assert last_values.data["__interrupt__"][0]["value"] == {"question": "continue?"}


async def test_run_errors(rhttp: httpx.AsyncClient, rclient: LangGraphClient) -> None:
    thread = await rclient.threads.create()
    url = f"/threads/{thread['thread_id']}/runs"
    cases = [
        ({"assistant_id": "nope"}, 404, "assistant_not_found"),
        ({"assistant_id": "chat", "stream_mode": "colour"}, 422, "validation_error"),
        ({"assistant_id": "chat", "feedback_keys": ["x"]}, 422, "unsupported_field"),
        ({"assistant_id": "slow", "interrupt_before": ["nope"]}, 422, "unknown_node"),
        ({"assistant_id": "chat", "webhook": "http://127.0.0.1:9/hook"}, 422, "webhook_refused"),
        ({"assistant_id": "chat", "surprise": True}, 422, "validation_error"),
    ]
    for body, status, code in cases:
        response = await rhttp.post(url, json=body)
        assert response.status_code == status, body
        assert response.json()["code"] == code, body
    response = await rhttp.post(url, json={"assistant_id": "slow", "interrupt_before": ["nope"]})
    assert response.json()["detail"] == (
        'interrupt_before: graph "slow" has no node "nope"; its nodes are one, two, three'
    )
    missing = "00000000-0000-4000-8000-000000000000"
    response = await rhttp.post(f"/threads/{missing}/runs", json={"assistant_id": "chat"})
    assert response.status_code == 404
    assert response.json()["detail"] == f'Thread "{missing}" not found'


async def test_if_not_exists_create(rclient: LangGraphClient) -> None:
    thread_id = "11111111-1111-4111-8111-111111111111"
    result = json_of(await rclient.runs.wait(thread_id, "chat", input=USER, if_not_exists="create"))
    assert result["messages"][-1]["type"] == "ai"
    assert (await rclient.threads.get(thread_id))["status"] == "idle"


async def test_stateless_runs(rclient: LangGraphClient) -> None:
    result = json_of(await rclient.runs.wait(None, "chat", input=USER))
    assert result["messages"][-1]["content"] == "[offline model] You said: hello there"
    parts = [p async for p in rclient.runs.stream(None, "slow", input={"steps": []})]
    assert parts[-1].event == "end"
    kept = await rclient.runs.create(None, "slow", input={"steps": []}, on_completion="keep")
    await rclient.runs.join(kept["thread_id"], kept["run_id"])
    assert (await rclient.threads.get(kept["thread_id"]))["values"] == {
        "steps": ["one", "two", "three"]
    }
    # The SDK's `RunCreate` requires every field and lacks `on_completion`, which the API takes.
    payload: Any = {"assistant_id": "slow", "input": {"steps": []}, "on_completion": "keep"}
    batch = await rclient.runs.create_batch([payload] * 2)
    assert len({r["thread_id"] for r in batch}) == 2


async def test_stateless_run_thread_is_deleted(rclient: LangGraphClient) -> None:
    run = await rclient.runs.create(None, "slow", input={"steps": []}, context={"delay": 0})
    await rclient.runs.join(run["thread_id"], run["run_id"])
    for _ in range(50):
        try:
            await rclient.threads.get(run["thread_id"])
        except NotFoundError:
            return
        await asyncio.sleep(0.02)
    raise AssertionError("the stateless run's thread was kept")


async def test_delete_run(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    thread = await rclient.threads.create()
    tid = thread["thread_id"]
    run = await rclient.runs.create(tid, "slow", input={"steps": []}, context={"delay": 1})
    response = await rhttp.delete(f"/threads/{tid}/runs/{run['run_id']}")
    assert response.status_code == 409
    assert response.json()["code"] == "run_active"
    await rclient.runs.cancel(tid, run["run_id"], wait=True)
    await rclient.runs.delete(tid, run["run_id"])
    with pytest.raises(NotFoundError):
        await rclient.runs.get(tid, run["run_id"])


async def test_resume_with_null_is_refused(
    rhttp: httpx.AsyncClient, rclient: LangGraphClient
) -> None:
    thread = await rclient.threads.create()
    body = {"assistant_id": "nested", "command": {"resume": None}}
    response = await rhttp.post(f"/threads/{thread['thread_id']}/runs", json=body)
    assert response.status_code == 422
    assert response.json() == {
        "detail": "command.resume: null cannot resume an interrupt; send a value (or omit resume)",
        "code": "invalid_resume",
    }


async def test_chat_prompt_gets_time_zone_and_language_from_thread_metadata(
    rclient: LangGraphClient,
) -> None:
    thread = await rclient.threads.create(
        metadata={"timezone": "Asia/Tokyo", "language": "Japanese"}
    )
    prompts = []
    async for part in rclient.runs.stream(
        thread["thread_id"],
        "chat",
        input=USER,
        context={"current_utc": "2026-11-21T07:30:00+00:00"},
        stream_mode="events",
    ):
        if part.event == "events" and part.data["event"] == "on_chat_model_start":
            [messages] = part.data["data"]["input"]["messages"]
            prompts.append(messages[0]["content"])
    assert prompts == [
        "Current time (UTC): 2026-11-21T07:30:00+00:00\n"
        "The user's time zone: Asia/Tokyo (local time 2026-11-21T16:30+09:00)\n"
        "Answer in this language: Japanese"
    ]
