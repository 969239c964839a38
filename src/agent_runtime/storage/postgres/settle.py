"""What a thread's row becomes when a run on it ends (or its state is settled otherwise): its
status, interrupts, values, message count, usage and TTL, written by one statement with the
thread locked (`settle`), or by the one-statement finish of a run on an unchanged thread
(`idle_finish`)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from agent_runtime.storage.postgres.database import Conn, jsonb
from agent_runtime.storage.postgres.idle_create import EXPIRES_AT
from agent_runtime.storage.records import RunOutcome
from agent_runtime.usage import add_usage, loaded_usage, stored_usage

NEXT_DUE = (
    "(SELECT min(coalesce(not_before, created_at)) FROM runs"
    " WHERE thread_id = %s AND status = 'pending')"
)
"""When the thread's earliest pending run falls due (`next_due_time`): a scalar subquery."""

STORE_VALUES = (
    'INSERT INTO thread_values (thread_id, "values") {} ON CONFLICT (thread_id)'
    ' DO UPDATE SET "values" = excluded."values"'
)
"""The thread's values, replaced: formatted with their source (`VALUES (%s, %s::json)`, or a
`SELECT` of the two with a condition)."""


class Settlement:
    """The thread's new columns for `outcome` (all but its status), and its values to store
    if the outcome has any."""

    def __init__(self, outcome: RunOutcome, now: datetime, usage: Any) -> None:
        """`usage`: the thread's stored usage as its locked row holds it, which the run's own
        is added to."""
        self.sets = ["interrupts = %s", "updated_at = %s", f"expires_at = {EXPIRES_AT}"]
        self.params: list[Any] = [jsonb(outcome.interrupts), now, now]
        encoded = outcome.encoded_values()
        self.values: str | None = None if encoded is None else encoded.decode()
        if encoded is not None:
            self.sets.append("state_updated_at = %s")
            self.params.append(now)
            count = outcome.count_messages()
            if count is not None:
                self.sets.append("message_count = %s")
                self.params.append(count)
        if outcome.usage is not None:
            total = add_usage(loaded_usage(usage), outcome.usage)
            assert total is not None
            self.sets += ["usage = %s", "total_tokens = %s", "cost_usd = %s"]
            self.params += [jsonb(stored_usage(total)), total["total_tokens"], total["cost_usd"]]


async def settle(
    conn: Conn, thread: Mapping[str, Any], outcome: RunOutcome, now: datetime
) -> datetime | None:
    """Called with the thread locked (`thread`: its id and usage as the lock read them), after
    the finishing run left the active set, so any active run is a queued one. Returns when the
    next queued run falls due, read by the update itself (no trip of its own)."""
    thread_id = thread["thread_id"]
    settlement = Settlement(outcome, now, thread["usage"])
    status = (
        "status = CASE WHEN EXISTS (SELECT 1 FROM runs WHERE thread_id = %s"
        " AND status IN ('pending', 'running')) THEN 'busy' ELSE %s END"
    )
    # The values are stored by the same statement (a CTE), not one of their own.
    store_values, values_params = "", []
    if settlement.values is not None:
        store_values = f"WITH stored AS ({STORE_VALUES.format('VALUES (%s, %s::json)')}) "
        values_params = [thread_id, settlement.values]
    cursor = await conn.execute(
        f"{store_values}UPDATE threads SET {', '.join([status, *settlement.sets])}"
        f" WHERE thread_id = %s RETURNING {NEXT_DUE} AS due",
        [
            *values_params,
            thread_id,
            outcome.thread_status,
            *settlement.params,
            thread_id,
            thread_id,
        ],
    )
    updated = await cursor.fetchone()
    return None if updated is None else updated["due"]
