"""The dispatcher and the job slots below HTTP: a run queued by another process (straight into
storage) is found and executed, never more runs at once than the slots allow, an API-only
manager never claims, and draining stops claims while letting running runs end."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from agent_runtime.runs.slots import RunSlots
from tests.conftest import until
from tests.runs.harness import build_harness

EMPTY: dict[str, Any] = {"steps": []}
THREE = ["one", "two", "three"]


async def test_a_run_queued_elsewhere_is_found_and_executed(database: Path) -> None:
    harness = await build_harness(database, dispatch_seconds=0.05)
    try:
        tid = await harness.thread()
        new = harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
        # As an API-only process queues it: nothing here is told.
        await harness.storage.create_run(new)

        async def ended() -> bool:
            return await harness.run_status(tid, new.run_id) == "success"

        await until(ended)
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_runs_past_the_job_slots_wait_pending_unclaimed(database: Path) -> None:
    harness = await build_harness(database, jobs=2, dispatch_seconds=0.05)
    try:
        runs = []
        for _ in range(4):
            tid = await harness.thread()
            new = harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5})
            runs.append(await harness.manager.create(new))
        await asyncio.sleep(0.2)
        statuses = [await harness.run_status(r["thread_id"], r["run_id"]) for r in runs]
        assert sorted(statuses) == ["pending", "pending", "running", "running"]
        assert harness.manager.executing == 2
        finals = [await harness.manager.wait(run) for run in runs]
        assert [final["status"] for final, _ in finals if final] == ["success"] * 4
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_an_api_only_manager_queues_and_never_claims(database: Path) -> None:
    harness = await build_harness(database, execute=False, dispatch_seconds=0.05)
    try:
        tid = await harness.thread()
        run = await harness.manager.create(
            harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
        )
        await asyncio.sleep(0.3)
        assert await harness.run_status(tid, run["run_id"]) == "pending"
        assert harness.manager.executing == 0
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_drain_takes_no_new_runs_and_waits_for_the_running_ones(database: Path) -> None:
    harness = await build_harness(database, jobs=1, dispatch_seconds=0.05)
    try:
        first, second = await harness.thread(), await harness.thread()
        running = await harness.manager.create(
            harness.new_run(first, "slow", input=EMPTY, context={"delay": 0.3})
        )

        async def started() -> bool:
            return await harness.run_status(first, running["run_id"]) == "running"

        await until(started)
        queued = await harness.manager.create(
            harness.new_run(second, "slow", input=EMPTY, context={"delay": 0})
        )
        assert await harness.manager.drain(5.0) is True
        assert await harness.run_status(first, running["run_id"]) == "success"
        await asyncio.sleep(0.2)
        assert await harness.run_status(second, queued["run_id"]) == "pending"
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_a_run_longer_than_the_grace_is_handed_back_uncharged(database: Path) -> None:
    harness = await build_harness(database)
    try:
        tid = await harness.thread()
        run = await harness.manager.create(
            harness.new_run(tid, "slow", input=EMPTY, context={"delay": 5})
        )

        async def started() -> bool:
            return await harness.run_status(tid, run["run_id"]) == "running"

        await until(started)
        assert await harness.manager.drain(0.1) is False
        await harness.manager.stop()
        assert await harness.run_status(tid, run["run_id"]) == "pending"
        assert await harness.storage.charged_attempts(run["run_id"]) == 0
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_a_run_on_a_free_thread_is_claimed_with_its_creation(database: Path) -> None:
    harness = await build_harness(database, jobs=1, dispatch_seconds=0.05)
    try:
        tid, other = await harness.thread(), await harness.thread()
        first = await harness.manager.create(
            harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.3})
        )
        # Callers see it queued, as without the claim; it was committed claimed, and held here.
        assert (first["status"], first["attempt"]) == ("pending", 0)
        stored = await harness.storage.get_run(tid, first["run_id"])
        assert (stored["status"], stored["attempt"]) == ("running", 1)
        assert harness.manager.may_execute(first)
        assert harness.manager.executing == 1
        # Behind it on its thread, and on another thread while the one slot is taken: queued.
        behind = await harness.manager.create(
            harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
        )
        elsewhere = await harness.manager.create(
            harness.new_run(other, "slow", input=EMPTY, context={"delay": 0})
        )
        for run in (behind, elsewhere):
            assert await harness.run_status(run["thread_id"], run["run_id"]) == "pending"
        assert harness.manager.executing == 1
        finals = [await harness.manager.wait(run) for run in (first, behind, elsewhere)]
        assert [(final["status"], final["attempt"]) for final, _ in finals if final] == [
            ("success", 1)
        ] * 3
        assert finals[0][1] is not None and finals[0][1].decoded_values() == {"steps": THREE}
    finally:
        await harness.manager.stop()
        await harness.storage.close()


async def test_only_a_full_process_freeing_a_slot_looks_for_work_at_once() -> None:
    # With a slot free, the dispatcher's look on its interval finds queued work; a look after
    # every run (a query each) is kept for the slot that ends a full process's wait.
    slots = RunSlots(2)
    assert slots.try_take() and slots.try_take() and not slots.try_take()
    slots.give_back()  # the process was full: look now
    started = time.monotonic()
    await slots.wait_freed(5.0)
    assert time.monotonic() - started < 1.0
    slots.give_back()  # one was free already: wait for the interval
    started = time.monotonic()
    await slots.wait_freed(0.2)
    assert time.monotonic() - started >= 0.19
    assert slots.free == 2
