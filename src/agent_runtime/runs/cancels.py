"""The runs executing in this process and the cancels asked of them: which asyncio task executes
each run, how a cancelled run should end (`interrupt` or `rollback`), and the cancels other
processes recorded in the database for the runs held here. It only cancels tasks; the run
manager ends the runs."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Set
from typing import Literal

from agent_runtime.runs.signals import CancelAction
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import RunOutcome

logger = logging.getLogger("agent_runtime.runs")

REQUEST_POLL_SECONDS = 1.0
"""Without signals between processes: how long a cancel sent to another process may take."""
SIGNALLED_REQUEST_POLL_SECONDS = 5.0
"""With them: only a lost signal costs this long."""


Stop = CancelAction | Literal["lost"]
"""Why a run's execution was cancelled: a cancel asked of the run, or `lost`: another process
took the run over after this one's lease on it lapsed, and its end is no longer this one's."""


class Cancels:
    """A cancel asked before the run's execution is registered is honoured at registration."""

    def __init__(self) -> None:
        self._executions: dict[str, asyncio.Task[RunOutcome]] = {}
        self._actions: dict[str, Stop] = {}

    def register(self, run_id: str, execution: asyncio.Task[RunOutcome]) -> None:
        """The task now executing the run; cancelled at once when a cancel came first."""
        self._executions[run_id] = execution
        if run_id in self._actions:
            execution.cancel()

    def unregister(self, run_id: str) -> None:
        """The run's execution is over (its action, if any, stays until `action` or `forget`)."""
        self._executions.pop(run_id, None)

    def cancel_here(self, run_id: str, action: CancelAction) -> bool:
        """Cancel the run's execution if it executes in this process; return whether it did."""
        execution = self._executions.get(run_id)
        if execution is None:
            return False
        self._actions[run_id] = action
        execution.cancel()
        return True

    def lose(self, run_id: str) -> bool:
        """Stop the run's execution here, if one is going on: another process took the run
        over (`Stop`). Returns whether it stopped one; an execution that is over has nothing
        left to stop (its run may be ending here this moment)."""
        execution = self._executions.get(run_id)
        if execution is None or execution.done():
            return False
        self._actions[run_id] = "lost"
        execution.cancel()
        return True

    def remember(self, run_id: str, action: CancelAction) -> None:
        """Cancel the run when its execution registers (it is claimed, not yet executing)."""
        self._actions[run_id] = action

    def action(self, run_id: str) -> Stop:
        """How the cancelled run should end; forgets it."""
        return self._actions.pop(run_id, "interrupt")

    def forget(self, run_id: str) -> None:
        """The run ended: drop a cancel that came too late to matter."""
        self._actions.pop(run_id, None)


class CancelRequests:
    """Looks for cancels recorded in the database (`Storage.request_cancel`) for the runs this
    process holds, and hands each to `deliver` once. A process that does not execute a run
    records the cancel there; a signal may reach the executing process sooner, but may be
    lost, and without Redis there is none."""

    def __init__(
        self,
        storage: Storage,
        *,
        owner: str,
        held: Set[str],
        deliver: Callable[[str, CancelAction], None],
        interval: float,
    ) -> None:
        """Args:
        held: the ids of the runs this process holds now (the manager's live set).
        deliver: cancels a held run, as a signal would.
        """
        self._storage = storage
        self._owner = owner
        self._held = held
        self._deliver = deliver
        self._interval = interval
        self._delivered: set[str] = set()

    async def watch(self) -> None:
        """Look every `interval` seconds while runs are held here, until cancelled."""
        while True:
            await asyncio.sleep(self._interval)
            await self.look()

    async def look(self) -> list[str]:
        """One look; return the ids of the runs it cancelled."""
        # A run delivered once is being cancelled; once it is no longer held it is forgotten.
        self._delivered &= self._held
        if not self._held:
            return []
        try:
            requests = await self._storage.cancel_requests(self._owner)
        except Exception:
            # A database hiccup must not end the watch; the next look tries again.
            logger.exception("Looking for cancel requests failed")
            return []
        cancelled = []
        for run_id, action in sorted(requests.items()):
            if run_id in self._held and run_id not in self._delivered:
                self._delivered.add(run_id)
                self._deliver(run_id, action)
                cancelled.append(run_id)
        return cancelled
