"""How many runs one process executes at once (`--n-jobs-per-worker`): a count of slots that a
worker takes before it claims a run and gives back once the run has ended. It knows nothing of
storage or runs; the dispatcher waits on it for a slot to free."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

DEFAULT_JOBS = 10
"""LangGraph's default for `N_JOBS_PER_WORKER`: a graph mostly awaits its model, so ten runs
share one event loop well, and a bound keeps a burst of runs from starving the API."""


class RunSlots:
    """At most `limit` runs at once; `try_take` never waits, so work that finds no slot stays
    queued in the database, where any process with a free slot may claim it."""

    def __init__(
        self, limit: int = DEFAULT_JOBS, *, on_change: Callable[[int, int], None] | None = None
    ) -> None:
        """Raises ValueError when `limit` is below 1: a process that executes nothing has the
        `api` role instead.

        Args:
            on_change: told `(busy, limit)` whenever a slot is taken or given back (metrics).
        """
        if limit < 1:
            raise ValueError(f"a process needs at least one job slot, got {limit}")
        self.limit = limit
        self._on_change = on_change
        self._busy = 0
        self._freed = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()

    @property
    def free(self) -> int:
        """Slots nobody holds."""
        return self.limit - self._busy

    @property
    def busy(self) -> int:
        """Slots held: runs being claimed, executed or finished."""
        return self._busy

    def try_take(self) -> bool:
        """Take a slot if one is free; say whether it was."""
        if self._busy >= self.limit:
            return False
        self._busy += 1
        self._idle.clear()
        if self._on_change is not None:
            self._on_change(self._busy, self.limit)
        return True

    def give_back(self) -> None:
        """Free a slot taken by `try_take`; the first free slot of a full process wakes
        `wait_freed`."""
        if self._busy >= self.limit:
            # Only then can work be waiting for this process's slots: with one free, the
            # dispatcher's look on its interval has seen the queue already, and a look after
            # every run cost a query per run at low concurrency.
            self._freed.set()
        self._busy -= 1
        if self._on_change is not None:
            self._on_change(self._busy, self.limit)
        if self._busy == 0:
            self._idle.set()

    async def wait_freed(self, seconds: float) -> None:
        """Return when a full process has given a slot back since the last call, or after
        `seconds` (real time: a slot frees when a run ends, not when a clock moves)."""
        # Not `wait_for`: on Python 3.11 it swallows a cancel that comes as the event is set
        # (as when the process stops and its workers give their slots back).
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(seconds):
                await self._freed.wait()
        self._freed.clear()

    async def wait_idle(self) -> None:
        """Return once no slot is held."""
        await self._idle.wait()
