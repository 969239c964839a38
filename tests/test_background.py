"""stop_tasks ends tasks that lose a cancel, and reports what they failed with."""

from __future__ import annotations

import asyncio

import pytest

from agent_runtime.background import stop_tasks


async def test_stop_tasks_cancels_again_a_loop_that_swallowed_the_cancel() -> None:
    cancels = 0

    async def stubborn() -> None:
        # What a loop does when a cancel is lost inside a call it awaited (asyncio.wait_for on
        # Python 3.11, when the cancel lands as its inner result arrives): it goes on looping.
        nonlocal cancels
        while True:
            try:
                await asyncio.sleep(3600)
            except asyncio.CancelledError:
                cancels += 1
                if cancels >= 3:
                    raise

    task = asyncio.create_task(stubborn())
    await asyncio.sleep(0)
    async with asyncio.timeout(5):
        await stop_tasks(task)
    assert task.cancelled()
    assert cancels == 3


async def test_stop_tasks_reraises_the_first_failure_after_stopping_every_task() -> None:
    async def fails() -> None:
        raise ValueError("broken")

    failed = asyncio.create_task(fails())
    sleeping = asyncio.create_task(asyncio.sleep(3600))
    await asyncio.sleep(0)
    with pytest.raises(ValueError, match="broken"):
        await stop_tasks(failed, None, sleeping)
    assert sleeping.cancelled()


async def test_stop_tasks_returns_for_tasks_already_done_or_none() -> None:
    done = asyncio.create_task(asyncio.sleep(0))
    await done
    await stop_tasks(done, None)
    await stop_tasks()
