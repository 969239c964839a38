"""Threads in SQLite: our row per thread, plus deleting and copying its checkpoints, which live
in the checkpointer's tables of the same file."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from agent_runtime.encoding import dumps_text, loads
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.lifecycle import check_transition, read_only_error
from agent_runtime.schema import Json, OnConflict, Thread
from agent_runtime.storage.filters import auth_containments
from agent_runtime.storage.records import (
    NULLABLE_SORT_KEYS,
    NewThread,
    ThreadBrief,
    ThreadPatch,
    ThreadQuery,
)
from agent_runtime.storage.sqlite.checkpoint_tables import (
    copy_thread_checkpoints,
    delete_thread_checkpoints,
)
from agent_runtime.storage.sqlite.containment import containment_sql
from agent_runtime.storage.sqlite.database import SqliteDatabase, fetch_row
from agent_runtime.storage.sqlite.values import stored_json
from agent_runtime.usage import loaded_usage

# A thread as the API shows it: its row and its latest values, which live apart (schema V3).
_THREADS = (
    'SELECT threads.*, thread_values."values" AS "values" FROM threads'
    " LEFT JOIN thread_values ON thread_values.thread_id = threads.thread_id"
)


class SqliteThreads:
    _db: SqliteDatabase
    _now: Callable[[], datetime]

    async def create_thread(self, new: NewThread, *, if_exists: OnConflict) -> Thread:
        thread_id, ttl = new.thread_id, new.ttl
        now = self._now()
        async with self._db.transaction() as conn:
            existing = await _select(conn, thread_id)
            if existing is not None:
                if if_exists == "do_nothing":
                    return _thread(existing)
                raise ConflictError(
                    f'Thread "{thread_id}" already exists; pass if_exists="do_nothing" to get '
                    "the existing one",
                    code="thread_exists",
                )
            stamp = now.isoformat()
            await conn.execute(
                "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at,"
                " metadata, ttl, expires_at, name, tags, visible)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    thread_id,
                    stamp,
                    stamp,
                    stamp,
                    dumps_text(new.metadata),
                    None if ttl is None else dumps_text(ttl),
                    _expires_at(now, ttl),
                    new.name,
                    dumps_text(_unique(new.tags)),
                    int(new.visible),
                ),
            )
            row = await _select(conn, thread_id)
        return _thread(row)

    async def get_thread(self, thread_id: str, *, values: bool = True) -> Thread:
        select = _THREADS if values else 'SELECT threads.*, NULL AS "values" FROM threads'
        row = await self._db.fetch_one(f"{select} WHERE threads.thread_id = ?", (thread_id,))
        if row is None:
            raise thread_not_found(thread_id)
        return _thread(row)

    async def update_thread(self, thread_id: str, patch: ThreadPatch) -> Thread:
        now = self._now()
        async with self._db.transaction() as conn:
            row = await _select(conn, thread_id)
            if row is None:
                raise thread_not_found(thread_id)
            lifecycle = row["lifecycle"]
            if patch.lifecycle is not None:
                check_transition(thread_id, lifecycle, patch.lifecycle)
                lifecycle = patch.lifecycle
            changes = (patch.metadata, patch.ttl, patch.name, patch.tags, patch.visible)
            if lifecycle != "open" and any(change is not None for change in changes):
                raise read_only_error(thread_id, lifecycle, "be changed")
            merged = loads(row["metadata"])
            merged.update(patch.metadata or {})
            ttl_text = row["ttl"] if patch.ttl is None else dumps_text(patch.ttl)
            await conn.execute(
                "UPDATE threads SET metadata = ?, ttl = ?, expires_at = ?, updated_at = ?,"
                " lifecycle = ?, name = ?, tags = ?, visible = ? WHERE thread_id = ?",
                (
                    dumps_text(merged),
                    ttl_text,
                    _expires_at(now, None if ttl_text is None else loads(ttl_text)),
                    now.isoformat(),
                    lifecycle,
                    row["name"] if patch.name is None else patch.name,
                    row["tags"] if patch.tags is None else dumps_text(_unique(patch.tags)),
                    row["visible"] if patch.visible is None else int(patch.visible),
                    thread_id,
                ),
            )
            row = await _select(conn, thread_id)
        return _thread(row)

    async def delete_thread(self, thread_id: str) -> None:
        async with self._db.transaction() as conn:
            row = await _select(conn, thread_id)
            if row is None:
                raise thread_not_found(thread_id)
            if row["lifecycle"] == "locked":
                raise read_only_error(thread_id, "locked", "be deleted")
            await delete_thread_rows(conn, [thread_id])

    async def thread_brief(self, thread_id: str) -> ThreadBrief:
        row = await self._db.fetch_one(
            "SELECT message_count, metadata FROM threads WHERE thread_id = ?", (thread_id,)
        )
        return ThreadBrief(0, {}) if row is None else ThreadBrief(int(row[0]), loads(row[1]))

    async def search_threads(self, query: ThreadQuery) -> list[Thread]:
        where, params = _where(query)
        order = "ASC" if query.sort_order == "asc" else "DESC"
        column = f"threads.{query.sort_by}"
        # Threads with no figure yet (no cost, no run) sort last either way. Only where there can
        # be none: that key first would keep the index of the column out of the plan.
        nulls = f"{column} IS NULL, " if query.sort_by in NULLABLE_SORT_KEYS else ""
        sort = f"{nulls}{column} {order}, threads.thread_id {order}"
        pages = [query.limit, query.offset]
        drive = await self._driving_key(query)
        if drive is not None:
            # From the threads holding one key of the filter (`thread_metadata`), not from all.
            if query.sort_by == "created_at":
                # Its index has them newest first: as many rows read as returned when the
                # other filters pass.
                sort = f"drive.created_at {order}, drive.thread_id {order}"
            rows = await self._db.fetch_all(
                'SELECT threads.*, thread_values."values" AS "values" FROM thread_metadata AS'
                " drive CROSS JOIN threads ON threads.thread_id = drive.thread_id LEFT JOIN"
                " thread_values ON thread_values.thread_id = threads.thread_id"
                f" {where} AND drive.key = ? AND drive.kind = ? AND drive.value IS ?"
                f" AND drive.visible = ? ORDER BY {sort} LIMIT ? OFFSET ?",
                [*params, *drive, int(query.visible), *pages],
            )
        else:
            rows = await self._db.fetch_all(
                f"{_THREADS} {where} ORDER BY {sort} LIMIT ? OFFSET ?", [*params, *pages]
            )
        return [_thread(row) for row in rows]

    async def _driving_key(self, query: ThreadQuery) -> _Key | None:
        """The key of the filter to read threads from, if any: the one fewest threads hold.

        Sorted by creation, any key beats reading every thread. Sorted otherwise, the threads
        holding the key must all be read and sorted, which beats reading every thread in the
        sort's order only when they are few (under `_PROBE_LIMIT`)."""
        # Given ids, the threads are read by id: as many rows as ids.
        keys = _indexed_keys(query) if query.ids is None else []
        if not keys or (len(keys) == 1 and query.sort_by == "created_at"):
            return keys[0] if keys else None
        probe = (
            "(SELECT count(*) FROM (SELECT 1 FROM thread_metadata WHERE key = ? AND kind = ?"
            f" AND value IS ? AND visible = ? LIMIT {_PROBE_LIMIT}))"
        )
        row = await self._db.fetch_one(
            "SELECT " + ", ".join(probe for _ in keys),
            [part for key in keys for part in (*key, int(query.visible))],
        )
        counts = list(row)
        fewest = min(counts)
        if query.sort_by != "created_at" and fewest >= _PROBE_LIMIT:
            return None
        return keys[counts.index(fewest)]

    async def count_threads(self, query: ThreadQuery) -> int:
        where, params = _where(query)
        joined = "LEFT JOIN thread_values USING (thread_id)" if query.values or query.text else ""
        row = await self._db.fetch_one(f"SELECT COUNT(*) FROM threads {joined} {where}", params)
        return int(row[0])

    async def copy_thread(self, thread_id: str, new_thread_id: str) -> Thread:
        stamp = self._now().isoformat()
        async with self._db.transaction() as conn:
            if await _select(conn, thread_id) is None:
                raise thread_not_found(thread_id)
            # A copy is a new thread at rest: it is never busy, whatever the source is doing.
            await conn.execute(
                "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at,"
                " metadata, status, interrupts, config, ttl, expires_at, name, tags,"
                " visible) SELECT ?, ?, ?, ?, metadata,"
                " CASE status WHEN 'busy' THEN 'idle' ELSE status END,"
                " interrupts, config, ttl, expires_at, name, tags, visible"
                " FROM threads WHERE thread_id = ?",
                (new_thread_id, stamp, stamp, stamp, thread_id),
            )
            await conn.execute(
                'INSERT INTO thread_values (thread_id, "values")'
                ' SELECT ?, "values" FROM thread_values WHERE thread_id = ?',
                (new_thread_id, thread_id),
            )
            await copy_thread_checkpoints(conn, thread_id, new_thread_id)
            row = await _select(conn, new_thread_id)
        return _thread(row)


def thread_not_found(thread_id: str) -> NotFoundError:
    return NotFoundError(f'Thread "{thread_id}" not found', code="thread_not_found")


async def delete_thread_rows(conn: aiosqlite.Connection, thread_ids: list[str]) -> int:
    """Delete threads and their checkpoints inside the caller's transaction; returns how many."""
    deleted = 0
    for thread_id in thread_ids:
        await conn.execute("DELETE FROM thread_values WHERE thread_id = ?", (thread_id,))
        cursor = await conn.execute("DELETE FROM threads WHERE thread_id = ?", (thread_id,))
        deleted += cursor.rowcount
    await delete_thread_checkpoints(conn, thread_ids)
    return deleted


async def _select(conn: aiosqlite.Connection, thread_id: str) -> Any:
    return await fetch_row(conn, f"{_THREADS} WHERE threads.thread_id = ?", (thread_id,))


def _expires_at(now: datetime, ttl: Json | None) -> str | None:
    if not ttl or ttl.get("ttl") is None:
        return None
    return (now + timedelta(minutes=float(ttl["ttl"]))).isoformat()


_Key = tuple[str, str, Any]
"""A row of `thread_metadata` to look up: the key, the JSON kind of its value, its SQL value."""
_PROBE_LIMIT = 1000
"""How many threads holding a key are counted, at most, to choose how to search."""


def _indexed_keys(query: ThreadQuery) -> list[_Key]:
    """The keys of the metadata filter, and of the authorization filter, that `thread_metadata`
    can find: those whose wanted value is a scalar (any thread holding an object or a list
    under a key holds no row for it)."""
    keys: list[_Key] = []
    for expected in (query.metadata or {}, *auth_containments(query.auth)):
        for key, value in expected.items():
            if value is None:
                keys.append((str(key), "null", None))
            elif isinstance(value, bool):
                keys.append((str(key), "true" if value else "false", int(value)))
            elif isinstance(value, int | float):
                keys.append((str(key), "number", value))
            elif isinstance(value, str):
                keys.append((str(key), "text", value))
    return keys


def _where(query: ThreadQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.ids is not None:
        clauses.append(f"threads.thread_id IN ({', '.join('?' for _ in query.ids)})")
        params.extend(query.ids)
    if query.status is not None:
        clauses.append("threads.status = ?")
        params.append(query.status)
    clauses.append("threads.visible = ?")
    params.append(int(query.visible))
    if query.lifecycle is not None:
        clauses.append("threads.lifecycle = ?")
        params.append(query.lifecycle)
    if query.name:
        clauses.append("instr(lower(coalesce(name, '')), lower(?)) > 0")
        params.append(query.name)
    if query.text:
        # Only when asked: it reads each thread's latest values, where the name alone does not.
        clauses.append(
            "(instr(lower(coalesce(name, '')), lower(?)) > 0 OR instr(lower(coalesce("
            """json_extract(values_json(thread_values."values"), '$.messages[0].content'), '')),"""
            " lower(?)) > 0)"
        )
        params.extend([query.text, query.text])
    if query.tags:
        sql, extra = containment_sql("tags", list(query.tags))
        clauses.append(sql)
        params.extend(extra)
    if query.values:
        # Stored values may be compressed (`storage.sqlite.values`): contained in Python.
        clauses.append('values_contain(thread_values."values", ?)')
        params.append(dumps_text(query.values))
    for expected in (query.metadata, *auth_containments(query.auth)):
        if expected:
            sql, extra = containment_sql("threads.metadata", expected)
            clauses.append(sql)
            params.extend(extra)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _thread(row: Any) -> Thread:
    values = stored_json(row["values"])
    ttl = row["ttl"]
    return {
        "thread_id": row["thread_id"],
        "created_at": datetime.fromisoformat(row["created_at"]),
        "updated_at": datetime.fromisoformat(row["updated_at"]),
        "metadata": loads(row["metadata"]),
        "status": row["status"],
        "values": None if values is None else loads(values),
        "interrupts": loads(row["interrupts"]),
        "config": loads(row["config"]),
        "ttl": None if ttl is None else loads(ttl),
        "lifecycle": row["lifecycle"],
        "visible": bool(row["visible"]),
        "name": row["name"],
        "tags": loads(row["tags"]),
        "usage": None if row["usage"] is None else loaded_usage(loads(row["usage"])),
        "run_count": row["run_count"],
        "message_count": row["message_count"],
        "first_run_at": _moment(row["first_run_at"]),
        "last_run_at": _moment(row["last_run_at"]),
    }


def _moment(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _unique(tags: Sequence[str]) -> list[str]:
    return list(dict.fromkeys(tags))
