"""The storage protocol every backend implements: assistants, threads, and the handles to
LangGraph's checkpointer and store. Routes and the run manager only ever see this protocol."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from agent_runtime.schema import (
    Assistant,
    AssistantVersion,
    CancelAction,
    Cron,
    Json,
    OnConflict,
    Run,
    RunStatus,
    Thread,
    ToolCall,
)
from agent_runtime.storage.cron_records import CronPatch, CronQuery, NewCron
from agent_runtime.storage.filters import AuthFilter
from agent_runtime.storage.records import (
    AssistantPatch,
    AssistantQuery,
    CheckpointSummary,
    Claim,
    CreatedRun,
    FinishedRun,
    NewAssistant,
    NewRun,
    NewThread,
    PruneResult,
    PruneStrategy,
    RetentionPolicy,
    RunOutcome,
    ThreadBrief,
    ThreadPatch,
    ThreadQuery,
)


class Storage(Protocol):
    """What the runtime stores outside LangGraph's checkpointer, plus handles to it.

    Every method raises `NotFoundError` for unknown ids, `ConflictError` for duplicates and
    `StorageError` when the backend itself fails.
    """

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]: ...

    @property
    def read_checkpointer(self) -> BaseCheckpointSaver[str]:
        """The same checkpoints, for reads (state, history) that must never hold up the
        writes of a running graph."""

    @property
    def store(self) -> BaseStore: ...

    async def setup(self) -> None:
        """Open connections and create or migrate tables; idempotent."""

    async def close(self) -> None:
        """Release connections; the storage cannot be used afterwards."""

    # Assistants

    async def create_assistant(self, new: NewAssistant, *, if_exists: OnConflict) -> Assistant: ...

    async def get_assistant(self, assistant_id: str) -> Assistant: ...

    async def update_assistant(self, assistant_id: str, patch: AssistantPatch) -> Assistant: ...

    async def delete_assistant(
        self,
        assistant_id: str,
        *,
        delete_threads: bool = False,
        thread_auth: AuthFilter | None = None,
    ) -> None:
        """Delete the assistant and its versions; with `delete_threads`, also every thread
        whose metadata names it as `assistant_id` (and passes `thread_auth`: the threads the
        user may delete)."""

    async def search_assistants(self, query: AssistantQuery) -> list[Assistant]: ...

    async def count_assistants(self, query: AssistantQuery) -> int: ...

    async def list_assistant_versions(
        self, assistant_id: str, *, metadata: Json | None, limit: int, offset: int
    ) -> list[AssistantVersion]: ...

    async def set_latest_assistant_version(self, assistant_id: str, version: int) -> Assistant: ...

    # Threads

    async def create_thread(self, new: NewThread, *, if_exists: OnConflict) -> Thread: ...

    async def get_thread(self, thread_id: str, *, values: bool = True) -> Thread:
        """The thread; with `values=False` its `values` are left out (None) for a caller that
        does not show them: on a long thread they are most of what would be read and parsed."""
        ...

    async def update_thread(self, thread_id: str, patch: ThreadPatch) -> Thread:
        """Apply the patch atomically.

        Raises:
            ConflictError: a lifecycle change that is not allowed (open<->locked, open->archived
                and locked->archived are; nothing leaves archived), or any other change to a
                thread that is not open (only its lifecycle may change then).
        """

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread, its runs and every checkpoint it has.

        Raises:
            ConflictError: the thread is locked (unlock it first).
        """

    async def search_threads(self, query: ThreadQuery) -> list[Thread]: ...

    async def thread_brief(self, thread_id: str) -> ThreadBrief:
        """The thread's message count (after its latest run or edit) and metadata; `(0, {})`
        for an unknown thread. Cheap: no state is read."""

    async def count_threads(self, query: ThreadQuery) -> int: ...

    async def copy_thread(self, thread_id: str, new_thread_id: str) -> Thread:
        """Copy the thread's row and its whole checkpoint history under a new id."""

    async def sweep_expired_threads(self, policy: RetentionPolicy | None = None) -> int:
        """Prune every idle, unlocked thread whose TTL has run out or that the policy says
        has expired; returns how many were pruned.

        A thread's own TTL (restarted by each update, run and state edit) names its strategy:
        `delete` removes the thread; `keep_latest` keeps it, readable, with only each
        namespace's latest checkpoint, and clears its expiry until its next activity. Under
        `keep_latest` a thread that uses a DeltaChannel is skipped and left whole (its values
        are rebuilt from older checkpoints); it stays expired, so each sweep skips it again."""

    async def prune_threads(
        self, thread_ids: Sequence[str], *, strategy: PruneStrategy
    ) -> PruneResult:
        """Delete the threads, or keep only each namespace's latest checkpoint of them.
        Locked, busy and unknown threads are skipped, as are delta-channel threads under
        `keep_latest`."""

    async def list_checkpoint_summaries(self, thread_id: str) -> list[CheckpointSummary]:
        """Every checkpoint of the thread, all namespaces, oldest first, without decoding
        channel values."""

    # Tool calls

    async def record_tool_call(self, thread_id: str, call: ToolCall) -> None:
        """Store one finished tool call; a call for a thread deleted meanwhile is dropped."""

    async def list_tool_calls(
        self, thread_id: str, *, run_id: str | None, name: str | None, limit: int, offset: int
    ) -> tuple[list[ToolCall], int]:
        """The thread's tool calls, oldest first, and how many match in all.

        Raises:
            NotFoundError: the thread does not exist.
        """

    # Runs

    async def create_run(self, new: NewRun, *, claim: Claim | None = None) -> CreatedRun:
        """Queue a pending run and mark its thread busy, atomically applying the multitask
        strategy against the runs already pending or running on the thread.

        With `claim`, the run is created already claimed (`running`, as `claim_next_run` would
        leave it: attempt 1, the owner and lease, the progress mark) when it would be the
        thread's next claim at once: nothing else pending or running on the thread and
        `not_before` absent or past. Else it is queued `pending` as without. The returned
        run's status tells which; one write transaction instead of a create and a claim, and
        the thread's brief (`thread_brief`, as the run starts) comes with a run created claimed.
        A claim that is not `durable` commits without waiting for the disk.

        Also stamps `graph_id` and `assistant_id` into the thread's metadata, adds the run's
        tags to the thread's and counts the run in the thread's `run_count`.
        Returns the new run, the active runs the caller must now cancel (for `interrupt`
        and `rollback`; always empty for `enqueue`) and the brief.

        Raises:
            ConflictError: `reject` and the thread has a pending or running run; or the thread
                is locked or archived.
            NotFoundError: the thread does not exist and `if_not_exists` is `reject`.
        """

    async def get_run(self, thread_id: str, run_id: str) -> Run: ...

    async def find_run(self, run_id: str) -> Run:
        """A run by id alone, whatever its thread."""

    async def find_runs(self, run_ids: Sequence[str]) -> dict[str, Run]:
        """The runs of these ids that exist, by id, whatever their threads: one read for many
        (the waiters' poll)."""

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None
    ) -> list[Run]:
        """The thread's runs, newest first.

        Raises:
            NotFoundError: the thread does not exist.
        """

    async def search_runs(
        self,
        *,
        thread_id: str | None,
        statuses: Sequence[RunStatus],
        auth: AuthFilter | None = None,
    ) -> list[Run]:
        """Runs in any of `statuses`, on one thread or on all, oldest first; with `auth`, only
        runs on threads whose metadata passes it."""

    async def delete_run(self, thread_id: str, run_id: str, *, checkpoints: bool) -> None:
        """Delete a run; with `checkpoints`, also every checkpoint it wrote (for rollback).
        Leaves the thread's status to the caller's next `finish_run` or `settle_thread`."""

    async def delete_run_checkpoints(self, thread_id: str, run_id: str) -> None:
        """Delete every checkpoint the run wrote (with their writes), keeping the run itself."""

    async def claim_next_run(
        self, thread_id: str, *, owner: str | None = None, lease: timedelta | None = None
    ) -> Run | None:
        """If nothing runs on the thread, mark its oldest due pending run `running`, count up
        its attempt, and return it; else None. Due means `not_before` is absent or past.

        The claim is held by `owner` (a process's id) until `lease` from now, unless renewed
        (`renew_leases`). Without them the claim has no lease: the next `reap_expired_leases`
        takes it back (tests, and tools claiming by hand)."""

    async def ready_threads(self, limit: int) -> list[str]:
        """The ids of at most `limit` threads that a `claim_next_run` would claim from now: each
        has a due pending run (`not_before` absent or past) and no `running` run. Ordered by
        the `created_at` of each thread's oldest due pending run, then by thread id, so the
        longest-waiting work goes first. Reads only; claims nothing. For dispatchers that find
        the work no process of theirs was told about."""

    async def renew_leases(self, owner: str, run_ids: Sequence[str], lease: timedelta) -> list[str]:
        """Push the leases `owner` holds on `run_ids` to `lease` from now; return the ids of
        the runs it still holds (a run missing was reaped from it, or has ended)."""

    async def reap_expired_leases(self, *, sparing: str | None = None) -> list[str]:
        """Re-queue (`pending`, same run id) every run held by an owner one of whose leases
        has lapsed: that owner is presumed dead. Each such run is charged an attempt
        (`charged_attempts`) unless it had neighbours in that owner and wrote a step
        checkpoint since its claim. Returns the ids of the threads re-queued, oldest run
        first.

        Args:
            sparing: the reaping process's own owner id, whose runs it leaves to its own
                heartbeat: a process whose event loop stalled past its lease is alive when it
                reaps, and renews them unless another process reaped them meanwhile.
        """

    async def release(self, owner: str) -> list[str]:
        """On a graceful stop: hand back (`pending`, not charged) the runs `owner` holds.
        Returns the ids of their threads."""

    async def request_cancel(self, run_id: str, action: CancelAction) -> bool:
        """Record that the running run is to be cancelled with `action`, for the process that
        holds it to find (`cancel_requests`), or whichever process claims it next if that one
        dies first. Returns False, recording nothing, when the run is not `running`."""

    async def cancel_requests(self, owner: str) -> dict[str, CancelAction]:
        """The runs `owner` holds (`running`) that a `request_cancel` asked to stop, with how."""

    async def charged_attempts(self, run_id: str) -> int:
        """How many attempts of the run ended with its process dying and were blamed on it.

        Raises:
            NotFoundError: the run does not exist.
        """

    async def next_due_time(self, thread_id: str) -> datetime | None:
        """When the thread's earliest pending run becomes due; None if it has none."""

    async def finish_run(
        self,
        run_id: str,
        outcome: RunOutcome,
        *,
        only_if_pending: bool = False,
        held_by: str | None = None,
    ) -> FinishedRun | None:
        """Record how a run ended and update its thread in the same transaction; return the
        run as it ended and its thread's next due time (`FinishedRun`).

        With `only_if_pending`, do nothing and return None unless the run is still pending
        (cancelling a queued run must not overwrite one a worker has just claimed). With
        `held_by`, likewise unless it is still running under that owner: an executor whose
        lease lapsed must not end the run another process has claimed since, which would let
        the thread's next run start beside it.

        Raises:
            NotFoundError: the run does not exist.
        """

    async def settle_thread(self, thread_id: str, outcome: RunOutcome) -> None:
        """Set the thread's status and state when no run is left to do it (busy if runs are
        still pending or running)."""

    async def requeue_interrupted_work(self) -> list[str]:
        """At start-up: reap expired leases (`reap_expired_leases`; runs a live process holds
        stay its own), then return the ids of every thread with pending runs, oldest first."""

    # Operations (metrics)

    async def count_pending_runs(self) -> int:
        """How many runs are queued and not started (delayed ones included)."""
        ...

    def pool_stats(self) -> Mapping[str, int] | None:
        """This process's connection pool: `open` (in use or idle), `idle`, `max` and
        `waiting` (requests waiting for a connection); None where there is no pool (SQLite
        keeps one writer and one reader connection per process)."""
        ...

    # Crons

    async def create_cron(self, new: NewCron) -> Cron:
        """Store a cron.

        Raises:
            NotFoundError: `thread_id` names no thread.
            ConflictError: the cron id is taken.
        """

    async def get_cron(self, cron_id: str) -> Cron: ...

    async def update_cron(self, cron_id: str, patch: CronPatch) -> Cron: ...

    async def delete_cron(self, cron_id: str) -> None:
        """Delete the cron; the runs it fired stay. (Deleting a thread deletes its crons.)"""

    async def search_crons(self, query: CronQuery) -> list[Cron]: ...

    async def count_crons(self, query: CronQuery) -> int: ...

    async def claim_due_crons(self, owner: str, *, lease: timedelta, limit: int) -> list[Cron]:
        """Hold for `owner`, until `lease` from now, at most `limit` crons that are due: enabled,
        `next_run_date` come and not after `end_time`, and not held by a claim still in force.
        Earliest first. Atomic across processes: a due cron goes to one claim only; a claim
        that lapsed (its process died while firing) lets another process take it again."""

    async def release_cron(
        self, cron_id: str, owner: str, *, fired: datetime, next_run_date: datetime | None
    ) -> None:
        """End `owner`'s claim and move the cron on to `next_run_date`, unless an update
        rescheduled it meanwhile (its `next_run_date` is no longer `fired`). A claim `owner`
        no longer holds is left alone."""

    async def next_cron_time(self) -> datetime | None:
        """The earliest moment an enabled cron may be claimed (its next fire, or the end of a
        claim holding it); None when no cron is left to fire."""
