"""Run control: one run at a time per thread, the four multitask strategies, cancel (single and
bulk), on_disconnect, after_seconds, webhooks, strict_resume, and the thread status runs leave."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from agent_runtime.config import config_from_dict
from agent_runtime.registry import default_assistant_id
from tests.conftest import RunningServer
from tests.server.conftest import RUNS_CONFIG

T = TypeVar("T")
EMPTY = {"steps": []}
THREE = ["one", "two", "three"]
MISSING = "00000000-0000-4000-8000-000000000000"


# Helpers


async def until(check: Callable[[], Awaitable[T]], *, within: float = 5.0) -> T:
    """Poll `check` until it returns something truthy."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {within} s; last value: {value!r}")
        await asyncio.sleep(0.01)


async def status_of(client: LangGraphClient, thread_id: str, run_id: str) -> str:
    return (await client.runs.get(thread_id, run_id))["status"]


async def until_status(
    client: LangGraphClient, thread_id: str, run_id: str, *wanted: str, within: float = 5.0
) -> str:
    async def check() -> str | None:
        status = await status_of(client, thread_id, run_id)
        return status if status in wanted else None

    return await until(check, within=within)


async def until_steps(client: LangGraphClient, thread_id: str, steps: list[str]) -> None:
    """Wait until the thread's latest checkpoint holds exactly `steps`."""

    async def check() -> bool:
        state = await client.threads.get_state(thread_id)
        return state["values"].get("steps") == steps

    await until(check)


async def thread_status(client: LangGraphClient, thread_id: str) -> str:
    return (await client.threads.get(thread_id))["status"]


async def start_slow(
    client: LangGraphClient, thread_id: str, *, delay: float, **kwargs: Any
) -> dict[str, Any]:
    run = await client.runs.create(
        thread_id, "slow", input=EMPTY, context={"delay": delay}, **kwargs
    )
    return dict(run)


async def checkpoint_run_ids(server: RunningServer, thread_id: str) -> list[str | None]:
    """The `run_id` in the metadata of every checkpoint of the thread, read below HTTP."""
    graph = await server.services().registry.get_graph("slow")
    config = {"configurable": {"thread_id": thread_id}}
    return [
        (state.metadata or {}).get("run_id") async for state in graph.aget_state_history(config)
    ]


async def _is(value: Awaitable[str], wanted: str) -> bool:
    return await value == wanted


def body_of(response: httpx.Response) -> dict[str, Any]:
    """An error body, after checking that it is JSON and not an event stream."""
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()
    return found


# 1. One run at a time per thread (enqueue)


async def test_enqueue_runs_one_after_the_other(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await rclient.runs.create(
        tid, "ordered", input=EMPTY, context={"label": "a", "delay": 0.3}
    )
    second = await rclient.runs.create(
        tid, "ordered", input=EMPTY, context={"label": "b", "delay": 0.3}
    )
    assert second["multitask_strategy"] == "enqueue"
    await until_status(rclient, tid, first["run_id"], "running")
    assert await status_of(rclient, tid, second["run_id"]) == "pending"
    assert await thread_status(rclient, tid) == "busy"

    await rclient.runs.join(tid, first["run_id"])
    assert await thread_status(rclient, tid) == "busy"
    result = await rclient.runs.join(tid, second["run_id"])

    # Had the second started before the first ended, "b:start" would come before "a:end".
    assert result == {"steps": ["a:start", "a:end", "b:start", "b:end"]}
    done_first = await rclient.runs.get(tid, first["run_id"])
    done_second = await rclient.runs.get(tid, second["run_id"])
    assert done_first["status"] == done_second["status"] == "success"
    assert done_first["updated_at"] <= done_second["updated_at"]
    assert await thread_status(rclient, tid) == "idle"


async def test_enqueue_five_runs_finish_in_creation_order(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    runs = [
        await rclient.runs.create(
            tid, "ordered", input=EMPTY, context={"label": str(n), "delay": 0.02}
        )
        for n in range(5)
    ]
    for run in runs:
        await rclient.runs.join(tid, run["run_id"])
    state = await rclient.threads.get_state(tid)
    assert state["values"]["steps"] == [f"{n}:{end}" for n in range(5) for end in ("start", "end")]
    listed = await rclient.runs.list(tid)
    assert [r["run_id"] for r in listed] == [r["run_id"] for r in reversed(runs)]
    assert {r["status"] for r in listed} == {"success"}
    finished = [(await rclient.runs.get(tid, r["run_id"]))["updated_at"] for r in runs]
    assert finished == sorted(finished)
    assert await thread_status(rclient, tid) == "idle"


# 2. reject


async def test_reject_refuses_second_run_with_409(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start_slow(rclient, tid, delay=0.15)
    await until_status(rclient, tid, first["run_id"], "running")
    detail = (
        f'Thread "{tid}" is busy with run "{first["run_id"]}"; '
        'multitask_strategy="reject" refuses a second run'
    )
    body = {"assistant_id": "slow", "input": EMPTY, "multitask_strategy": "reject"}
    for path in ("/runs", "/runs/wait", "/runs/stream"):
        response = await rhttp.post(f"/threads/{tid}{path}", json=body)
        assert response.status_code == 409, path
        # No stream was started: the refusal is a plain JSON error, not an SSE response.
        assert body_of(response) == {"detail": detail, "code": "thread_busy"}, path

    assert await rclient.runs.join(tid, first["run_id"]) == {"steps": THREE}
    listed = await rclient.runs.list(tid)
    assert [(r["run_id"], r["status"]) for r in listed] == [(first["run_id"], "success")]
    assert await thread_status(rclient, tid) == "idle"


async def test_reject_also_refuses_behind_a_pending_run(rhttp: httpx.AsyncClient) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    delayed = await rhttp.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "after_seconds": 5}
    )
    assert delayed.json()["status"] == "pending"
    response = await rhttp.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "multitask_strategy": "reject"}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "thread_busy"
    response = await rhttp.post(
        f"/threads/{tid}/runs/{delayed.json()['run_id']}/cancel", params={"wait": "true"}
    )
    assert response.json()["status"] == "interrupted"
    assert (await rhttp.get(f"/threads/{tid}")).json()["status"] == "idle"


async def test_reject_on_an_idle_thread_runs(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    result = await rclient.runs.wait(
        tid, "slow", input=EMPTY, context={"delay": 0}, multitask_strategy="reject"
    )
    assert result == {"steps": THREE}


# 3. interrupt


async def test_interrupt_strategy_stops_first_run_and_keeps_its_steps(
    rclient: LangGraphClient, runs_server: RunningServer
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start_slow(rclient, tid, delay=0.5)
    waiting = asyncio.create_task(rclient.runs.join(tid, first["run_id"]))
    await until_steps(rclient, tid, ["one"])

    loop = asyncio.get_running_loop()
    started = loop.time()
    second = await rclient.runs.create(
        tid, "slow", input=EMPTY, context={"delay": 0}, multitask_strategy="interrupt"
    )
    assert second["multitask_strategy"] == "interrupt"
    # Whoever waited on the first run is answered with what it left.
    assert await asyncio.wait_for(waiting, 1) == {"steps": ["one"]}
    assert await rclient.runs.join(tid, second["run_id"]) == {"steps": ["one", *THREE]}
    # The second run did not wait for the first's 0.5 s step to end.
    assert loop.time() - started < 0.4

    stopped = await rclient.runs.get(tid, first["run_id"])
    assert stopped["status"] == "interrupted"
    assert stopped["error"] == "The run was cancelled (interrupt)"
    assert (await rclient.runs.get(tid, second["run_id"]))["status"] == "success"

    history = await rclient.threads.get_history(tid, limit=100)
    first_steps = [
        s["values"]["steps"] for s in history if s["metadata"]["run_id"] == first["run_id"]
    ]
    assert ["one"] in first_steps
    assert first["run_id"] in await checkpoint_run_ids(runs_server, tid)
    assert await thread_status(rclient, tid) == "idle"


async def test_interrupt_strategy_cancels_running_and_queued_runs(
    rclient: LangGraphClient,
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    running = await start_slow(rclient, tid, delay=1)
    queued = await start_slow(rclient, tid, delay=0)
    await until_status(rclient, tid, running["run_id"], "running")
    last = await rclient.runs.create(
        tid, "ordered", input=EMPTY, context={"label": "last"}, multitask_strategy="interrupt"
    )
    assert await rclient.runs.join(tid, last["run_id"]) == {"steps": ["last:start", "last:end"]}
    assert await status_of(rclient, tid, running["run_id"]) == "interrupted"
    never = await rclient.runs.get(tid, queued["run_id"])
    assert (never["status"], never["attempt"]) == ("interrupted", 0)
    assert await thread_status(rclient, tid) == "idle"


# 4. rollback


async def test_rollback_strategy_deletes_running_and_queued_runs(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    running = await start_slow(rclient, tid, delay=1)
    queued = await start_slow(rclient, tid, delay=0)
    await until_status(rclient, tid, running["run_id"], "running")
    last = await rclient.runs.create(
        tid, "ordered", input=EMPTY, context={"label": "last"}, multitask_strategy="rollback"
    )
    assert await rclient.runs.join(tid, last["run_id"]) == {"steps": ["last:start", "last:end"]}
    for gone in (running, queued):
        response = await rhttp.get(f"/threads/{tid}/runs/{gone['run_id']}")
        assert response.status_code == 404
    assert [r["run_id"] for r in await rclient.runs.list(tid)] == [last["run_id"]]


async def test_rollback_strategy_deletes_first_run_and_its_checkpoints(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient, runs_server: RunningServer
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start_slow(rclient, tid, delay=0.4)
    waiting = asyncio.create_task(rclient.runs.join(tid, first["run_id"]))
    await until_steps(rclient, tid, ["one"])

    second = await rclient.runs.create(
        tid, "slow", input=EMPTY, context={"delay": 0}, multitask_strategy="rollback"
    )
    # A client joined to the rolled-back run is answered, not left hanging.
    await asyncio.wait_for(waiting, 1)
    assert await rclient.runs.join(tid, second["run_id"]) == {"steps": THREE}

    response = await rhttp.get(f"/threads/{tid}/runs/{first['run_id']}")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Run "{first["run_id"]}" not found on thread "{tid}"',
        "code": "run_not_found",
    }
    owners = await checkpoint_run_ids(runs_server, tid)
    assert owners
    assert set(owners) == {second["run_id"]}
    history = await rclient.threads.get_history(tid, limit=100)
    assert {s["metadata"]["run_id"] for s in history} == {second["run_id"]}
    listed = await rclient.runs.list(tid)
    assert [(r["run_id"], r["status"]) for r in listed] == [(second["run_id"], "success")]
    assert await thread_status(rclient, tid) == "idle"


# 5. Cancel one run


async def test_cancel_running_run_stops_it_mid_step(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, run["run_id"], "running")
    await asyncio.sleep(0.1)  # well inside the first step's 1 s sleep

    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await rhttp.post(f"/threads/{tid}/runs/{run['run_id']}/cancel")
    assert response.status_code == 202
    assert response.json() is None
    await until_status(rclient, tid, run["run_id"], "interrupted", within=0.5)
    assert loop.time() - started < 0.5

    stopped = await rclient.runs.get(tid, run["run_id"])
    assert stopped["error"] == "The run was cancelled (interrupt)"
    assert stopped["attempt"] == 1
    thread = await rclient.threads.get(tid)
    # Nothing had finished: the thread holds the input and would run "one" next.
    assert thread["status"] == "interrupted"
    assert thread["values"] == EMPTY
    assert (await rclient.threads.get_state(tid))["next"] == ["one"]


@pytest.mark.timeout(20)
async def test_cancel_ends_the_run_stream(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    events: list[tuple[str, Any]] = []
    stream = rclient.runs.stream(tid, "slow", input=EMPTY, context={"delay": 1})
    async with contextlib.aclosing(stream) as parts:
        async for part in parts:
            events.append((part.event, part.data))
            if part.event == "values":
                await rclient.runs.cancel(tid, events[0][1]["run_id"])
    assert [name for name, _ in events] == ["metadata", "values", "error", "end"]
    assert events[2][1] == {
        "error": "CancelledError",
        "message": "The run was cancelled (interrupt)",
    }


async def test_cancel_names_the_thread_of_the_run(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    other = (await rclient.threads.create())["thread_id"]
    run = await start_slow(rclient, tid, delay=0.1)
    response = await rhttp.post(f"/threads/{other}/runs/{run['run_id']}/cancel")
    assert response.status_code == 404
    assert response.json()["detail"] == f'Run "{run["run_id"]}" not found on thread "{other}"'
    assert await rclient.runs.join(tid, run["run_id"]) == {"steps": THREE}


async def test_cancel_with_wait_returns_after_the_run_ended(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, run["run_id"], "running")
    response = await rhttp.post(f"/threads/{tid}/runs/{run['run_id']}/cancel", params={"wait": 1})
    assert response.status_code == 200
    assert response.json()["run_id"] == run["run_id"]
    assert response.json()["status"] == "interrupted"
    assert response.headers["location"] == f"/threads/{tid}/runs/{run['run_id']}/join"

    other = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, other["run_id"], "running")
    await rclient.runs.cancel(tid, other["run_id"], wait=True)
    assert await status_of(rclient, tid, other["run_id"]) == "interrupted"


async def test_cancel_rollback_deletes_run_and_checkpoints(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient, runs_server: RunningServer
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    kept = await rclient.runs.wait(tid, "slow", input=EMPTY, context={"delay": 0})
    assert kept == {"steps": THREE}
    run = await start_slow(rclient, tid, delay=0.4)
    await until_steps(rclient, tid, [*THREE, "one"])

    await rclient.runs.cancel(tid, run["run_id"], wait=True, action="rollback")
    with pytest.raises(NotFoundError):
        await rclient.runs.get(tid, run["run_id"])
    assert run["run_id"] not in await checkpoint_run_ids(runs_server, tid)
    thread = await rclient.threads.get(tid)
    assert thread["status"] == "idle"
    assert thread["values"] == {"steps": THREE}
    assert (await rclient.threads.get_state(tid))["values"] == {"steps": THREE}

    # With wait, a rolled-back run answers null: there is no run left to show.
    other = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, other["run_id"], "running")
    response = await rhttp.post(
        f"/threads/{tid}/runs/{other['run_id']}/cancel",
        params={"wait": "true", "action": "rollback"},
    )
    assert response.status_code == 200
    assert response.json() is None
    assert (await rhttp.get(f"/threads/{tid}/runs/{other['run_id']}")).status_code == 404


async def test_cancel_pending_run_never_starts(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start_slow(rclient, tid, delay=0.15)
    queued = await start_slow(rclient, tid, delay=0)
    await until_status(rclient, tid, first["run_id"], "running")
    assert await status_of(rclient, tid, queued["run_id"]) == "pending"

    loop = asyncio.get_running_loop()
    started = loop.time()
    response = await rhttp.post(
        f"/threads/{tid}/runs/{queued['run_id']}/cancel", params={"wait": "true"}
    )
    # Waiting does not mean waiting for the run ahead of it.
    assert loop.time() - started < 0.3
    assert response.status_code == 200
    cancelled = response.json()
    assert cancelled["status"] == "interrupted"
    assert cancelled["error"] == "The run was cancelled before it started"
    assert await status_of(rclient, tid, first["run_id"]) == "running"
    assert await thread_status(rclient, tid) == "busy"

    assert await rclient.runs.join(tid, first["run_id"]) == {"steps": THREE}
    await asyncio.sleep(0.1)
    never = await rclient.runs.get(tid, queued["run_id"])
    assert never["status"] == "interrupted"
    assert never["attempt"] == 0
    assert (await rclient.threads.get_state(tid))["values"] == {"steps": THREE}
    assert await thread_status(rclient, tid) == "idle"


async def test_cancel_pending_run_with_rollback_deletes_it(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start_slow(rclient, tid, delay=0.1)
    queued = await start_slow(rclient, tid, delay=0)
    await rclient.runs.cancel(tid, queued["run_id"], action="rollback")
    with pytest.raises(NotFoundError):
        await rclient.runs.get(tid, queued["run_id"])
    assert await rclient.runs.join(tid, first["run_id"]) == {"steps": THREE}
    assert [r["run_id"] for r in await rclient.runs.list(tid)] == [first["run_id"]]


async def test_cancel_finished_run_is_409(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await start_slow(rclient, tid, delay=0)
    await rclient.runs.join(tid, run["run_id"])
    before = await rclient.runs.get(tid, run["run_id"])
    url = f"/threads/{tid}/runs/{run['run_id']}/cancel"
    refusal = {
        "detail": f'Run "{run["run_id"]}" already ended (success); there is nothing to cancel',
        "code": "run_not_active",
    }

    for params in ({}, {"wait": "true"}, {"action": "rollback"}):
        response = await rhttp.post(url, params=params)
        assert (response.status_code, response.json()) == (409, refusal)
    # Through the SDK, as a user writes it.
    with pytest.raises(ConflictError) as caught:
        await rclient.runs.cancel(tid, run["run_id"])
    assert caught.value.response.json() == refusal
    # With wait the SDK goes through its reconnecting request, which raises httpx's own error.
    with pytest.raises(httpx.HTTPStatusError) as waited:
        await rclient.runs.cancel(tid, run["run_id"], wait=True)
    assert waited.value.response.status_code == 409

    assert await rclient.runs.get(tid, run["run_id"]) == before
    assert await thread_status(rclient, tid) == "idle"


async def test_cancel_cancelled_run_names_its_status(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, run["run_id"], "running")
    await rclient.runs.cancel(tid, run["run_id"], wait=True)
    response = await rhttp.post(f"/threads/{tid}/runs/{run['run_id']}/cancel")
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Run "{run["run_id"]}" already ended (interrupted); there is nothing to cancel',
        "code": "run_not_active",
    }


async def test_bulk_cancel_skips_runs_that_already_ended(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    done = await start_slow(rclient, tid, delay=0)
    await rclient.runs.join(tid, done["run_id"])
    running = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, running["run_id"], "running")

    await rclient.runs.cancel_many(run_ids=[done["run_id"], running["run_id"]])
    await until_status(rclient, tid, running["run_id"], "interrupted", within=0.5)
    assert await status_of(rclient, tid, done["run_id"]) == "success"
    # Only ended runs named: nothing to do, and still a success.
    response = await rhttp.post("/runs/cancel", json={"run_ids": [done["run_id"]]})
    assert response.status_code == 204
    # An unknown id among them is a 404, and nothing is cancelled.
    other = await start_slow(rclient, tid, delay=1)
    await until_status(rclient, tid, other["run_id"], "running")
    response = await rhttp.post("/runs/cancel", json={"run_ids": [other["run_id"], MISSING]})
    assert response.status_code == 404
    assert await status_of(rclient, tid, other["run_id"]) == "running"
    await rclient.runs.cancel(tid, other["run_id"], wait=True)


async def test_cancel_errors(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    response = await rhttp.post(f"/threads/{tid}/runs/{MISSING}/cancel")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Run "{MISSING}" not found on thread "{tid}"',
        "code": "run_not_found",
    }
    response = await rhttp.post(f"/threads/{tid}/runs/nope/cancel")
    assert response.status_code == 422
    assert response.json() == {"detail": 'run_id must be a UUID, got "nope"', "code": "invalid_id"}
    response = await rhttp.post(f"/threads/{tid}/runs/{MISSING}/cancel", params={"action": "undo"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith("action: ")
    assert '"undo"' in response.json()["detail"]


# 5b. Bulk cancel


async def test_bulk_cancel_by_run_ids(rclient: LangGraphClient) -> None:
    a = (await rclient.threads.create())["thread_id"]
    b = (await rclient.threads.create())["thread_id"]
    run_a = await start_slow(rclient, a, delay=1)
    run_b = await start_slow(rclient, b, delay=1)
    await until_status(rclient, a, run_a["run_id"], "running")
    await until_status(rclient, b, run_b["run_id"], "running")

    await rclient.runs.cancel_many(run_ids=[run_a["run_id"], run_b["run_id"]])
    await until_status(rclient, a, run_a["run_id"], "interrupted", within=0.5)
    await until_status(rclient, b, run_b["run_id"], "interrupted", within=0.5)


async def test_bulk_cancel_by_thread(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    other = (await rclient.threads.create())["thread_id"]
    running = await start_slow(rclient, tid, delay=1)
    queued = await start_slow(rclient, tid, delay=0)
    untouched = await start_slow(rclient, other, delay=0.05)
    await until_status(rclient, tid, running["run_id"], "running")

    await rclient.runs.cancel_many(thread_id=tid)
    await until_status(rclient, tid, running["run_id"], "interrupted", within=0.5)
    assert await status_of(rclient, tid, queued["run_id"]) == "interrupted"
    assert (await rclient.runs.get(tid, queued["run_id"]))["attempt"] == 0
    await until(lambda: _is(thread_status(rclient, tid), "interrupted"))
    assert await rclient.runs.join(other, untouched["run_id"]) == {"steps": THREE}
    assert await status_of(rclient, other, untouched["run_id"]) == "success"


async def test_bulk_cancel_pending_only(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    running = await start_slow(rclient, tid, delay=0.1)
    queued = await start_slow(rclient, tid, delay=0)
    await until_status(rclient, tid, running["run_id"], "running")

    await rclient.runs.cancel_many(status="pending")
    assert await status_of(rclient, tid, queued["run_id"]) == "interrupted"
    assert await rclient.runs.join(tid, running["run_id"]) == {"steps": THREE}
    assert await status_of(rclient, tid, running["run_id"]) == "success"
    assert (await rclient.runs.get(tid, queued["run_id"]))["attempt"] == 0


async def test_bulk_cancel_running_only(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    running = await start_slow(rclient, tid, delay=1)
    queued = await start_slow(rclient, tid, delay=0)
    await until_status(rclient, tid, running["run_id"], "running")

    await rclient.runs.cancel_many(status="running")
    await until_status(rclient, tid, running["run_id"], "interrupted", within=0.5)
    # The queued run was not named, so it starts once the thread is free.
    assert await rclient.runs.join(tid, queued["run_id"]) == {"steps": THREE}
    assert await status_of(rclient, tid, queued["run_id"]) == "success"


async def test_bulk_cancel_all_with_rollback(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    a = (await rclient.threads.create())["thread_id"]
    b = (await rclient.threads.create())["thread_id"]
    done = await rclient.runs.create(a, "slow", input=EMPTY, context={"delay": 0})
    await rclient.runs.join(a, done["run_id"])
    running = await start_slow(rclient, a, delay=1)
    queued = await start_slow(rclient, a, delay=0)
    elsewhere = await start_slow(rclient, b, delay=1)
    await until_status(rclient, a, running["run_id"], "running")
    await until_status(rclient, b, elsewhere["run_id"], "running")

    response = await rhttp.post(
        "/runs/cancel", params={"action": "rollback"}, json={"status": "all"}
    )
    assert response.status_code == 204
    assert response.content == b""

    async def gone() -> bool:
        runs = [(a, running), (a, queued), (b, elsewhere)]
        codes = [(await rhttp.get(f"/threads/{t}/runs/{r['run_id']}")).status_code for t, r in runs]
        return codes == [404, 404, 404]

    await until(gone, within=1)
    assert [r["run_id"] for r in await rclient.runs.list(a)] == [done["run_id"]]
    assert (await rclient.threads.get_state(a))["values"] == {"steps": THREE}


async def test_bulk_cancel_invalid_bodies(rhttp: httpx.AsyncClient) -> None:
    name_them = "Name the runs to cancel: run_ids, thread_id or status"
    cases: list[tuple[Any, dict[str, str], str, str]] = [
        ({}, {}, "invalid_request", name_them),
        ({"run_ids": []}, {}, "invalid_request", name_them),
        ({"run_ids": ["nope"]}, {}, "invalid_id", 'run_ids[] must be a UUID, got "nope"'),
        ({"thread_id": "nope"}, {}, "invalid_id", 'thread_id must be a UUID, got "nope"'),
        (
            {"surprise": True},
            {},
            "validation_error",
            'Unknown field "surprise" in the request body',
        ),
        ([MISSING], {}, "validation_error", "The request body must be a JSON object, got "),
    ]
    for body, params, code, detail in cases:
        response = await rhttp.post("/runs/cancel", json=body, params=params)
        assert response.status_code == 422, body
        assert response.json()["code"] == code, body
        assert response.json()["detail"].startswith(detail), response.json()

    response = await rhttp.post("/runs/cancel", json={"status": "done"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith("status: ")
    assert '"done"' in response.json()["detail"]
    response = await rhttp.post("/runs/cancel", json={"status": "all"}, params={"action": "undo"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("action: ")

    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    done = await rhttp.post(
        f"/threads/{tid}/runs/wait",
        json={"assistant_id": "slow", "input": EMPTY, "context": {"delay": 0}},
    )
    run_id = done.headers["content-location"].rsplit("/", 1)[1]
    response = await rhttp.post("/runs/cancel", json={"run_ids": [run_id]})
    assert response.status_code == 204
    assert (await rhttp.get(f"/threads/{tid}/runs/{run_id}")).json()["status"] == "success"

    response = await rhttp.post("/runs/cancel", json={"run_ids": [MISSING]})
    assert response.status_code == 404
    assert response.json() == {"detail": f'Run "{MISSING}" not found', "code": "run_not_found"}


# 6. on_disconnect


async def _stream_until_first_values(client: LangGraphClient, thread_id: str, **kwargs: Any) -> str:
    """Start a slow streamed run, read up to its first `values` event, then hang up."""
    run_id = ""
    stream = client.runs.stream(thread_id, "slow", input=EMPTY, context={"delay": 1}, **kwargs)
    async with contextlib.aclosing(stream) as parts:
        async for part in parts:
            if part.event == "metadata":
                run_id = part.data["run_id"]
            if part.event == "values":
                break
    assert run_id
    return run_id


@pytest.mark.timeout(20)
async def test_on_disconnect_cancel_interrupts_the_run(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    loop = asyncio.get_running_loop()
    run_id = await _stream_until_first_values(rclient, tid, on_disconnect="cancel")
    hung_up = loop.time()
    await until_status(rclient, tid, run_id, "interrupted", within=0.5)
    assert loop.time() - hung_up < 0.5
    assert (await rclient.runs.get(tid, run_id))["error"] == "The run was cancelled (interrupt)"


@pytest.mark.timeout(20)
async def test_on_disconnect_default_continues(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    stream = rclient.runs.stream(tid, "slow", input=EMPTY, context={"delay": 0.15})
    run_id = ""
    async with contextlib.aclosing(stream) as parts:
        async for part in parts:
            if part.event == "metadata":
                run_id = part.data["run_id"]
                break
    assert await rclient.runs.join(tid, run_id) == {"steps": THREE}
    assert await status_of(rclient, tid, run_id) == "success"


@pytest.mark.timeout(20)
async def test_on_disconnect_cancel_on_stateless_stream(rhttp: httpx.AsyncClient) -> None:
    body = {
        "assistant_id": "slow",
        "input": EMPTY,
        "context": {"delay": 1},
        "on_disconnect": "cancel",
        "on_completion": "keep",
    }
    async with rhttp.stream("POST", "/runs/stream", json=body) as response:
        assert response.status_code == 200
        run_url = response.headers["content-location"]
        async for line in response.aiter_lines():
            if line == "event: values":
                break

    async def interrupted() -> bool:
        return (await rhttp.get(run_url)).json()["status"] == "interrupted"

    await until(interrupted, within=0.5)


# 7. after_seconds


async def test_after_seconds_delays_the_run_but_not_other_threads(
    rclient: LangGraphClient,
) -> None:
    loop = asyncio.get_running_loop()
    delayed_tid = (await rclient.threads.create())["thread_id"]
    other_tid = (await rclient.threads.create())["thread_id"]
    started = loop.time()
    delayed = await rclient.runs.create(
        delayed_tid, "slow", input=EMPTY, context={"delay": 0}, after_seconds=1
    )
    assert delayed["status"] == "pending"
    assert delayed["kwargs"]["after_seconds"] == 1

    prompt = await rclient.runs.create(other_tid, "slow", input=EMPTY, context={"delay": 0})
    assert await rclient.runs.join(other_tid, prompt["run_id"]) == {"steps": THREE}
    assert loop.time() - started < 0.8
    await asyncio.sleep(max(0.0, 0.7 - (loop.time() - started)))
    assert await status_of(rclient, delayed_tid, delayed["run_id"]) == "pending"
    assert await thread_status(rclient, delayed_tid) == "busy"

    await until_status(rclient, delayed_tid, delayed["run_id"], "running", "success", within=2)
    assert loop.time() - started >= 1.0
    assert await rclient.runs.join(delayed_tid, delayed["run_id"]) == {"steps": THREE}
    assert loop.time() - started < 2.0
    assert await thread_status(rclient, delayed_tid) == "idle"


async def test_after_seconds_negative_is_refused(rhttp: httpx.AsyncClient) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    response = await rhttp.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "after_seconds": -1}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith("after_seconds: ")


# 8. Webhooks


class WebhookReceiver:
    """A tiny HTTP/1.1 server that records each request it gets and answers 204."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[tuple[str, dict[str, str], bytes]] = asyncio.Queue()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.put_nowait((request_line, headers, body))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    running = await WebhookReceiver().start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def hook_server(database: Path) -> AsyncIterator[RunningServer]:
    data = json.loads(RUNS_CONFIG.read_text())
    data["agent_runtime"] = {"webhooks_allow_private": True}
    config = config_from_dict(data, base_dir=RUNS_CONFIG.parent, database=database, environ={})
    assert config.webhooks_allow_private is True
    running = await RunningServer(config).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.timeout(20)
async def test_webhook_receives_the_finished_run(
    hook_server: RunningServer, receiver: WebhookReceiver
) -> None:
    sdk = get_client(url=hook_server.url, api_key=None)
    try:
        tid = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(
            tid, "slow", input=EMPTY, context={"delay": 0}, webhook=receiver.url
        )
        request_line, headers, body = await asyncio.wait_for(receiver.requests.get(), 5)
        stored = await sdk.runs.get(tid, run["run_id"])
    finally:
        await sdk.http.client.aclose()
    assert request_line == "POST /hook HTTP/1.1"
    assert headers["content-type"] == "application/json"
    posted = json.loads(body)
    assert posted["run_id"] == run["run_id"]
    assert posted["thread_id"] == tid
    assert posted["status"] == "success"
    assert posted["kwargs"]["webhook"] == receiver.url
    assert posted == stored

    # A cancelled run ends too, and is posted as it ended.
    sdk = get_client(url=hook_server.url, api_key=None)
    try:
        run = await sdk.runs.create(
            tid, "slow", input=EMPTY, context={"delay": 1}, webhook=receiver.url
        )
        await until_status(sdk, tid, run["run_id"], "running")
        await sdk.runs.cancel(tid, run["run_id"])
        _, _, body = await asyncio.wait_for(receiver.requests.get(), 5)
    finally:
        await sdk.http.client.aclose()
    posted = json.loads(body)
    assert (posted["run_id"], posted["status"]) == (run["run_id"], "interrupted")


async def test_webhook_to_loopback_is_refused_by_default(
    rhttp: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "slow", "input": EMPTY, "webhook": receiver.url}
    for path in (f"/threads/{tid}/runs", f"/threads/{tid}/runs/stream", "/runs/wait"):
        response = await rhttp.post(path, json=body)
        assert response.status_code == 422, path
        error = body_of(response)
        assert error["code"] == "webhook_refused"
        assert error["detail"].startswith(
            'webhook: "127.0.0.1" resolves to 127.0.0.1, a private or loopback address; '
        )
        # The way out must name the key the config actually reads.
        assert '"webhooks_allow_private": true' in error["detail"], error["detail"]
    assert (await rhttp.get(f"/threads/{tid}/runs")).json() == []
    assert receiver.requests.empty()

    response = await rhttp.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "webhook": "ftp://example.com/x"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == 'webhook: "ftp://example.com/x" is not an http or https URL'


async def test_webhook_refusal_advice_is_a_valid_config(tmp_path: Path) -> None:
    """Following the refusal's advice must give a config that allows private webhooks."""
    config = config_from_dict(
        {"graphs": {"slow": "./graphs.py:slow"}, "agent_runtime": {"webhooks_allow_private": True}},
        base_dir=RUNS_CONFIG.parent,
        database=tmp_path / "db.sqlite",
        environ={},
    )
    assert config.webhooks_allow_private is True


# 9. strict_resume


async def test_strict_resume_on_thread_not_interrupted(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    body = {"assistant_id": "nested", "command": {"resume": "yes"}, "strict_resume": True}
    detail = (
        f'Thread "{tid}" is idle, not interrupted, so there is nothing to resume '
        "(strict_resume is set)"
    )
    for path in ("/runs", "/runs/wait", "/runs/stream"):
        response = await rhttp.post(f"/threads/{tid}{path}", json=body)
        assert response.status_code == 409, path
        assert body_of(response) == {"detail": detail, "code": "nothing_to_resume"}, path
    assert await rclient.runs.list(tid) == []

    paused = await rclient.runs.wait(tid, "nested", input=EMPTY)
    assert paused["__interrupt__"][0]["value"] == {"question": "continue?"}
    assert await thread_status(rclient, tid) == "interrupted"
    done = await rclient.runs.wait(tid, "nested", command={"resume": "yes"}, strict_resume=True)
    assert done["steps"][-1] == "after"
    assert await thread_status(rclient, tid) == "idle"

    response = await rhttp.post(f"/threads/{tid}/runs", json=body)
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_resume"


async def test_strict_resume_on_a_thread_it_would_create(rhttp: httpx.AsyncClient) -> None:
    tid = "22222222-2222-4222-8222-222222222222"
    response = await rhttp.post(
        f"/threads/{tid}/runs",
        json={
            "assistant_id": "nested",
            "command": {"resume": "yes"},
            "strict_resume": True,
            "if_not_exists": "create",
        },
    )
    # A thread created for this run has nothing to resume: the refusal is strict_resume's.
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_resume"
    assert (await rhttp.get(f"/threads/{tid}")).status_code == 404
    # A stateless run's thread is always new, so the same holds.
    response = await rhttp.post(
        "/runs", json={"assistant_id": "nested", "command": {"resume": 1}, "strict_resume": True}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_resume"


async def test_strict_resume_after_a_failed_run(rhttp: httpx.AsyncClient) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    await rhttp.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "failing", "input": EMPTY})
    response = await rhttp.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "nested", "command": {"resume": 1}, "strict_resume": True},
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{tid}" is error, not interrupted, so there is nothing to resume '
        "(strict_resume is set)",
        "code": "nothing_to_resume",
    }


# 10. Thread status and listing runs


async def test_thread_status_follows_runs(rclient: LangGraphClient) -> None:
    failed = (await rclient.threads.create())["thread_id"]
    assert await thread_status(rclient, failed) == "idle"
    await rclient.runs.wait(failed, "failing", input=EMPTY, raise_error=False)
    assert await thread_status(rclient, failed) == "error"

    paused = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(paused, "nested", input=EMPTY)
    thread = await rclient.threads.get(paused)
    assert thread["status"] == "interrupted"
    assert [i["value"] for group in thread["interrupts"].values() for i in group] == [
        {"question": "continue?"}
    ]
    await rclient.runs.wait(paused, "nested", command={"resume": "yes"})
    thread = await rclient.threads.get(paused)
    assert thread["status"] == "idle"
    assert thread["interrupts"] == {}

    recovered = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(recovered, "slow", input=EMPTY, context={"delay": 0})
    await rclient.runs.wait(recovered, "failing", input=EMPTY, raise_error=False)
    assert await thread_status(rclient, recovered) == "error"
    await rclient.runs.wait(recovered, "slow", input=EMPTY, context={"delay": 0})
    assert await thread_status(rclient, recovered) == "idle"


async def test_list_runs_filters_and_pages(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    made = []
    for graph in ("slow", "failing", "slow", "slow"):
        run = await rclient.runs.create(tid, graph, input=EMPTY, context={"delay": 0})
        await rclient.runs.join(tid, run["run_id"])
        made.append(run["run_id"])
    newest_first = list(reversed(made))
    url = f"/threads/{tid}/runs"

    async def ids(**params: Any) -> list[str]:
        response = await rhttp.get(url, params=params)
        assert response.status_code == 200, response.text
        return [r["run_id"] for r in response.json()]

    assert await ids() == newest_first
    assert await ids(status="success") == [made[3], made[2], made[0]]
    assert await ids(status="error") == [made[1]]
    assert await ids(status="pending") == []
    assert await ids(limit=2) == newest_first[:2]
    assert await ids(limit=2, offset=1) == newest_first[1:3]
    assert await ids(offset=3) == newest_first[3:]
    assert await ids(offset=10) == []
    assert await ids(status="success", limit=1, offset=1) == [made[2]]
    sdk = await rclient.runs.list(tid, status="success", limit=2)
    assert [r["run_id"] for r in sdk] == [made[3], made[2]]

    for params, field in (
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
    ):
        response = await rhttp.get(url, params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"
        assert response.json()["detail"].startswith(f"{field}: ")
    response = await rhttp.get(f"/threads/{MISSING}/runs")
    assert response.status_code == 404
    assert response.json()["detail"] == f'Thread "{MISSING}" not found'


async def test_list_runs_select(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await rclient.runs.create(tid, "slow", input=EMPTY, context={"delay": 0})
    await rclient.runs.join(tid, run["run_id"])

    # The SDK sends one `select` parameter per field.
    picked = await rclient.runs.list(tid, select=["run_id", "status"])
    assert picked == [{"run_id": run["run_id"], "status": "success"}]
    response = await rhttp.get(f"/threads/{tid}/runs", params={"select": "run_id"})
    assert response.status_code == 200
    assert response.json() == [{"run_id": run["run_id"]}]
    response = await rhttp.get(f"/threads/{tid}/runs", params={"select": "colour"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "colour" in response.json()["detail"]


# 11. Run shape


async def test_run_shape(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    created = await rhttp.post(
        f"/threads/{tid}/runs",
        json={
            "assistant_id": "slow",
            "input": EMPTY,
            "context": {"delay": 0},
            "metadata": {"purpose": "shape"},
        },
    )
    assert created.status_code == 200
    run = created.json()
    rid = run["run_id"]
    assert created.headers["content-location"] == f"/threads/{tid}/runs/{rid}"
    await rclient.runs.join(tid, rid)

    response = await rhttp.get(f"/threads/{tid}/runs/{rid}")
    assert response.status_code == 200
    final = response.json()
    # The fields every run carries; extensions (usage) may sit beside them.
    assert set(final) >= {
        "run_id",
        "thread_id",
        "assistant_id",
        "created_at",
        "updated_at",
        "status",
        "metadata",
        "multitask_strategy",
        "kwargs",
        "attempt",
        "error",
    }
    assert final["run_id"] == rid
    assert final["thread_id"] == tid
    assert final["assistant_id"] == default_assistant_id("slow")
    assert final["status"] == "success"
    assert final["metadata"] == {"purpose": "shape"}
    assert final["multitask_strategy"] == "enqueue"
    assert final["kwargs"]["input"] == EMPTY
    assert final["kwargs"]["context"] == {"delay": 0}
    assert final["kwargs"]["stream_mode"] == ["values"]
    assert final["attempt"] == 1
    assert final["error"] is None
    created_at = datetime.fromisoformat(final["created_at"])
    updated_at = datetime.fromisoformat(final["updated_at"])
    assert created_at.tzinfo is not None
    assert created_at == datetime.fromisoformat(run["created_at"])
    assert created_at <= updated_at
    assert run["status"] == "pending"
    assert run["attempt"] == 0

    response = await rhttp.get(f"/threads/{tid}/runs/{MISSING}")
    assert response.status_code == 404
    assert response.json()["code"] == "run_not_found"
    response = await rhttp.get(f"/threads/{tid}/runs/nope")
    assert response.status_code == 422
    assert response.json() == {"detail": 'run_id must be a UUID, got "nope"', "code": "invalid_id"}
