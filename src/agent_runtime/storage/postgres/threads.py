"""Threads in Postgres: our row per thread and its latest values, plus deleting and copying its
checkpoints (in LangGraph's tables of the same database)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow

from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.lifecycle import check_transition, read_only_error
from agent_runtime.schema import Json, OnConflict, Thread
from agent_runtime.storage.filters import auth_containments
from agent_runtime.storage.postgres.checkpoint_tables import (
    copy_thread_checkpoints,
    delete_thread_checkpoints,
    list_checkpoint_summaries,
)
from agent_runtime.storage.postgres.database import Conn, PostgresDatabase, jsonb
from agent_runtime.storage.records import (
    NULLABLE_SORT_KEYS,
    CheckpointSummary,
    NewThread,
    ThreadBrief,
    ThreadPatch,
    ThreadQuery,
)
from agent_runtime.usage import loaded_usage

_THREADS = (
    'SELECT threads.*, thread_values."values" AS "values" FROM threads'
    " LEFT JOIN thread_values ON thread_values.thread_id = threads.thread_id"
)
_SORTABLE = frozenset(
    {"thread_id", "status", "created_at", "updated_at", "state_updated_at", "total_tokens",
     "cost_usd", "run_count", "last_run_at"}
)  # fmt: skip


class PostgresThreads:
    _db: PostgresDatabase
    _now: Callable[[], datetime]

    async def create_thread(self, new: NewThread, *, if_exists: OnConflict) -> Thread:
        now = self._now()
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at,"
                " metadata, ttl, expires_at, name, tags, visible)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (thread_id) DO NOTHING RETURNING thread_id",
                (
                    new.thread_id,
                    now,
                    now,
                    now,
                    jsonb(new.metadata),
                    None if new.ttl is None else jsonb(new.ttl),
                    _expires_at(now, new.ttl),
                    new.name,
                    jsonb(_unique(new.tags)),
                    new.visible,
                ),
            )
            if await cursor.fetchone() is None and if_exists != "do_nothing":
                raise ConflictError(
                    f'Thread "{new.thread_id}" already exists; pass if_exists="do_nothing" to '
                    "get the existing one",
                    code="thread_exists",
                )
            row = await select_thread(conn, new.thread_id)
        return _thread(row)

    async def get_thread(self, thread_id: str, *, values: bool = True) -> Thread:
        select = _THREADS if values else 'SELECT threads.*, NULL::json AS "values" FROM threads'
        row = await self._db.fetch_one(f"{select} WHERE threads.thread_id = %s", (thread_id,))
        if row is None:
            raise thread_not_found(thread_id)
        return _thread(row)

    async def update_thread(self, thread_id: str, patch: ThreadPatch) -> Thread:
        now = self._now()
        async with self._db.transaction() as conn:
            row = await lock_thread(conn, thread_id)
            if row is None:
                raise thread_not_found(thread_id)
            lifecycle = row["lifecycle"]
            if patch.lifecycle is not None:
                check_transition(thread_id, lifecycle, patch.lifecycle)
                lifecycle = patch.lifecycle
            changes = (patch.metadata, patch.ttl, patch.name, patch.tags, patch.visible)
            if lifecycle != "open" and any(change is not None for change in changes):
                raise read_only_error(thread_id, lifecycle, "be changed")
            ttl = row["ttl"] if patch.ttl is None else patch.ttl
            await conn.execute(
                "UPDATE threads SET metadata = metadata || %s, ttl = %s, expires_at = %s,"
                " updated_at = %s, lifecycle = %s, name = %s, tags = %s, visible = %s"
                " WHERE thread_id = %s",
                (
                    jsonb(patch.metadata or {}),
                    None if ttl is None else jsonb(ttl),
                    _expires_at(now, ttl),
                    now,
                    lifecycle,
                    row["name"] if patch.name is None else patch.name,
                    jsonb(row["tags"] if patch.tags is None else _unique(patch.tags)),
                    row["visible"] if patch.visible is None else patch.visible,
                    thread_id,
                ),
            )
            found = await select_thread(conn, thread_id)
        return _thread(found)

    async def delete_thread(self, thread_id: str) -> None:
        async with self._db.transaction() as conn:
            row = await lock_thread(conn, thread_id)
            if row is None:
                raise thread_not_found(thread_id)
            if row["lifecycle"] == "locked":
                raise read_only_error(thread_id, "locked", "be deleted")
            await delete_thread_rows(conn, [thread_id])

    async def thread_brief(self, thread_id: str) -> ThreadBrief:
        row = await self._db.fetch_one(
            "SELECT message_count, metadata FROM threads WHERE thread_id = %s", (thread_id,)
        )
        if row is None:
            return ThreadBrief(0, {})
        return ThreadBrief(int(row["message_count"]), row["metadata"])

    async def search_threads(self, query: ThreadQuery) -> list[Thread]:
        where, params = _where(query)
        column = _sort_column(query.sort_by)
        order = "ASC" if query.sort_order == "asc" else "DESC"
        # Threads with no figure yet (no cost, no run) sort last either way. Only where there can
        # be none: that key first would keep the index of the column out of the plan.
        nulls = f"threads.{column} IS NULL, " if query.sort_by in NULLABLE_SORT_KEYS else ""
        rows = await self._db.fetch_all(
            f"{_THREADS} {where} ORDER BY {nulls}threads.{column} {order},"
            f" threads.thread_id {order} LIMIT %s OFFSET %s",
            [*params, query.limit, query.offset],
        )
        return [_thread(row) for row in rows]

    async def count_threads(self, query: ThreadQuery) -> int:
        where, params = _where(query)
        joined = "LEFT JOIN thread_values USING (thread_id)" if query.values or query.text else ""
        row = await self._db.fetch_one(
            f"SELECT count(*) AS n FROM threads {joined} {where}", params
        )
        return 0 if row is None else int(row["n"])

    async def copy_thread(self, thread_id: str, new_thread_id: str) -> Thread:
        now = self._now()
        async with self._db.transaction() as conn:
            if await lock_thread(conn, thread_id) is None:
                raise thread_not_found(thread_id)
            # A copy is a new thread at rest: it is never busy, whatever the source is doing.
            await conn.execute(
                "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at,"
                " metadata, status, interrupts, config, ttl, expires_at, name, tags,"
                " visible) SELECT %s, %s, %s, %s, metadata,"
                " CASE status WHEN 'busy' THEN 'idle' ELSE status END,"
                " interrupts, config, ttl, expires_at, name, tags, visible"
                " FROM threads WHERE thread_id = %s",
                (new_thread_id, now, now, now, thread_id),
            )
            await conn.execute(
                'INSERT INTO thread_values (thread_id, "values")'
                ' SELECT %s, "values" FROM thread_values WHERE thread_id = %s',
                (new_thread_id, thread_id),
            )
            await copy_thread_checkpoints(conn, thread_id, new_thread_id)
            row = await select_thread(conn, new_thread_id)
        return _thread(row)

    async def list_checkpoint_summaries(self, thread_id: str) -> list[CheckpointSummary]:
        return await list_checkpoint_summaries(self._db, thread_id)


def thread_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f'Thread "{thread_id}" not found', code="thread_not_found")


async def lock_thread(conn: Conn, thread_id: str) -> DictRow | None:
    """The thread's row, locked until the transaction ends: every change to a thread, its runs
    included, takes this lock first, so processes change one thread one at a time."""
    cursor = await conn.execute(
        "SELECT * FROM threads WHERE thread_id = %s FOR UPDATE", (thread_id,)
    )
    return await cursor.fetchone()


async def select_thread(conn: Conn, thread_id: str) -> DictRow:
    cursor = await conn.execute(f"{_THREADS} WHERE threads.thread_id = %s", (thread_id,))
    row = await cursor.fetchone()
    assert row is not None
    return row


async def delete_thread_rows(conn: Conn, thread_ids: list[str]) -> int:
    """Delete threads (their runs, values and tool calls follow) and their checkpoints, inside
    the caller's transaction; returns how many threads there were."""
    if not thread_ids:
        return 0
    cursor = await conn.execute("DELETE FROM threads WHERE thread_id = ANY(%s)", (thread_ids,))
    await delete_thread_checkpoints(conn, thread_ids)
    return cursor.rowcount


def _expires_at(now: datetime, ttl: Json | None) -> datetime | None:
    if not ttl or ttl.get("ttl") is None:
        return None
    return now + timedelta(minutes=float(ttl["ttl"]))


def _sort_column(sort_by: str) -> str:
    # The query's Literal type bounds it already; this keeps anything else out of the SQL.
    if sort_by not in _SORTABLE:
        raise ValueError(f"cannot sort threads by {sort_by!r}")
    return sort_by


def _where(query: ThreadQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = ["visible = %s"]
    params: list[Any] = [query.visible]
    if query.ids is not None:
        clauses.append("threads.thread_id = ANY(%s)")
        params.append(list(query.ids))
    if query.status is not None:
        clauses.append("status = %s")
        params.append(query.status)
    if query.lifecycle is not None:
        clauses.append("lifecycle = %s")
        params.append(query.lifecycle)
    if query.name:
        clauses.append("strpos(lower(coalesce(name, '')), lower(%s)) > 0")
        params.append(query.name)
    if query.tags:
        clauses.append("tags @> %s")
        params.append(jsonb(list(query.tags)))
    if query.metadata:
        clauses.append("threads.metadata @> %s")
        params.append(jsonb(query.metadata))
    if query.values:
        clauses.append('thread_values."values"::jsonb @> %s')
        params.append(jsonb(query.values))
    if query.text:
        # The name, or the first message of the latest state: what a thread list shows.
        clauses.append(
            "(strpos(lower(coalesce(name, '')), lower(%s)) > 0 OR strpos(lower(coalesce("
            "thread_values.\"values\" -> 'messages' -> 0 ->> 'content', '')), lower(%s)) > 0)"
        )
        params += [query.text, query.text]
    for expected in auth_containments(query.auth):
        clauses.append("threads.metadata @> %s")
        params.append(jsonb(expected))
    return "WHERE " + " AND ".join(clauses), params


def _thread(row: DictRow) -> Thread:
    return {
        "thread_id": row["thread_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "metadata": row["metadata"],
        "status": row["status"],
        "values": row["values"],
        "interrupts": row["interrupts"],
        "config": row["config"],
        "ttl": row["ttl"],
        "lifecycle": row["lifecycle"],
        "visible": row["visible"],
        "name": row["name"],
        "tags": row["tags"],
        "usage": loaded_usage(row["usage"]),
        "run_count": row["run_count"],
        "message_count": row["message_count"],
        "first_run_at": row["first_run_at"],
        "last_run_at": row["last_run_at"],
    }


def _unique(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tags))
