"""The run manager's own contracts, below HTTP: runs are committed before `create` returns, run
one at a time per thread in creation order, are cancelled per multitask strategy or on request,
end (never stay `running`) when our side fails, give up after `max_attempts`, and a stateless
run's thread goes with it. Real storage, graphs and event log; see harness.py."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.storage.records import RunOutcome, ThreadQuery
from tests.conftest import until
from tests.runs.harness import Harness, build_harness

EMPTY: dict[str, Any] = {"steps": []}
THREE = ["one", "two", "three"]
CANCELLED = {"error": "CancelledError", "message": "The run was cancelled (interrupt)"}


async def test_create_commits_the_run_pending_and_it_ends_success(harness: Harness) -> None:
    tid = await harness.thread()
    run = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    # Committed before `create` returned: a read sees the row, and the thread is busy.
    assert run["status"] == "pending"
    assert run["attempt"] == 0
    stored = await harness.storage.get_run(tid, run["run_id"])
    assert stored["run_id"] == run["run_id"]
    assert stored["status"] in ("pending", "running")
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "busy"

    final, outcome = await harness.manager.wait(run)
    assert final is not None and outcome is not None
    assert final["status"] == "success"
    assert final["error"] is None
    assert final["attempt"] == 1
    assert outcome.status == "success"
    assert outcome.decoded_values() == {"steps": THREE}
    thread = await harness.storage.get_thread(tid)
    assert thread["status"] == "idle"
    assert thread["values"] == {"steps": THREE}


async def test_wait_returns_the_final_row_also_when_asked_late(harness: Harness) -> None:
    tid = await harness.thread()
    run = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    final, _ = await harness.manager.wait(run)
    assert final is not None
    # The stale `pending` row is re-read, not waited on forever.
    again, outcome = await harness.manager.wait(run)
    assert again == await harness.storage.get_run(tid, run["run_id"])
    assert again is not None and again["status"] == "success"
    assert outcome is None
    # A row already final is answered as it is.
    assert await harness.manager.wait(again) == (again, None)


async def test_enqueued_runs_run_one_at_a_time_in_creation_order(harness: Harness) -> None:
    tid = await harness.thread()
    # The first runs long enough to be seen running behind the creation of the others.
    runs = [
        await harness.manager.create(
            harness.new_run(
                tid, "ordered", input=EMPTY, context={"label": str(n), "delay": 0.02 if n else 0.5}
            )
        )
        for n in range(4)
    ]
    await until(lambda: _is(harness.run_status(tid, runs[0]["run_id"]), "running"))
    assert [await harness.run_status(tid, r["run_id"]) for r in runs[1:]] == ["pending"] * 3

    finals = [await harness.manager.wait(run) for run in runs]
    assert [final["status"] for final, _ in finals if final] == ["success"] * 4
    # Had any run started before the one before it ended, its start would come earlier.
    assert (await harness.values(tid, "ordered"))["steps"] == [
        f"{n}:{end}" for n in range(4) for end in ("start", "end")
    ]
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "idle"


async def test_reject_while_busy_raises_conflict(harness: Harness) -> None:
    tid = await harness.thread()
    first = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.05})
    )
    refused = harness.new_run(tid, "slow", input=EMPTY, multitask_strategy="reject")
    with pytest.raises(ConflictError) as caught:
        await harness.manager.create(refused)
    assert caught.value.code == "thread_busy"
    assert caught.value.detail == (
        f'Thread "{tid}" is busy with run "{first["run_id"]}"; '
        'multitask_strategy="reject" refuses a second run'
    )
    with pytest.raises(NotFoundError):
        await harness.storage.get_run(tid, refused.run_id)
    final, _ = await harness.manager.wait(first)
    assert final is not None and final["status"] == "success"


async def test_interrupt_strategy_cancels_the_active_run_and_keeps_its_steps(
    harness: Harness,
) -> None:
    tid = await harness.thread()
    first = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5})
    )
    await until(lambda: _steps_are(harness, tid, ["one"]))
    second = await harness.manager.create(
        harness.new_run(
            tid, "slow", input=EMPTY, context={"delay": 0}, multitask_strategy="interrupt"
        )
    )
    stopped, _ = await asyncio.wait_for(harness.manager.wait(first), 1)
    assert stopped is not None
    assert stopped["status"] == "interrupted"
    assert stopped["error"] == "The run was cancelled (interrupt)"
    done, _ = await harness.manager.wait(second)
    assert done is not None and done["status"] == "success"
    assert (await harness.values(tid))["steps"] == ["one", *THREE]
    # What the interrupted run finished stays in the thread's history.
    assert first["run_id"] in await harness.checkpoint_run_ids(tid)
    events = await harness.published(first["run_id"])
    assert events[-2:] == [("error", CANCELLED), ("end", None)]


async def test_rollback_strategy_deletes_the_active_run_and_its_checkpoints(
    harness: Harness,
) -> None:
    tid = await harness.thread()
    first = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5})
    )
    queued = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    await until(lambda: _steps_are(harness, tid, ["one"]))
    assert first["run_id"] in await harness.checkpoint_run_ids(tid)

    last = await harness.manager.create(
        harness.new_run(
            tid, "slow", input=EMPTY, context={"delay": 0}, multitask_strategy="rollback"
        )
    )
    # Both the running and the queued run are gone, rows and checkpoints.
    assert await asyncio.wait_for(harness.manager.wait(first), 1) == (None, None)
    assert await harness.manager.wait(queued) == (None, None)
    done, _ = await harness.manager.wait(last)
    assert done is not None and done["status"] == "success"
    for gone in (first, queued):
        with pytest.raises(NotFoundError):
            await harness.storage.get_run(tid, gone["run_id"])
    assert set(await harness.checkpoint_run_ids(tid)) == {last["run_id"]}
    assert (await harness.values(tid))["steps"] == THREE
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "idle"


async def test_cancel_of_a_pending_run_never_starts_it(harness: Harness) -> None:
    tid = await harness.thread()
    first = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.1})
    )
    queued = await harness.manager.create(
        harness.new_run(tid, "ordered", input=EMPTY, context={"label": "never"})
    )
    await harness.manager.cancel(queued)
    cancelled, outcome = await harness.manager.wait(queued)
    assert cancelled is not None and outcome is None
    assert cancelled["status"] == "interrupted"
    assert cancelled["error"] == "The run was cancelled before it started"
    assert cancelled["attempt"] == 0
    # Its stream ends without a single event of a run.
    assert await harness.published(queued["run_id"]) == [("end", None)]

    await harness.manager.wait(first)
    assert (await harness.values(tid))["steps"] == THREE
    assert queued["run_id"] not in await harness.checkpoint_run_ids(tid)
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "idle"


async def test_cancel_of_a_pending_run_with_rollback_deletes_it(harness: Harness) -> None:
    tid = await harness.thread()
    first = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.05})
    )
    queued = await harness.manager.create(harness.new_run(tid, "slow", input=EMPTY))
    await harness.manager.cancel(queued, action="rollback")
    assert await harness.manager.wait(queued) == (None, None)
    with pytest.raises(NotFoundError):
        await harness.storage.get_run(tid, queued["run_id"])
    await harness.manager.wait(first)
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "idle"


async def test_cancel_of_a_running_run_stops_it_mid_step(harness: Harness) -> None:
    tid = await harness.thread()
    run = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5})
    )
    await until(lambda: _steps_are(harness, tid, ["one"]))
    loop = asyncio.get_running_loop()
    started = loop.time()
    await harness.manager.cancel(run)
    stopped, outcome = await harness.manager.wait(run)
    # Well inside the 0.5 s step it was in.
    assert loop.time() - started < 0.4
    assert stopped is not None and outcome is not None
    assert stopped["status"] == "interrupted"
    assert stopped["error"] == "The run was cancelled (interrupt)"
    assert outcome.decoded_values() == {"steps": ["one"]}
    assert (await harness.values(tid))["steps"] == ["one"]
    events = await harness.published(run["run_id"])
    assert [name for name, _ in events] == ["metadata", "values", "values", "error", "end"]
    assert events[-2] == ("error", CANCELLED)
    # Step "two" had begun but not finished: the thread would run it next.
    assert outcome.thread_status == "interrupted"
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "interrupted"
    graph = await harness.graph("slow")
    assert (await graph.aget_state({"configurable": {"thread_id": tid}})).next == ("two",)


async def test_a_run_taken_over_by_another_process_stops_here_and_is_not_ended_here(
    database: Path,
) -> None:
    # A 0.6 s lease, renewed every 0.2 s. While the run is in its first step, its claim goes
    # back and another owner ("B") claims it, as another process's reaper and worker would
    # after this process went silent past the lease.
    harness = await build_harness(database, lease_seconds=0.6)
    try:
        tid = await harness.thread()
        run = await harness.manager.create(
            harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5})
        )
        await until(lambda: _steps_are(harness, tid, ["one"]))
        assert await harness.storage.release(harness.manager.owner) == [tid]
        taken = await harness.storage.claim_next_run(tid, owner="B", lease=timedelta(seconds=60))
        assert taken is not None and taken["attempt"] == 2
        # The next renewal finds the run gone and stops its execution mid-step: no further
        # step is written here, and the run stays B's, running.
        await asyncio.sleep(1.2)
        assert (await harness.values(tid))["steps"] == ["one"]
        still = await harness.storage.get_run(tid, run["run_id"])
        assert (still["status"], still["attempt"]) == ("running", 2)
        assert harness.manager.executing == 0
        # B's end is the run's, and a waiter here reads it.
        ended = await harness.storage.finish_run(
            run["run_id"], RunOutcome(status="success"), held_by="B"
        )
        assert ended is not None
        final, outcome = await asyncio.wait_for(harness.manager.wait(run), 10)
        assert final is not None and final["status"] == "success"
        assert outcome is None
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_a_run_whose_assistant_was_deleted_ends_in_error(harness: Harness) -> None:
    tid = await harness.thread()
    blocker = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.05})
    )
    assistant = await harness.assistant("slow")
    queued = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, assistant_id=assistant["assistant_id"])
    )
    await harness.storage.delete_assistant(assistant["assistant_id"])
    await harness.manager.wait(blocker)

    failed, _ = await harness.manager.wait(queued)
    assert failed is not None
    assert failed["status"] == "error"
    message = f'Assistant "{assistant["assistant_id"]}" not found'
    assert failed["error"] == f"NotFoundError: {message}"
    events = await harness.published(queued["run_id"])
    assert events == [
        ("metadata", {"run_id": queued["run_id"], "attempt": 1}),
        ("error", {"error": "NotFoundError", "message": message}),
        ("end", None),
    ]
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "error"


async def test_a_run_of_a_graph_no_longer_served_ends_in_error(harness: Harness) -> None:
    tid = await harness.thread()
    # An assistant left behind by a langgraph.json that served "retired".
    assistant = await harness.assistant("retired")
    run = await harness.manager.create(
        harness.new_run(tid, "retired", assistant_id=assistant["assistant_id"])
    )
    failed, outcome = await harness.manager.wait(run)
    assert failed is not None and outcome is not None
    known = ", ".join(harness.registry.graph_ids)
    assert failed["status"] == "error"
    assert failed["error"] == f'NotFoundError: Graph "retired" not found; known graphs: {known}'
    assert outcome.thread_status == "error"
    assert (await harness.storage.get_thread(tid, values=False))["status"] == "error"


async def test_a_run_claimed_past_max_attempts_ends_in_error(database: Path) -> None:
    # A run the server was killed under three times: claimed, then requeued at start-up.
    first = await build_harness(database)
    try:
        tid = await first.thread()
        new = first.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
        await first.manager.stop()
        await first.storage.create_run(new)
        for _ in range(3):
            claimed = await first.storage.claim_next_run(tid)
            assert claimed is not None
            assert await first.storage.requeue_interrupted_work() == [tid]
        assert (await first.storage.get_run(tid, new.run_id))["attempt"] == 3
    finally:
        await first.storage.close()

    second = await build_harness(database)
    try:
        run = await second.storage.get_run(tid, new.run_id)
        final, outcome = await second.manager.wait(run)
    finally:
        await second.manager.stop()
        await second.storage.close()
    assert final is not None and outcome is not None
    assert final["status"] == "error"
    assert final["attempt"] == 4
    assert final["error"] == (
        "RunAttemptsExhausted: The run did not finish in 3 attempts; "
        "the server stopped during each of them"
    )
    assert outcome.thread_status == "error"


async def test_a_run_within_max_attempts_is_resumed_at_start(database: Path) -> None:
    first = await build_harness(database)
    try:
        tid = await first.thread()
        new = first.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
        await first.manager.stop()
        await first.storage.create_run(new)
        assert await first.storage.claim_next_run(tid) is not None
    finally:
        await first.storage.close()

    second = await build_harness(database)
    try:
        run = await second.storage.get_run(tid, new.run_id)
        final, _ = await second.manager.wait(run)
        events = await second.published(new.run_id)
    finally:
        await second.manager.stop()
        await second.storage.close()
    assert final is not None
    assert (final["status"], final["attempt"]) == ("success", 2)
    assert events[0] == ("metadata", {"run_id": new.run_id, "attempt": 2})


async def test_a_stateless_run_deletes_its_thread_when_it_ends(harness: Harness) -> None:
    tid = "5d6f0c1e-0000-4000-8000-000000000001"
    run = await harness.manager.create(
        harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0}, stateless=True)
    )
    final, outcome = await harness.manager.wait(run)
    assert final is not None and outcome is not None
    assert final["status"] == "success"
    assert outcome.decoded_values() == {"steps": THREE}
    # `wait` is answered when the stream ends, just before the thread is deleted.
    await until(lambda: _thread_gone(harness, tid), within=1)
    with pytest.raises(NotFoundError):
        await harness.storage.get_run(tid, run["run_id"])
    assert await harness.storage.list_checkpoint_summaries(tid) == []


async def test_a_stateless_run_kept_on_completion_leaves_a_hidden_thread(
    harness: Harness,
) -> None:
    tid = "5d6f0c1e-0000-4000-8000-000000000002"
    run = await harness.manager.create(
        harness.new_run(
            tid, "slow", input=EMPTY, context={"delay": 0}, stateless=True, on_completion="keep"
        )
    )
    await harness.manager.wait(run)
    thread = await harness.storage.get_thread(tid)
    assert thread["values"] == {"steps": THREE}
    assert thread["status"] == "idle"
    assert (await harness.storage.get_run(tid, run["run_id"]))["status"] == "success"
    hidden = await harness.storage.search_threads(ThreadQuery(visible=False))
    assert [t["thread_id"] for t in hidden] == [tid]


# Helpers


async def _is(value: Awaitable[str], wanted: str) -> bool:
    return await value == wanted


async def _steps_are(harness: Harness, thread_id: str, steps: list[str]) -> bool:
    return (await harness.values(thread_id)).get("steps") == steps


async def _thread_gone(harness: Harness, thread_id: str) -> bool:
    try:
        await harness.storage.get_thread(thread_id, values=False)
    except NotFoundError:
        return True
    return False
