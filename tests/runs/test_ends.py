"""RunEnds: a waiter answers as soon as its run ends here, whatever its watch is doing then."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest

from agent_runtime.runs.ends import RunEnds
from agent_runtime.storage.records import RunOutcome
from tests.conftest import Database
from tests.runs.harness import Harness, build_harness

EMPTY: dict[str, list[str]] = {"steps": []}
POLL_SECONDS = 5.0
"""As with Redis signals: a waiter that missed the end would sit out this whole poll."""


@pytest.fixture
async def queued(database: Database) -> AsyncIterator[Harness]:
    """A manager that queues runs and never executes them: these tests end them by hand."""
    built = await build_harness(database, execute=False)
    try:
        yield built
    finally:
        await built.manager.stop()
        await built.storage.close()


async def test_an_end_and_its_signal_together_answer_the_waiter_at_once(
    queued: Harness,
) -> None:
    # The run's process ends it (`resolve`) and, in the same turn of the loop, its own `ended`
    # signal wakes the waiter's watch (`notify`). On Python 3.11 a watch sleeping in
    # `asyncio.wait_for` swallowed the cancel that came with its wake-up, and the waiter sat
    # out a whole poll: 5 s per `runs.wait` on one process with Redis.
    tid = await queued.thread()
    run = await queued.manager.create(
        queued.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    held = {run["run_id"]}
    ends = RunEnds(queued.storage, running_here=held.__contains__, poll_seconds=POLL_SECONDS)
    ends.expect(run["run_id"])
    waiter = asyncio.ensure_future(ends.wait(run))
    await asyncio.sleep(0.05)  # the watch is asleep on its wake-up event
    started = time.monotonic()
    ends.resolve(run["run_id"], None, RunOutcome(status="success"))
    ends.notify(run["run_id"])
    final, outcome = await asyncio.wait_for(waiter, POLL_SECONDS * 2)
    assert time.monotonic() - started < 1.0
    assert final is None and outcome is not None and outcome.status == "success"


async def test_a_watch_cancelled_mid_read_does_not_hold_up_the_waiter(queued: Harness) -> None:
    # The watch reads the row when the run is not held here; the waiter cancels it the moment
    # the run ends. A Postgres read cancelled mid-flight costs psycopg's cancel round trip (up
    # to 5 s), so the read is left to finish on its own.
    tid = await queued.thread()
    run = await queued.manager.create(
        queued.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    ends = RunEnds(
        queued.storage, running_here=lambda run_id: False, poll_seconds=0.001
    )  # reads back to back
    waiter = asyncio.ensure_future(ends.wait(run))
    await asyncio.sleep(0.2)  # some reads have come and gone
    started = time.monotonic()
    ends.resolve(run["run_id"], None, RunOutcome(status="success"))
    _, outcome = await asyncio.wait_for(waiter, POLL_SECONDS)
    assert time.monotonic() - started < 1.0
    assert outcome is not None and outcome.status == "success"


async def test_runs_ended_by_another_process_answer_their_waiters_at_the_next_poll(
    queued: Harness,
) -> None:
    # Nothing resolves these runs here: each ends in the database alone, as when another
    # process executed it, and one poll reads every watched run.
    runs = []
    for _ in range(2):
        tid = await queued.thread()
        runs.append(
            await queued.manager.create(
                queued.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
            )
        )
    ends = RunEnds(queued.storage, running_here=lambda run_id: False, poll_seconds=0.2)
    waiters = [asyncio.ensure_future(ends.wait(run)) for run in runs for _ in range(2)]
    await asyncio.sleep(0.05)
    for run in runs:
        await queued.storage.finish_run(run["run_id"], RunOutcome(status="success"))
    answers = await asyncio.wait_for(asyncio.gather(*waiters), POLL_SECONDS)
    assert [(final["run_id"], final["status"]) for final, _ in answers if final] == [
        (run["run_id"], "success") for run in runs for _ in range(2)
    ]
    assert all(outcome is None for _, outcome in answers)
    await ends.stop()


async def test_a_waiter_after_the_end_signal_reads_the_row_at_once(queued: Harness) -> None:
    # The `ended` signal came before anyone waited (another process ended the run just
    # after this one created it): the waiter reads the row now, not at the next poll.
    tid = await queued.thread()
    run = await queued.manager.create(
        queued.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    ends = RunEnds(queued.storage, running_here=lambda run_id: False, poll_seconds=POLL_SECONDS)
    await queued.storage.finish_run(run["run_id"], RunOutcome(status="success"))
    ends.notify(run["run_id"])
    started = time.monotonic()
    final, outcome = await asyncio.wait_for(ends.wait(run), POLL_SECONDS * 2)
    assert time.monotonic() - started < 1.0
    assert final is not None and final["status"] == "success" and outcome is None
    await ends.stop()


async def test_a_waiter_after_a_run_ended_here_reads_the_row_at_once(queued: Harness) -> None:
    # The run was executed and ended here before anyone waited, and the waiter holds the row
    # from before (a `runs.wait` whose run ended between its create and its wait).
    tid = await queued.thread()
    run = await queued.manager.create(
        queued.new_run(tid, "slow", input=EMPTY, context={"delay": 0})
    )
    held = {run["run_id"]}
    ends = RunEnds(queued.storage, running_here=held.__contains__, poll_seconds=POLL_SECONDS)
    ends.expect(run["run_id"])
    ended = await queued.storage.finish_run(run["run_id"], RunOutcome(status="success"))
    assert ended is not None
    ends.resolve(run["run_id"], ended.run, RunOutcome(status="success"))
    held.clear()
    started = time.monotonic()
    final, outcome = await asyncio.wait_for(ends.wait(run), POLL_SECONDS * 2)
    assert time.monotonic() - started < 1.0
    assert final is not None and final["status"] == "success" and outcome is None
    await ends.stop()
