"""Cancelling runs: one run (interrupt, rollback, wait), pending and finished runs, bulk cancel,
and cancelling when a streaming client hangs up (on_disconnect)."""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.conftest import RunningServer, generator, json_of, until
from tests.server.run_probes import (
    EMPTY,
    MISSING,
    THREE,
    checkpoint_run_ids,
    is_,
    start_slow,
    status_of,
    thread_status,
    until_status,
    until_steps,
)

# Cancel one run


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
    assert json_of(stopped)["error"] == "The run was cancelled (interrupt)"
    assert json_of(stopped)["attempt"] == 1
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
    async with contextlib.aclosing(generator(stream)) as parts:
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
    assert json_of(never)["attempt"] == 0
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


# Bulk cancel


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
    assert json_of(await rclient.runs.get(tid, queued["run_id"]))["attempt"] == 0
    await until(lambda: is_(thread_status(rclient, tid), "interrupted"))
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
    assert json_of(await rclient.runs.get(tid, queued["run_id"]))["attempt"] == 0


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


# on_disconnect


async def _stream_until_first_values(client: LangGraphClient, thread_id: str, **kwargs: Any) -> str:
    """Start a slow streamed run, read up to its first `values` event, then hang up."""
    run_id = ""
    stream = client.runs.stream(thread_id, "slow", input=EMPTY, context={"delay": 1}, **kwargs)
    async with contextlib.aclosing(generator(stream)) as parts:
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
    assert (
        json_of(await rclient.runs.get(tid, run_id))["error"] == "The run was cancelled (interrupt)"
    )


@pytest.mark.timeout(20)
async def test_on_disconnect_default_continues(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    stream = rclient.runs.stream(tid, "slow", input=EMPTY, context={"delay": 0.15})
    run_id = ""
    async with contextlib.aclosing(generator(stream)) as parts:
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
