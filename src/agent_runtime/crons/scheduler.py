"""The scheduler: in every process that executes runs, claims the crons that are due and fires
each once (`crons.fire`), then moves it on to its next time.

Each fire happens once across processes: a due cron is claimed atomically in storage, held
under a lease while its run is queued, and released with its next time. A process that dies
between claim and release leaves the lease to lapse; another process then makes the same fire
again, which storage refuses if the run was queued (its id derives from the cron and the time).

After downtime a cron catches up once: the fire it missed is made when a process next looks
(however many it missed), and the next one is the schedule's first time after now. Sleeps on
the injected clock, until the earliest next fire or `poll_seconds` (crons created by other
processes), and wakes early when this process creates or changes a cron (`wake`)."""

from __future__ import annotations

import asyncio
import logging
import uuid
from datetime import datetime, timedelta

from agent_runtime.background import stop_tasks
from agent_runtime.clock import Clock, sleep_or_wake
from agent_runtime.config import RuntimeConfig
from agent_runtime.crons.fire import fire_cron
from agent_runtime.crons.schedule import next_fire
from agent_runtime.errors import AgentRuntimeError, StorageError
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.manager import RunManager
from agent_runtime.schema import Cron
from agent_runtime.storage.base import Storage

logger = logging.getLogger("agent_runtime.crons")

POLL_SECONDS = 5.0
"""The longest the scheduler sleeps without looking: how late a cron created by another
process (one that fires none, `--role api`) may fire."""
CLAIM_BATCH = 20
"""Crons claimed at once; more due crons are claimed right after."""
CLAIM_LEASE_SECONDS = 30.0


class CronScheduler:
    """Fires the crons of one process; see the module docstring."""

    def __init__(
        self,
        storage: Storage,
        registry: GraphRegistry,
        runs: RunManager,
        *,
        config: RuntimeConfig,
        clock: Clock,
        poll_seconds: float = POLL_SECONDS,
        lease_seconds: float = CLAIM_LEASE_SECONDS,
    ) -> None:
        self._storage = storage
        self._registry = registry
        self._runs = runs
        self._config = config
        self._clock = clock
        self._poll = poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self.owner = f"crons:{uuid.uuid4().hex}"
        """This scheduler's id on the crons it claims."""
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start looking for due crons."""
        if self._task is None:
            self._task = asyncio.create_task(self._loop(), name="crons:scheduler")

    async def stop(self) -> None:
        """Stop; a fire under way is cancelled and its lease left to lapse."""
        if self._task is not None:
            await stop_tasks(self._task)
            self._task = None

    def wake(self) -> None:
        """Look again now: a cron was created or changed."""
        self._wake.set()

    async def fire_due(self) -> int:
        """Claim the crons due now, fire each once and move it on; return how many were
        claimed (at most `CLAIM_BATCH`)."""
        claimed = await self._storage.claim_due_crons(
            self.owner, lease=self._lease, limit=CLAIM_BATCH
        )
        for cron in claimed:
            await self._fire(cron)
        return len(claimed)

    async def _loop(self) -> None:
        while True:
            self._wake.clear()
            try:
                if await self.fire_due() >= CLAIM_BATCH:
                    continue
                delay = await self._delay()
            except Exception:
                logger.exception("Firing due crons failed")
                delay = self._poll
            if delay > 0:
                await sleep_or_wake(self._clock, self._wake, delay)

    async def _delay(self) -> float:
        due = await self._storage.next_cron_time()
        if due is None:
            return self._poll
        return min(self._poll, max(0.0, (due - self._clock.now()).total_seconds()))

    async def _fire(self, cron: Cron) -> None:
        fired = cron["next_run_date"]
        assert fired is not None  # a claimed cron is due
        try:
            run = await fire_cron(
                cron,
                fired,
                storage=self._storage,
                registry=self._registry,
                config=self._config,
                clock=self._clock,
                runs=self._runs,
            )
            logger.info(
                'Cron "%s" fired run "%s" on thread "%s"',
                cron["cron_id"],
                run["run_id"],
                run["thread_id"],
            )
        except StorageError:
            # The database failed: the claim lapses and this fire is tried again.
            raise
        except AgentRuntimeError as exc:
            if exc.code == "run_exists":
                # Another process made this fire, then died before moving the cron on.
                logger.debug('Cron "%s": its fire at %s was made already', cron["cron_id"], fired)
            else:
                logger.warning('Cron "%s" did not fire: %s', cron["cron_id"], exc.detail)
        except Exception:
            # Not retried: a cron that breaks its fire every time would be claimed for ever.
            logger.exception('Cron "%s" did not fire', cron["cron_id"])
        await self._storage.release_cron(
            cron["cron_id"], self.owner, fired=fired, next_run_date=self._next(cron, fired)
        )

    def _next(self, cron: Cron, fired: datetime) -> datetime | None:
        # After the later of the fire and now: a cron that missed several fires catches up once.
        after = max(fired, self._clock.now())
        try:
            return next_fire(cron["schedule"], cron["timezone"], after, end_time=cron["end_time"])
        except AgentRuntimeError as exc:
            logger.warning('Cron "%s" cannot be scheduled again: %s', cron["cron_id"], exc.detail)
            return None
