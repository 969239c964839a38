"""A run created on an idle thread in one statement, the common case: the thread open and not
busy, no run pending or running on it, the run's assistant as cached. Creating a run otherwise
takes a transaction of four statements besides `BEGIN` and `COMMIT` (`PostgresRuns.create_run`),
each costing a round trip and psycopg's work on the event loop; this one takes one, in
autocommit. When any condition fails it changes nothing and the caller takes the transaction,
which decides and refuses as always.

Why the conditions hold under concurrency: the thread's row is locked (`FOR UPDATE`) as in the
transaction. A creation waiting for that lock read its snapshot before the wait, so its own
check of the thread's runs cannot see a run another creation committed meanwhile; but every
transaction that makes a run pending or running also sets the thread `busy` in that same
transaction, and Postgres checks a locked row's conditions again on its newest version
(read committed's re-check of an updated row), so the waiting creation finds the thread
`busy` and leaves the work to the transaction.
"""

from __future__ import annotations

from datetime import datetime

from psycopg.rows import DictRow

from agent_runtime.storage.postgres.checkpoint_tables import latest_columns, latest_join
from agent_runtime.storage.postgres.database import PostgresDatabase, jsonb
from agent_runtime.storage.records import Claim, NewRun, new_run_columns

# Activity (a run starting or settling, a state edit) restarts the thread's own TTL, which
# `ttl` holds in minutes; the one parameter is the moment of the activity.
EXPIRES_AT = (
    "CASE WHEN ttl ->> 'ttl' IS NULL THEN NULL"
    " ELSE %s::timestamptz + (ttl ->> 'ttl')::float8 * interval '1 minute' END"
)

THREAD_VERSION = "xmin::text"
"""A thread row's version: the transaction that wrote it (`idle_finish` compares them)."""

_INSERT = (
    " inserted AS (INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at,"
    " status, metadata, kwargs, multitask_strategy, attempt, not_before, owner,"
    " lease_expires_at, progress_mark) SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s,"
    " %s, %s FROM idle ON CONFLICT (run_id) DO NOTHING RETURNING *),"
    " touched AS (UPDATE threads SET status = 'busy', metadata = metadata || %s,"
    " updated_at = %s, run_count = run_count + 1, first_run_at = coalesce(first_run_at, %s),"
    f" last_run_at = %s, expires_at = {EXPIRES_AT} WHERE thread_id = %s"
    " AND EXISTS (SELECT 1 FROM inserted)"
    " RETURNING message_count, metadata AS thread_metadata, usage AS thread_usage,"
    f" {THREAD_VERSION} AS thread_version)"
    " SELECT inserted.*, touched.message_count, touched.thread_metadata, touched.thread_usage,"
    " touched.thread_version"
)
_FROM = " FROM inserted CROSS JOIN touched"


def can_try(new: NewRun) -> bool:
    """Whether `new` could be created in one statement if its thread is idle: no tags to merge
    (their order and limit are the transaction's) and room for one pending run."""
    return not new.tags and (new.max_pending is None or new.max_pending > 0)


async def create_on_idle_thread(
    db: PostgresDatabase, new: NewRun, claim: Claim | None, now: datetime, *, read_latest: bool
) -> DictRow | None:
    """The new run's row (with the thread's `message_count`, `thread_metadata`, `thread_usage`
    and `thread_version` as this creation left them), or None, having changed nothing, when
    its thread is not idle, not open, missing or over its tag limit, when the assistant
    changed, or when the run id is taken. With `read_latest`, the row also holds the thread's
    latest root checkpoint as upstream's saver reads it (`checkpoint_tables.latest_columns`)."""
    relaxed = claim is not None and not claim.durable
    if new.not_before is not None and new.not_before > now:
        claim = None
    conditions = [
        "thread_id = %s",
        "status <> 'busy'",
        "lifecycle = 'open'",
        "jsonb_array_length(tags) <= %s",
        "NOT EXISTS (SELECT 1 FROM runs WHERE runs.thread_id = threads.thread_id"
        " AND runs.status IN ('pending', 'running'))",
    ]
    params: list[object] = [new.thread_id, new.max_tags]
    if new.assistant_seen is not None:
        conditions.append(
            "(SELECT version = %s AND updated_at = %s FROM assistants WHERE assistant_id = %s)"
        )
        params += [new.assistant_seen.version, new.assistant_seen.updated_at, new.assistant_id]
    # An attended run's creation commits without waiting for the disk, as in the transaction.
    relax = ", set_config('synchronous_commit', 'off', true)" if relaxed else ""
    sql = (
        f"WITH idle AS (SELECT thread_id{relax} FROM threads WHERE {' AND '.join(conditions)}"
        " FOR UPDATE)," + _INSERT
    )
    stamped = {"graph_id": new.graph_id, "assistant_id": new.assistant_id}
    params += run_values(new, now, claim)
    params += [jsonb(stamped), now, now, now, now, new.thread_id]
    if read_latest:
        # The statement's snapshot: the checkpoints as of this creation, which nothing can
        # change before the run reads them (`storage.primed`).
        sql += f", {latest_columns()}{_FROM}{latest_join()}"
        params.append(new.thread_id)
    else:
        sql += _FROM
    return await db.fetch_one(sql, params)


def run_values(new: NewRun, now: datetime, claim: Claim | None) -> list[object]:
    """The values of a new `runs` row, in the order both creations insert its columns."""
    status, attempt, owner, lease_expires_at, progress_mark = new_run_columns(claim, now)
    return [
        new.run_id,
        new.thread_id,
        new.assistant_id,
        now,
        now,
        status,
        jsonb(new.metadata),
        jsonb(new.options.to_json()),
        new.multitask_strategy,
        attempt,
        new.not_before,
        owner,
        lease_expires_at,
        progress_mark,
    ]
