"""Stopping the runtime's background tasks (loops that poll, sweep, heartbeat or fire) so that
a stop always ends, even when a task lost the cancel meant for it."""

from __future__ import annotations

import asyncio
from typing import Any

RECANCEL_SECONDS = 0.05
"""How long a cancelled task has to end before it is cancelled again."""


async def stop_tasks(*tasks: asyncio.Future[Any] | None) -> None:
    """Cancel `tasks` and return once each has ended; re-raise the first failure other than
    the cancel.

    One cancel is not always enough: on Python 3.11 `asyncio.wait_for`, which psycopg_pool
    uses while it waits for a connection, returns its inner result instead of raising when the
    cancel lands just as that result arrives. A loop that lost its cancel that way goes on
    looping, and a plain `await task` after it waits forever; so a task still running after
    `RECANCEL_SECONDS` is cancelled again.
    """
    given = [task for task in tasks if task is not None]
    running = {task for task in given if not task.done()}
    while running:
        for task in running:
            task.cancel()
        _, running = await asyncio.wait(running, timeout=RECANCEL_SECONDS)
    failure: BaseException | None = None
    for task in given:
        if task.cancelled():
            continue
        error = task.exception()
        if error is not None and failure is None:
            failure = error
    if failure is not None:
        raise failure
