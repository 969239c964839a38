"""A run's end in one statement, the common case: the run was created on an idle thread in one
statement (`idle_create`) by this process, and nothing has changed the thread's row since.
Ending a run otherwise takes a transaction of two statements besides `BEGIN` and `COMMIT`
(`PostgresRuns.finish_run`); this one takes one, in autocommit. When the condition fails it
changes nothing and the caller takes the transaction.

Why the condition suffices: when the run was created, no other run was pending or running on the
thread (`idle_create`'s conditions), and the only transactions that add a run to those (the
creations; a claim, a reaped lease or a released one move a run between pending and running)
also update the thread's row, giving it a new version (its `xmin`, the id of the transaction
that wrote it). So if the thread's row, locked, is still the version the creation wrote, no run
has joined the thread since: the finishing run is its only active one, the thread's status is
the outcome's, no queued run falls due, and the thread's usage is the one the creation read
back. A run that left meanwhile (deleted, say) changes none of that. The row is locked `FOR
UPDATE`; a writer that held it commits a new version first, which the lock's re-check finds
(read committed), and the statement then changes nothing.
"""

from __future__ import annotations

from collections import OrderedDict
from datetime import datetime
from typing import Any, NamedTuple

from psycopg.rows import DictRow

from agent_runtime.storage.postgres.database import PostgresDatabase, jsonb
from agent_runtime.storage.postgres.idle_create import THREAD_VERSION
from agent_runtime.storage.postgres.settle import STORE_VALUES, Settlement
from agent_runtime.storage.records import RunOutcome, finish_guard
from agent_runtime.usage import stored_usage

KEPT_RUNS = 4096
"""The most runs remembered at once. A run another process ends (a cancellation, a reaped
lease) is never finished here and stays until pushed out; one forgotten only ends the slow way."""


class IdleStart(NamedTuple):
    """A run's thread as the run's creation left it."""

    thread_id: str
    version: str
    usage: Any
    """The thread's stored usage."""


class IdleStarts:
    """The runs this process created on idle threads, and their threads as the creations left
    them, the oldest forgotten first past `size`."""

    def __init__(self, size: int = KEPT_RUNS) -> None:
        self._size = size
        self._starts: OrderedDict[str, IdleStart] = OrderedDict()

    def add(self, run_id: str, start: IdleStart) -> None:
        self._starts[run_id] = start
        if len(self._starts) > self._size:
            self._starts.popitem(last=False)

    def pop(self, run_id: str) -> IdleStart | None:
        return self._starts.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._starts)


async def finish_on_unchanged_thread(
    db: PostgresDatabase,
    run_id: str,
    start: IdleStart,
    outcome: RunOutcome,
    now: datetime,
    *,
    held_by: str | None = None,
) -> DictRow | None:
    """The ended run's row, or None, having changed nothing, when the thread's row is no longer
    the version `start` saw (or the run is gone from it), or with `held_by` when the run is no
    longer running under that owner (a reap and another claim leave the thread's row as it
    was)."""
    settlement = Settlement(outcome, now, start.usage)
    held, held_params = finish_guard(False, held_by, "%s")
    store_values, values_params = "", []
    if settlement.values is not None:
        source = "SELECT %s, %s::json WHERE EXISTS (SELECT 1 FROM finished)"
        store_values = f" stored AS ({STORE_VALUES.format(source)}),"
        values_params = [start.thread_id, settlement.values]
    sql = (
        "WITH locked AS (SELECT thread_id FROM threads WHERE thread_id = %s"
        f" AND {THREAD_VERSION} = %s FOR UPDATE),"
        # A finished run's lease is nobody's: cleared, it takes no room in the row.
        " finished AS (UPDATE runs SET status = %s, error = %s, usage = %s, updated_at = %s,"
        " owner = NULL, lease_expires_at = NULL WHERE run_id = %s AND thread_id = %s"
        f"{held} AND EXISTS (SELECT 1 FROM locked) RETURNING *),"
        f"{store_values}"
        f" touched AS (UPDATE threads SET {', '.join(['status = %s', *settlement.sets])}"
        " WHERE thread_id = %s AND EXISTS (SELECT 1 FROM finished) RETURNING 1)"
        " SELECT finished.* FROM finished CROSS JOIN touched"
    )
    params = [
        start.thread_id,
        start.version,
        outcome.status,
        outcome.error,
        None if outcome.usage is None else jsonb(stored_usage(outcome.usage)),
        now,
        run_id,
        start.thread_id,
        *held_params,
        *values_params,
        outcome.thread_status,
        *settlement.params,
        start.thread_id,
    ]
    return await db.fetch_one(sql, params)
