"""Every statement of ours against LangGraph's checkpoint tables in Postgres (`checkpoints`,
`checkpoint_blobs`, `checkpoint_writes`): the checkpoint tree's cheap reads, and the deletes,
copies and pruning that threads, runs and retention make. Upstream (langgraph-checkpoint-postgres)
owns these tables and may change them; this is the one module to read when it does, and the only
one that imports its private pruning helpers.

A checkpoint row inlines its primitive channel values; any other value is a blob keyed by
(channel, version), shared by every checkpoint of the namespace that holds that version. So a
delete of checkpoints frees only the blobs no remaining checkpoint of the namespace references.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from langgraph.checkpoint.postgres.base import (
    PRUNE_DELTA_THREADS_SQL,
    PRUNE_SNAPSHOT_SQL,
    SELECT_SQL,
    _aexecute,
    _keep_latest,
    _Statements,
)
from psycopg import sql as pgsql
from psycopg.rows import DictRow

from agent_runtime.storage.postgres.database import Conn, PostgresDatabase
from agent_runtime.storage.records import CheckpointSummary

CHECKPOINT_TABLES = ("checkpoints", "checkpoint_blobs", "checkpoint_writes")
"""The tables of langgraph-checkpoint-postgres keyed by thread_id."""

LATEST_COLUMNS = (
    "thread_id",
    "checkpoint",
    "checkpoint_ns",
    "checkpoint_id",
    "parent_checkpoint_id",
    "metadata",
    "channel_values",
    "pending_writes",
)
"""The columns of upstream's read of a checkpoint (`SELECT_SQL`), which its saver loads a
checkpoint tuple from."""

LATEST_PREFIX = "latest_"


def latest_join(alias: str = "latest") -> str:
    """A `LEFT JOIN LATERAL` of upstream's read of a thread's latest root checkpoint, the
    thread's id its one parameter; `latest_columns` selects what it read."""
    return (
        f" LEFT JOIN LATERAL ({SELECT_SQL} WHERE thread_id = %s AND checkpoint_ns = ''"
        f" ORDER BY checkpoint_id DESC LIMIT 1) {alias} ON true"
    )


def latest_columns(alias: str = "latest") -> str:
    """`latest_join`'s columns, each prefixed (`LATEST_PREFIX`); `checkpoint_id` is NULL when
    the thread has no checkpoint."""
    return ", ".join(f"{alias}.{column} AS {LATEST_PREFIX}{column}" for column in LATEST_COLUMNS)


def latest_row(row: DictRow) -> dict[str, Any] | None:
    """The row upstream's read would have returned, from a row that selected
    `latest_columns`; None when the thread had no checkpoint."""
    if row[f"{LATEST_PREFIX}checkpoint_id"] is None:
        return None
    return {column: row[f"{LATEST_PREFIX}{column}"] for column in LATEST_COLUMNS}


# A channel has a value at a checkpoint when the row inlines one, or when the blob of the
# version it names is not upstream's "empty" marker. Nothing is decoded.
_SUMMARIES = """
SELECT c.checkpoint_ns, c.checkpoint_id, c.parent_checkpoint_id, c.metadata,
    c.checkpoint ->> 'ts' AS ts,
    c.checkpoint -> 'channel_versions' AS channel_versions,
    c.checkpoint -> 'versions_seen' AS versions_seen,
    ARRAY(SELECT jsonb_object_keys(coalesce(c.checkpoint -> 'channel_values', '{}'))) AS inline,
    ARRAY(
        SELECT b.channel FROM jsonb_each_text(coalesce(c.checkpoint -> 'channel_versions', '{}'))
            AS v
        JOIN checkpoint_blobs b ON b.thread_id = c.thread_id
            AND b.checkpoint_ns = c.checkpoint_ns AND b.channel = v.key AND b.version = v.value
        WHERE b.type <> 'empty'
    ) AS blobbed
FROM checkpoints c WHERE c.thread_id = %s ORDER BY c.checkpoint_id COLLATE "C"
"""

# The saver copies `config["metadata"]["run_id"]` into every checkpoint's metadata (subgraphs
# included), and filters its own `alist` by it the same way.
_DELETE_RUN_CHECKPOINTS = """
DELETE FROM checkpoints WHERE thread_id = %s AND metadata ->> 'run_id' = %s
RETURNING checkpoint_ns, checkpoint_id, checkpoint -> 'channel_versions' AS versions
"""

_REFERENCED_BLOBS = """
SELECT DISTINCT v.key AS channel, v.value AS version FROM checkpoints c
CROSS JOIN LATERAL jsonb_each_text(c.checkpoint -> 'channel_versions') AS v
WHERE c.thread_id = %s AND c.checkpoint_ns = %s
"""


# The saver's writes, in upstream's rows (`AsyncPostgresSaver.aput` and `aput_writes` write the
# same rows, their conflicts resolved the same way), each call one statement of several rows:
# upstream sends a checkpoint as a pipeline of two statements and its writes as one statement a
# row, after dumping the values on a thread of the default executor; each hop and each
# statement is tens of microseconds of the event loop's CPU (benchmarks/README.md, session
# 10). Rows go as VALUES lists, not arrays: psycopg adapts a list element by element in Python.
ROWS_A_STATEMENT = 500
"""At most this many rows in one statement (Postgres takes at most 65,535 parameters)."""

_BLOBS = (
    "INSERT INTO checkpoint_blobs (thread_id, checkpoint_ns, channel, version, type, blob)"
    " VALUES {} ON CONFLICT (thread_id, checkpoint_ns, channel, version) DO NOTHING"
)
_CHECKPOINT = (
    "INSERT INTO checkpoints (thread_id, checkpoint_ns, checkpoint_id, parent_checkpoint_id,"
    " checkpoint, metadata) VALUES (%s, %s, %s, %s, %s, %s)"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id)"
    " DO UPDATE SET checkpoint = EXCLUDED.checkpoint, metadata = EXCLUDED.metadata"
)
_WRITES = (
    "INSERT INTO checkpoint_writes (thread_id, checkpoint_ns, checkpoint_id, task_id,"
    " task_path, idx, channel, type, blob) VALUES {}"
    " ON CONFLICT (thread_id, checkpoint_ns, checkpoint_id, task_id, idx) {}"
)


@functools.cache
def put_blobs_sql(count: int) -> str:
    """Upstream's blob rows (thread, namespace, channel, version, type, bytes), `count` of
    them, 1 to `ROWS_A_STATEMENT`; a version already stored is kept."""
    return _BLOBS.format(_rows(count, 6))


@functools.cache
def put_checkpoint_sql(blobs: int) -> str:
    """A checkpoint row (thread, namespace, id, parent id, checkpoint, metadata), replacing
    one of its id, after `blobs` blob rows (`put_blobs_sql`) stored by the same statement."""
    if not blobs:
        return _CHECKPOINT
    return f"WITH blobs AS ({put_blobs_sql(blobs)}) {_CHECKPOINT}"


@functools.cache
def put_writes_sql(count: int, *, replacing: bool) -> str:
    """A task's write rows (thread, namespace, checkpoint, task, task path, index, channel,
    type, bytes), `count` of them. `replacing`: a write replaces an earlier one of its index
    (upstream, when every channel is a special one: an error, an interrupt, a resume), and the
    rows must name each index once (one statement cannot update a row twice); otherwise the
    first of an index stays."""
    conflict = (
        "DO UPDATE SET channel = EXCLUDED.channel, type = EXCLUDED.type, blob = EXCLUDED.blob"
        if replacing
        else "DO NOTHING"
    )
    return _WRITES.format(_rows(count, 9), conflict)


def _rows(count: int, width: int) -> str:
    row = f"({', '.join(['%s'] * width)})"
    return ", ".join([row] * count)


async def list_checkpoint_summaries(
    database: PostgresDatabase, thread_id: str
) -> list[CheckpointSummary]:
    """Every checkpoint of the thread, all namespaces, by id, without decoding values."""
    return [_summary(row) for row in await database.fetch_all(_SUMMARIES, (thread_id,))]


def _summary(row: DictRow) -> CheckpointSummary:
    return CheckpointSummary(
        checkpoint_ns=row["checkpoint_ns"],
        checkpoint_id=row["checkpoint_id"],
        parent_checkpoint_id=row["parent_checkpoint_id"],
        metadata=row["metadata"] or {},
        created_at=row["ts"],
        channel_versions=row["channel_versions"] or {},
        versions_seen=row["versions_seen"] or {},
        channels_with_values=frozenset([*row["inline"], *row["blobbed"]]),
    )


async def delete_thread_checkpoints(conn: Conn, thread_ids: Sequence[str]) -> None:
    """Every checkpoint, blob and write of the threads, inside the caller's transaction."""
    for table in CHECKPOINT_TABLES:
        await conn.execute(
            pgsql.SQL("DELETE FROM {} WHERE thread_id = ANY(%s)").format(pgsql.Identifier(table)),
            (list(thread_ids),),
        )


async def copy_thread_checkpoints(conn: Conn, thread_id: str, new_thread_id: str) -> None:
    """Copy a thread's checkpoints, blobs and writes under a new thread id, column for column
    (whatever columns upstream has added)."""
    for table in CHECKPOINT_TABLES:
        cursor = await conn.execute(
            "SELECT column_name FROM information_schema.columns"
            " WHERE table_schema = current_schema() AND table_name = %s ORDER BY ordinal_position",
            (table,),
        )
        columns = [row["column_name"] for row in await cursor.fetchall()]
        names = pgsql.SQL(", ").join(pgsql.Identifier(c) for c in columns if c != "thread_id")
        await conn.execute(
            pgsql.SQL(
                "INSERT INTO {table} (thread_id, {names}) SELECT %s, {names} FROM {table}"
                " WHERE thread_id = %s"
            ).format(table=pgsql.Identifier(table), names=names),
            (new_thread_id, thread_id),
        )


async def delete_run_checkpoints(conn: Conn, thread_id: str, run_id: str) -> None:
    """Every checkpoint the run wrote (in any namespace), their writes, and the blobs only they
    referenced; inside the caller's transaction."""
    cursor = await conn.execute(_DELETE_RUN_CHECKPOINTS, (thread_id, run_id))
    deleted = await cursor.fetchall()
    by_namespace: dict[str, list[DictRow]] = {}
    for row in deleted:
        by_namespace.setdefault(row["checkpoint_ns"], []).append(row)
    for namespace, rows in by_namespace.items():
        await conn.execute(
            "DELETE FROM checkpoint_writes WHERE thread_id = %s AND checkpoint_ns = %s"
            " AND checkpoint_id = ANY(%s)",
            (thread_id, namespace, [row["checkpoint_id"] for row in rows]),
        )
        freed = {(ch, str(v)) for row in rows for ch, v in (row["versions"] or {}).items()}
        cursor = await conn.execute(_REFERENCED_BLOBS, (thread_id, namespace))
        kept = {(row["channel"], row["version"]) for row in await cursor.fetchall()}
        garbage: dict[str, list[str]] = {}
        for channel, version in freed - kept:
            garbage.setdefault(channel, []).append(version)
        for channel, versions in garbage.items():
            await conn.execute(
                "DELETE FROM checkpoint_blobs WHERE thread_id = %s AND checkpoint_ns = %s"
                " AND channel = %s AND version = ANY(%s)",
                (thread_id, namespace, channel, versions),
            )


async def uses_delta_channels(conn: Conn, thread_id: str) -> bool:
    """Whether any checkpoint of the thread was written by a graph with a DeltaChannel (its
    metadata counters, or a snapshot marker with a blob behind it), as upstream decides."""
    cursor = await conn.execute(PRUNE_DELTA_THREADS_SQL, ([thread_id], [thread_id]))
    return await cursor.fetchone() is not None


async def keep_latest_checkpoints(conn: Conn, thread_id: str) -> None:
    """Keep each namespace's newest checkpoint (with its pending writes and the blobs it
    references); delete the rest. Upstream's own pruning statements, run inside the caller's
    transaction, which must be REPEATABLE READ (`KEEP_LATEST_ISOLATION`) so that what a run
    saves meanwhile is neither seen nor deleted."""
    cursor = conn.cursor()
    await _aexecute(cursor, _without_isolation(_keep_latest(thread_id)))


KEEP_LATEST_ISOLATION = PRUNE_SNAPSHOT_SQL
"""The first statement of a transaction that calls `keep_latest_checkpoints`."""


def _without_isolation(statements: _Statements) -> _Statements:
    # Upstream opens its own transaction with this statement; ours already has, and took locks.
    rows: list[Any] = []
    try:
        sql, params, fetch = next(statements)
        while True:
            if sql == PRUNE_SNAPSHOT_SQL:
                sql, params, fetch = statements.send([])
                continue
            rows = yield sql, params, fetch
            sql, params, fetch = statements.send(rows)
    except StopIteration:
        return
