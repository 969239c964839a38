"""Crons in SQLite: their rows, and the claim that makes each fire happen once. The one writer
connection serialises every claim, so a claim is one UPDATE ... RETURNING."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from agent_runtime.encoding import dumps_text, loads
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.schema import Cron
from agent_runtime.storage.cron_records import CronPatch, CronQuery, NewCron
from agent_runtime.storage.filters import auth_containments
from agent_runtime.storage.sqlite.containment import containment_sql
from agent_runtime.storage.sqlite.database import SqliteDatabase
from agent_runtime.storage.sqlite.threads import thread_not_found

# Due: enabled, its time come, not past its end, and not held by a live claim.
_DUE = (
    "enabled = 1 AND next_run_date IS NOT NULL AND next_run_date <= ?"
    " AND (end_time IS NULL OR next_run_date <= end_time)"
    " AND (claimed_until IS NULL OR claimed_until <= ?)"
)


class SqliteCrons:
    _db: SqliteDatabase
    _now: Callable[[], datetime]

    async def create_cron(self, new: NewCron) -> Cron:
        stamp = _stamp(self._now())
        async with self._db.transaction() as conn:
            if new.thread_id is not None:
                async with conn.execute(
                    "SELECT 1 FROM threads WHERE thread_id = ?", (new.thread_id,)
                ) as cursor:
                    if await cursor.fetchone() is None:
                        raise thread_not_found(new.thread_id)
            try:
                async with conn.execute(
                    "INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule,"
                    " timezone, end_time, payload, metadata, on_run_completed, enabled,"
                    " next_run_date, created_at, updated_at)"
                    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
                    (
                        new.cron_id,
                        new.assistant_id,
                        new.thread_id,
                        new.user_id,
                        new.schedule,
                        new.timezone,
                        _opt_stamp(new.end_time),
                        dumps_text(new.payload),
                        dumps_text(new.metadata),
                        new.on_run_completed,
                        int(new.enabled),
                        _opt_stamp(new.next_run_date),
                        stamp,
                        stamp,
                    ),
                ) as cursor:
                    row = await cursor.fetchone()
            except sqlite3.IntegrityError:
                raise ConflictError(
                    f'Cron "{new.cron_id}" already exists', code="cron_exists"
                ) from None
        return _cron(row)

    async def get_cron(self, cron_id: str) -> Cron:
        row = await self._db.fetch_one("SELECT * FROM crons WHERE cron_id = ?", (cron_id,))
        if row is None:
            raise cron_not_found(cron_id)
        return _cron(row)

    async def update_cron(self, cron_id: str, patch: CronPatch) -> Cron:
        sets, params = _patch_sets(patch)
        sets.append("updated_at = ?")
        params.append(_stamp(self._now()))
        rows = await self._db.write_returning(
            f"UPDATE crons SET {', '.join(sets)} WHERE cron_id = ? RETURNING *",
            [*params, cron_id],
        )
        if not rows:
            raise cron_not_found(cron_id)
        return _cron(rows[0])

    async def delete_cron(self, cron_id: str) -> None:
        rows = await self._db.write_returning(
            "DELETE FROM crons WHERE cron_id = ? RETURNING cron_id", (cron_id,)
        )
        if not rows:
            raise cron_not_found(cron_id)

    async def search_crons(self, query: CronQuery) -> list[Cron]:
        where, params = _where(query)
        order = "ASC" if query.sort_order == "asc" else "DESC"
        rows = await self._db.fetch_all(
            f"SELECT * FROM crons {where} ORDER BY {query.sort_by} {order} NULLS LAST,"
            f" cron_id {order} LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        )
        return [_cron(row) for row in rows]

    async def count_crons(self, query: CronQuery) -> int:
        where, params = _where(query)
        row = await self._db.fetch_one(f"SELECT count(*) FROM crons {where}", params)
        return int(row[0])

    async def claim_due_crons(self, owner: str, *, lease: timedelta, limit: int) -> list[Cron]:
        now = self._now()
        rows = await self._db.write_returning(
            "UPDATE crons SET claimed_by = ?, claimed_until = ? WHERE cron_id IN"
            f" (SELECT cron_id FROM crons WHERE {_DUE} ORDER BY next_run_date, cron_id"
            " LIMIT ?) RETURNING *",
            (owner, _stamp(now + lease), _stamp(now), _stamp(now), limit),
        )
        return sorted((_cron(row) for row in rows), key=_due_order)

    async def release_cron(
        self, cron_id: str, owner: str, *, fired: datetime, next_run_date: datetime | None
    ) -> None:
        await self._db.write_returning(
            "UPDATE crons SET claimed_by = NULL, claimed_until = NULL, next_run_date ="
            " CASE WHEN next_run_date = ? THEN ? ELSE next_run_date END"
            " WHERE cron_id = ? AND claimed_by = ? RETURNING cron_id",
            (_stamp(fired), _opt_stamp(next_run_date), cron_id, owner),
        )

    async def next_cron_time(self) -> datetime | None:
        row = await self._db.fetch_one(
            "SELECT min(CASE WHEN claimed_until > next_run_date THEN claimed_until"
            " ELSE next_run_date END) FROM crons WHERE enabled = 1"
            " AND next_run_date IS NOT NULL AND (end_time IS NULL OR next_run_date <= end_time)"
        )
        return None if row is None or row[0] is None else datetime.fromisoformat(row[0])


def cron_not_found(cron_id: str) -> NotFoundError:
    return NotFoundError(f'Cron "{cron_id}" not found', code="cron_not_found")


def _patch_sets(patch: CronPatch) -> tuple[list[str], list[Any]]:
    sets: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("schedule", patch.schedule),
        ("timezone", patch.timezone),
        ("on_run_completed", patch.on_run_completed),
    ):
        if value is not None:
            sets.append(f"{column} = ?")
            params.append(value)
    for column, json_value in (("payload", patch.payload), ("metadata", patch.metadata)):
        if json_value is not None:
            sets.append(f"{column} = ?")
            params.append(dumps_text(json_value))
    if patch.enabled is not None:
        sets.append("enabled = ?")
        params.append(int(patch.enabled))
    if patch.end_time is not None or patch.clear_end_time:
        sets.append("end_time = ?")
        params.append(_opt_stamp(patch.end_time))
    if patch.reschedule:
        sets.append("next_run_date = ?")
        params.append(_opt_stamp(patch.next_run_date))
    return sets, params


def _where(query: CronQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (("assistant_id", query.assistant_id), ("thread_id", query.thread_id)):
        if value is not None:
            clauses.append(f"{column} = ?")
            params.append(value)
    if query.enabled is not None:
        clauses.append("enabled = ?")
        params.append(int(query.enabled))
    for condition in (query.metadata, *auth_containments(query.auth)):
        if condition:
            sql, extra = containment_sql("metadata", condition)
            clauses.append(sql)
            params.extend(extra)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _due_order(cron: Cron) -> tuple[datetime, str]:
    assert cron["next_run_date"] is not None
    return cron["next_run_date"], cron["cron_id"]


def _stamp(moment: datetime) -> str:
    # One width and one zone, so that text order is time order.
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def _opt_stamp(moment: datetime | None) -> str | None:
    return None if moment is None else _stamp(moment)


def _opt_time(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text)


def _cron(row: Any) -> Cron:
    return {
        "cron_id": row["cron_id"],
        "assistant_id": row["assistant_id"],
        "thread_id": row["thread_id"],
        "on_run_completed": row["on_run_completed"],
        "end_time": _opt_time(row["end_time"]),
        "schedule": row["schedule"],
        "timezone": row["timezone"],
        "created_at": datetime.fromisoformat(row["created_at"]),
        "updated_at": datetime.fromisoformat(row["updated_at"]),
        "payload": loads(row["payload"]),
        "user_id": row["user_id"],
        "next_run_date": _opt_time(row["next_run_date"]),
        "metadata": loads(row["metadata"]),
        "enabled": bool(row["enabled"]),
    }
