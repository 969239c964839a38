"""The per-thread workers of an executing process: one asyncio task per thread with queued
work, which takes a slot, claims the thread's next run and runs it, then sleeps until the next
delayed run falls due or it is woken. It knows nothing of how a run executes: the run manager
hands it `claim_and_run`."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from agent_runtime.clock import Clock, sleep_or_wake
from agent_runtime.runs.slots import RunSlots


class NextDue(Protocol):
    def __call__(self, thread_id: str, *, after_run: bool) -> Awaitable[datetime | None]: ...


@dataclass(slots=True)
class _Worker:
    task: asyncio.Task[None]
    wake: asyncio.Event = field(default_factory=asyncio.Event)


class ThreadWorkers:
    """At most one worker per thread, so a thread's runs execute one at a time, in order."""

    def __init__(
        self,
        slots: RunSlots,
        clock: Clock,
        *,
        claim_and_run: Callable[[str], Awaitable[bool]],
        next_due: NextDue,
        accepting: Callable[[], bool],
    ) -> None:
        """Args:
        claim_and_run: claims the thread's next due run and runs it; False when none was
            claimed (nothing due, or another process holds the thread).
        next_due: when the thread's earliest queued run falls due (None: nothing queued);
            `after_run` when the worker has just run one.
        accepting: False once the process drains: a worker then claims nothing more.
        """
        self._next_due = next_due
        self._slots = slots
        self._clock = clock
        self._claim_and_run = claim_and_run
        self._accepting = accepting
        self._workers: dict[str, _Worker] = {}

    def wake(self, thread_id: str) -> None:
        """Start the thread's worker, or nudge the one already running."""
        worker = self._workers.get(thread_id)
        if worker is not None and not worker.task.done():
            worker.wake.set()
            return
        task = asyncio.create_task(self._work(thread_id), name=f"runs:{thread_id}")
        self._workers[thread_id] = _Worker(task=task)

    def active(self, thread_id: str) -> bool:
        """Whether the thread has a worker now."""
        worker = self._workers.get(thread_id)
        return worker is not None and not worker.task.done()

    def start_claimed(self, thread_id: str, run_first: Callable[[], Awaitable[None]]) -> None:
        """Start the thread's worker on a run claimed at its creation: the caller took a slot
        for it, which the worker gives back once `run_first` (which runs it) returns; then it
        goes on as any worker. A worker already there (started meanwhile by a wake) finds the
        thread held and ends on its own; wakes go to this one."""
        task = asyncio.create_task(self._work(thread_id, run_first), name=f"runs:{thread_id}")
        self._workers[thread_id] = _Worker(task=task)

    def tasks(self) -> list[asyncio.Task[None]]:
        """The workers' tasks now, for a stop that cancels them."""
        return [worker.task for worker in self._workers.values()]

    async def _work(
        self, thread_id: str, run_first: Callable[[], Awaitable[None]] | None = None
    ) -> None:
        worker = self._workers[thread_id]
        try:
            claim = True
            if run_first is not None:
                try:
                    await run_first()
                finally:
                    self._slots.give_back()
                claim = False
            while True:
                worker.wake.clear()
                if claim:
                    if not self._accepting() or not self._slots.try_take():
                        # The run stays `pending` for a slot here (the dispatcher looks again
                        # when one frees) or in another process.
                        return
                    try:
                        ran = await self._claim_and_run(thread_id)
                    finally:
                        self._slots.give_back()
                    if ran:
                        # Usually nothing is queued behind a run: one read tells, where a
                        # claim would take the write lock to find nothing.
                        claim = False
                        continue
                claimed_nothing = claim
                due = await self._next_due(thread_id, after_run=not claimed_nothing)
                if due is None and not worker.wake.is_set():
                    return
                claim = True
                if due is None or worker.wake.is_set():
                    continue
                seconds = max(0.0, (due - self._clock.now()).total_seconds())
                if seconds > 0.0:
                    # On the clock the due time was set by, so a fake clock's advance ends it.
                    await sleep_or_wake(self._clock, worker.wake, seconds)
                elif claimed_nothing:
                    # Due, yet the claim found the thread busy: another process runs it, and
                    # takes what is queued behind when its run ends (else the dispatcher of
                    # some process finds it).
                    return
        finally:
            if self._workers.get(thread_id) is worker:
                del self._workers[thread_id]
