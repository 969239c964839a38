"""The dispatcher of an executing process: finds the threads whose due pending runs nobody is
running (queued by an API-only process, by another process, or left by a dead one) and hands
them to the run manager's workers, never more than this process has free slots for. It reads
the database; the workers claim."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

from agent_runtime.runs.slots import RunSlots
from agent_runtime.storage.base import Storage

logger = logging.getLogger("agent_runtime.runs")

DISPATCH_SECONDS = 0.5
"""How long queued work may wait for a process that was not told about it."""
MIN_GAP_SECONDS = 0.05
"""Between two looks at the database: slots freeing in a burst are served by one look."""


class Dispatcher:
    """Looks every `interval` seconds, and at once when a process that had no free slot
    frees one (`RunSlots.wait_freed`)."""

    def __init__(
        self,
        storage: Storage,
        slots: RunSlots,
        wake: Callable[[str], None],
        *,
        interval: float = DISPATCH_SECONDS,
    ) -> None:
        """`wake(thread_id)` starts (or nudges) the worker of a thread; the worker takes a
        slot and claims, so a thread another process claims first costs one failed claim."""
        self._storage = storage
        self._slots = slots
        self._wake = wake
        self._interval = interval

    async def run(self) -> None:
        """Dispatch until cancelled."""
        while True:
            await self._slots.wait_freed(self._interval)
            await self.dispatch()
            await asyncio.sleep(MIN_GAP_SECONDS)

    async def dispatch(self) -> list[str]:
        """One look: wake the workers of up to as many ready threads as there are free slots,
        oldest work first; return their ids."""
        free = self._slots.free
        if free <= 0:
            return []
        try:
            threads = await self._storage.ready_threads(free)
        except Exception:
            # A database hiccup must not end dispatching; the next look tries again.
            logger.exception("Looking for queued runs failed")
            return []
        for thread_id in threads:
            self._wake(thread_id)
        return threads
