"""Seeing a run end wherever it ran. Runs this process executes end through futures the run
manager resolves (`expect`, `resolve`), without reads. A waiter on a run this process does not
hold learns of its end from the database: one poller reads the rows of every such run at once,
at least every `poll_seconds` and at once when an `ended` signal names one (signals may be lost;
the database is the truth)."""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

from agent_runtime.background import stop_tasks
from agent_runtime.schema import Run
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import RunOutcome

FINAL_STATUSES = frozenset({"success", "error", "timeout", "interrupted"})
POLL_SECONDS = 0.5
"""Without signals between processes: how stale a waiter's view of another process's run gets."""
SIGNALLED_POLL_SECONDS = 5.0
"""With them: only a lost signal costs this long."""
RECENT_ENDS = 4096
"""How many ends seen without a waiter are remembered, so a waiter that comes just after reads
the row at once rather than at the next poll."""

Ended = tuple[Run | None, RunOutcome | None]


@dataclass(slots=True, kw_only=True)
class _Watch:
    finished: asyncio.Future[Ended]
    waiters: int = 0
    believe_final: bool = False
    """The run may have ended here before its future was made (no one was resolved), so its
    row is believed final even while the run is still held here."""


class RunEnds:
    """Waiters on runs ended by any process; one per run manager."""

    def __init__(
        self,
        storage: Storage,
        *,
        running_here: Callable[[str], bool],
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        """`running_here(run_id)`: whether this process executes the run (and so resolves
        its end itself; its row is then not read)."""
        self._storage = storage
        self._running_here = running_here
        self._poll = poll_seconds
        self._finished: dict[str, asyncio.Future[Ended]] = {}
        self._watched: dict[str, _Watch] = {}
        self._recent: OrderedDict[str, None] = OrderedDict()
        self._due = asyncio.Event()
        self._poller: asyncio.Task[None] | None = None

    def expect(self, run_id: str) -> None:
        """This process is about to end the run: its waiters wait for `resolve`."""
        if run_id not in self._finished:
            self._finished[run_id] = asyncio.get_running_loop().create_future()

    def resolve(self, run_id: str, final: Run | None, outcome: RunOutcome | None) -> None:
        """This process ended the run: its final row (None when gone) and outcome."""
        finished = self._finished.pop(run_id, None)
        if run_id not in self._watched:
            # Nobody waits yet: one who comes with the run's row from before its end (a
            # `runs.wait` right after its create) reads the row at once, not at the next poll.
            self._remember(run_id)
        if finished is not None and not finished.done():
            finished.set_result((final, outcome))

    def forget(self, run_id: str) -> None:
        """This process will not end the run after all (another process took it over): its
        waiters here read its end from the database once it is no longer held here, as for
        any run another process executes."""
        if run_id not in self._watched:
            self._finished.pop(run_id, None)

    def notify(self, run_id: str) -> None:
        """The run ended somewhere (a signal): its waiters' poll reads its row now."""
        watch = self._watched.get(run_id)
        if watch is None:
            self._remember(run_id)
        elif not watch.finished.done():
            self._due.set()

    async def wait(self, run: Run) -> Ended:
        """Wait until the run has ended; return its final row (None when it is gone) and, when
        this process ended it, its outcome. Whichever comes first: `resolve` (this process
        ended the run) or the poll finding its row final or gone while this process does not
        hold it (another process ended it; the outcome is then None)."""
        run_id = run["run_id"]
        if run["status"] in FINAL_STATUSES:
            return run, None
        watch = self._watched.get(run_id)
        if watch is None:
            finished = self._finished.get(run_id)
            if finished is None:
                finished = asyncio.get_running_loop().create_future()
                self._finished[run_id] = finished
            watch = self._watched[run_id] = _Watch(finished=finished)
        watch.waiters += 1
        if run_id in self._recent:
            # It ended just before (here, or a signal said so elsewhere): read it now.
            del self._recent[run_id]
            watch.believe_final = True
            self._due.set()
        if self._poller is None:
            self._poller = asyncio.create_task(self._poll_watched(), name="runs:ends")
        try:
            # Shielded: a waiter that goes away leaves the future to the others.
            return await asyncio.shield(watch.finished)
        finally:
            self._leave(run_id, watch)

    async def stop(self) -> None:
        """Stop polling (the process stops); waiters still waiting keep waiting."""
        if self._poller is not None:
            await stop_tasks(self._poller)
            self._poller = None

    def _leave(self, run_id: str, watch: _Watch) -> None:
        watch.waiters -= 1
        if watch.waiters > 0:
            return
        del self._watched[run_id]
        if not self._watched:
            self._due.set()  # the poller ends now, not at its next poll
        held = self._running_here(run_id)
        if self._finished.get(run_id) is watch.finished and (watch.finished.done() or not held):
            # Ended by another process, or nobody waits any more: a run claimed here later
            # gets a new future from `expect`.
            del self._finished[run_id]

    def _remember(self, run_id: str) -> None:
        self._recent[run_id] = None
        if len(self._recent) > RECENT_ENDS:
            self._recent.popitem(last=False)

    async def _poll_watched(self) -> None:
        while self._watched:
            if not self._due.is_set():
                # Not `wait_for`: on Python 3.11 it swallows a cancel that lands as the event
                # is set, and a stop would then wait out a whole poll.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self._poll):
                        await self._due.wait()
            self._due.clear()
            reads: dict[str, bool] = {}
            for run_id, watch in self._watched.items():
                if watch.believe_final or not self._running_here(run_id):
                    reads[run_id] = watch.believe_final
                    watch.believe_final = False
            if reads:
                await self._read(reads)
        self._poller = None

    async def _read(self, reads: dict[str, bool]) -> None:
        # One read for every watched run, however many wait.
        try:
            found = await self._storage.find_runs(list(reads))
        except Exception as exc:
            # The waiters of these runs learn it, as they would from a read of their own.
            for run_id in reads:
                watch = self._watched.get(run_id)
                if watch is not None and not watch.finished.done():
                    watch.finished.set_exception(exc)
            return
        for run_id, believe_final in reads.items():
            watch = self._watched.get(run_id)
            if watch is None or watch.finished.done():
                continue
            current = found.get(run_id)
            if current is None:
                watch.finished.set_result((None, None))  # rolled back, or its thread deleted
            elif current["status"] in FINAL_STATUSES and (
                believe_final or not self._running_here(run_id)
            ):
                watch.finished.set_result((current, None))
