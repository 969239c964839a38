"""The runs executing in this process and the cancels asked of them: which asyncio task executes
each run, and how a cancelled run should end (`interrupt` or `rollback`). It only cancels tasks;
the run manager ends the runs."""

from __future__ import annotations

import asyncio

from agent_runtime.runs.signals import CancelAction
from agent_runtime.storage.records import RunOutcome


class Cancels:
    """A cancel asked before the run's execution is registered is honoured at registration."""

    def __init__(self) -> None:
        self._executions: dict[str, asyncio.Task[RunOutcome]] = {}
        self._actions: dict[str, CancelAction] = {}

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

    def remember(self, run_id: str, action: CancelAction) -> None:
        """Cancel the run when its execution registers (it is claimed, not yet executing)."""
        self._actions[run_id] = action

    def action(self, run_id: str) -> CancelAction:
        """How the cancelled run should end; forgets it."""
        return self._actions.pop(run_id, "interrupt")

    def forget(self, run_id: str) -> None:
        """The run ended: drop a cancel that came too late to matter."""
        self._actions.pop(run_id, None)
