"""One run at a time per thread, and the multitask strategies (enqueue, reject, interrupt,
rollback) for a run created on a busy thread."""

from __future__ import annotations

import asyncio

import httpx
from langgraph_sdk.client import LangGraphClient

from tests.conftest import RunningServer, json_of
from tests.server.run_probes import (
    EMPTY,
    THREE,
    body_of,
    checkpoint_run_ids,
    start_slow,
    status_of,
    thread_status,
    until_status,
    until_steps,
)

# One run at a time per thread (enqueue)


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
    assert json_of(state["values"])["steps"] == [
        f"{n}:{end}" for n in range(5) for end in ("start", "end")
    ]
    listed = await rclient.runs.list(tid)
    assert [r["run_id"] for r in listed] == [r["run_id"] for r in reversed(runs)]
    assert {r["status"] for r in listed} == {"success"}
    finished = [(await rclient.runs.get(tid, r["run_id"]))["updated_at"] for r in runs]
    assert finished == sorted(finished)
    assert await thread_status(rclient, tid) == "idle"


# reject


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


# interrupt


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
    assert json_of(stopped)["error"] == "The run was cancelled (interrupt)"
    assert (await rclient.runs.get(tid, second["run_id"]))["status"] == "success"

    history = await rclient.threads.get_history(tid, limit=100)
    first_steps = [
        json_of(s["values"])["steps"]
        for s in history
        if json_of(s["metadata"])["run_id"] == first["run_id"]
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
    assert (never["status"], json_of(never)["attempt"]) == ("interrupted", 0)
    assert await thread_status(rclient, tid) == "idle"


# rollback


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
    assert {json_of(s["metadata"])["run_id"] for s in history} == {second["run_id"]}
    listed = await rclient.runs.list(tid)
    assert [(r["run_id"], r["status"]) for r in listed] == [(second["run_id"], "success")]
    assert await thread_status(rclient, tid) == "idle"
