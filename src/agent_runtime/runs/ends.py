"""Seeing a run end wherever it ran: a waiter in one process learns that another process ended
a run from the run's row, read again whenever an `ended` signal names the run and at least
every `poll_seconds` (signals may be lost; the database is the truth). Runs this process
executes end through futures the run manager resolves (`expect`, `resolve`), without reads."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable

from agent_runtime.background import stop_tasks
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
        self._finished: dict[str, asyncio.Future[Ended]] = {}

    def expect(self, run_id: str) -> None:
        """This process is about to end the run: its waiters wait for `resolve`."""
        if run_id not in self._finished:
            self._finished[run_id] = asyncio.get_running_loop().create_future()

    def resolve(self, run_id: str, final: Run | None, outcome: RunOutcome | None) -> None:
        """This process ended the run: its final row (None when gone) and outcome."""
        finished = self._finished.pop(run_id, None)
        if finished is not None and not finished.done():
            finished.set_result((final, outcome))

    def notify(self, run_id: str) -> None:
        """The run ended somewhere (a signal): its waiters read its row now."""
        for event in self._waiters.get(run_id, ()):
            event.set()

    async def wait(self, run: Run, *, running_here: Callable[[str], bool]) -> Ended:
        """Wait until the run has ended; return its final row (None when it is gone) and, when
        this process ended it, its outcome. Whichever comes first: `resolve` (this process
        ended the run) or the run's row turning final or disappearing (another process ended
        it; the outcome is then None). While `running_here` says this process executes the
        run, only `resolve` counts, so its outcome is never lost to a read."""
        run_id = run["run_id"]
        if run["status"] in FINAL_STATUSES:
            return run, None
        finished = self._finished.get(run_id)
        stale = finished is None
        if finished is None:
            # The row may be stale: the watch re-reads it now that a later end will resolve
            # the future (one read, where a read here and the watch's first would be two).
            finished = asyncio.get_running_loop().create_future()
            self._finished[run_id] = finished
        ended = await self._until_ended(run, finished, running_here, stale=stale)
        if self._finished.get(run_id) is finished:
            del self._finished[run_id]  # ended by another process
        return ended

    async def _until_ended(
        self,
        run: Run,
        finished: asyncio.Future[Ended],
        running_here: Callable[[str], bool],
        *,
        stale: bool,
    ) -> Ended:
        if finished.done():
            return finished.result()
        watcher = asyncio.ensure_future(self._watch(run, running_here, stale=stale))
        try:
            await asyncio.wait({finished, watcher}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            await stop_tasks(watcher)
        if finished.done():
            return finished.result()
        ended = watcher.result()
        # Other waiters on the same future stop too.
        finished.set_result(ended)
        return ended

    async def _watch(self, run: Run, running_here: Callable[[str], bool], *, stale: bool) -> Ended:
        # `stale`: the waiter's future is new, so an end here before it was made resolved no
        # one; the first read then believes a final row even while the run is still held here.
        run_id = run["run_id"]
        wakeup = asyncio.Event()
        self._waiters.setdefault(run_id, set()).add(wakeup)
        try:
            while True:
                wakeup.clear()
                if stale or not running_here(run_id):
                    # Shielded: the waiter cancels this watch the moment the run ends here, and
                    # a Postgres query cancelled mid-flight costs psycopg's cancel round trip
                    # (up to 5 s) before the waiter can answer. The read finishes on its own.
                    read = asyncio.ensure_future(self._storage.get_run(run["thread_id"], run_id))
                    read.add_done_callback(_retrieve)
                    try:
                        current = await asyncio.shield(read)
                    except NotFoundError:
                        return None, None  # rolled back, or its thread deleted
                    if current["status"] in FINAL_STATUSES and (stale or not running_here(run_id)):
                        return current, None
                    stale = False
                # Not `wait_for`: on Python 3.11 it swallows a cancel that lands as the event
                # is set, and this watch then outlives its waiter by a whole poll.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await wakeup.wait()
        finally:
            waiters = self._waiters.get(run_id)
            if waiters is not None:
                waiters.discard(wakeup)
                if not waiters:
                    del self._waiters[run_id]


def _retrieve(read: asyncio.Future[Run]) -> None:
    # A read left to finish after its watch was cancelled: its error has no one to go to.
    if not read.cancelled():
        read.exception()
