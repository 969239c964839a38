"""The leases of one process's runs: the heartbeat that renews the leases of the runs it holds,
and the reaper that re-queues the runs of processes whose leases lapsed. It never claims or
executes a run; the run manager does, and is told which threads to resume."""

from __future__ import annotations

import logging
from collections.abc import Callable, Set
from datetime import timedelta

from agent_runtime.clock import Clock
from agent_runtime.storage.base import Storage

logger = logging.getLogger("agent_runtime.runs")

LEASE_SECONDS = 30.0


class Leases:
    """Renews and reaps every third of the lease, so a claim survives two missed renewals."""

    def __init__(
        self,
        storage: Storage,
        *,
        owner: str,
        held: Set[str],
        seconds: float,
        clock: Clock,
        resume: Callable[[str], None],
        lost: Callable[[list[str]], None] = lambda run_ids: None,
        reaped: Callable[[int], None] = lambda count: None,
    ) -> None:
        """Args:
        held: the ids of the runs this process holds now (the manager's live set).
        resume: wakes the worker of a thread whose run the reaper re-queued.
        lost: told which runs, still held here, the heartbeat found no longer this process's:
            it went silent past their lease, and a reaper re-queued them.
        reaped: told how many threads each reap re-queued, when it re-queued any (metrics).
        """
        self._storage = storage
        self._owner = owner
        self._held = held
        self.lease = timedelta(seconds=seconds)
        """How long a claim holds without renewal."""
        self._clock = clock
        self._resume = resume
        self._lost = lost
        self._reaped = reaped

    @property
    def interval(self) -> float:
        """Seconds between two renewals (and two looks of the reaper)."""
        return self.lease.total_seconds() / 3

    async def heartbeat(self) -> None:
        """Renew the leases of the runs held here, until cancelled."""
        while True:
            await self._clock.sleep(self.interval)
            held = sorted(self._held)
            try:
                kept = await self._storage.renew_leases(self._owner, held, self.lease)
            except Exception:
                logger.exception("Renewing the leases of %s failed", self._owner)
                continue
            # A run that ended meanwhile is no longer held; one still held was reaped after
            # this process went silent past its lease (or is ending this moment: its end, not
            # a cancel, decides then).
            lost = sorted(set(held) - set(kept) & self._held)
            if lost:
                self._lost(lost)

    async def reap(self) -> None:
        """Re-queue the runs whose leases expired and resume them here, until cancelled.
        Never this process's own: after a stall past their lease, its heartbeat renews them
        (or finds them taken over by another process's reaper, `lost`)."""
        while True:
            await self._clock.sleep(self.interval)
            try:
                threads = await self._storage.reap_expired_leases(sparing=self._owner)
            except Exception:
                logger.exception("Reaping expired leases failed")
                continue
            if threads:
                self._reaped(len(threads))
            for thread_id in threads:
                logger.warning("Thread %s: its run's process died; resuming it here", thread_id)
                self._resume(thread_id)
