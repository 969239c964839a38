"""What every backend decides the same way when a run comes to a thread with active runs: a
`reject` strategy's refusal and the cap on a thread's pending runs. Pure checks on rows already
read; no IO, no SQL."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from agent_runtime.errors import ConflictError, TooManyRequestsError
from agent_runtime.storage.records import NewRun


def check_active(new: NewRun, active: Sequence[Mapping[str, Any]]) -> None:
    """Refuse `new` when its thread is busy and its strategy is `reject`, or when the thread
    already queues `new.max_pending` runs.

    Args:
        active: the thread's pending and running runs (rows with a `run_id` and a `status`),
            the running one first, so that a refusal names the run that holds the thread.

    Raises:
        ConflictError: the thread is busy and the strategy is `reject` (409 `thread_busy`).
        TooManyRequestsError: the thread's queue is full (429 `too_many_pending_runs`).
    """
    if active and new.multitask_strategy == "reject":
        raise ConflictError(
            f'Thread "{new.thread_id}" is busy with run "{active[0]["run_id"]}"; '
            'multitask_strategy="reject" refuses a second run',
            code="thread_busy",
        )
    # Other strategies cancel the active runs, so only `enqueue` can grow the queue.
    if new.max_pending is None or new.multitask_strategy != "enqueue":
        return
    pending = sum(1 for run in active if run["status"] == "pending")
    if pending >= new.max_pending:
        raise TooManyRequestsError(
            f'Thread "{new.thread_id}" already has {pending} pending runs, the most it may '
            f"queue (agent_runtime.limits.max_pending_runs_per_thread in langgraph.json); "
            "retry when some have run, or cancel them",
            code="too_many_pending_runs",
        )
