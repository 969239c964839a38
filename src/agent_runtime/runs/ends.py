"""Seeing a run end wherever it ran: a waiter in one process learns that another process ended
a run from the run's row, read again whenever an `ended` signal names the run and at least
every `poll_seconds` (signals may be lost; the database is the truth). Runs this process
executes end through the run manager's own futures, without reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from agent_runtime.errors import NotFoundError
from agent_runtime.schema import Run
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import RunOutcome

FINAL_STATUSES = frozenset({"success", "error", "timeout", "interrupted"})
POLL_SECONDS = 0.5
"""Without signals between processes: how stale a waiter's view of another process's run gets."""
SIGNALLED_POLL_SECONDS = 5.0
"""With them: only a lost signal costs this long."""

Ended = tuple[Run | None, RunOutcome | None]


class RunEnds:
    """Waiters on runs ended by any process; one per run manager."""

    def __init__(self, storage: Storage, *, poll_seconds: float = POLL_SECONDS) -> None:
        self._storage = storage
        self._poll = poll_seconds
        self._waiters: dict[str, set[asyncio.Event]] = {}

    def notify(self, run_id: str) -> None:
        """The run ended somewhere (a signal): its waiters read its row now."""
        for event in self._waiters.get(run_id, ()):
            event.set()

    async def wait(
        self, run: Run, finished: asyncio.Future[Ended], *, running_here: Callable[[str], bool]
    ) -> Ended:
        """Whichever comes first: `finished` (this process ended the run, with its outcome)
        or the run's row turning final or disappearing (another process ended it; the
        outcome is then None). While `running_here` says this process executes the run,
        only `finished` counts, so its outcome is never lost to a read."""
        if finished.done():
            return finished.result()
        watcher = asyncio.ensure_future(self._watch(run, running_here))
        try:
            await asyncio.wait({finished, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await watcher
        if finished.done():
            return finished.result()
        ended = watcher.result()
        # Other waiters on the same future stop too.
        finished.set_result(ended)
        return ended

    async def _watch(self, run: Run, running_here: Callable[[str], bool]) -> Ended:
        run_id = run["run_id"]
        wakeup = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(wakeup)
        try:
            while True:
                wakeup.clear()
                if not running_here(run_id):
                    try:
                        current = await self._storage.get_run(run["thread_id"], run_id)
                    except NotFoundError:
                        return None, None  # rolled back, or its thread deleted
                    if current["status"] in FINAL_STATUSES and not running_here(run_id):
                        return current, None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(wakeup.wait(), self._poll)
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(wakeup)
                if not waiters:
                    del self._waiters[run_id]
