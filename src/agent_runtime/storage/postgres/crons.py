"""Crons in Postgres: their rows, and the claim that makes each fire happen once. A claim locks
the due rows it takes (`FOR UPDATE SKIP LOCKED`), so processes claiming at once split them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

import psycopg
from psycopg.rows import DictRow

from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.schema import Cron
from agent_runtime.storage.cron_records import CronPatch, CronQuery, NewCron
from agent_runtime.storage.filters import auth_containments
from agent_runtime.storage.postgres.database import PostgresDatabase, jsonb
from agent_runtime.storage.postgres.threads import thread_not_found

# Due: enabled, its time come, not past its end, and not held by a live claim.
_DUE = (
    "enabled AND next_run_date IS NOT NULL AND next_run_date <= %s"
    " AND (end_time IS NULL OR next_run_date <= end_time)"
    " AND (claimed_until IS NULL OR claimed_until <= %s)"
)


class PostgresCrons:
    _db: PostgresDatabase
    _now: Callable[[], datetime]

    async def create_cron(self, new: NewCron) -> Cron:
        now = self._now()
        async with self._db.transaction() as conn:
            if new.thread_id is not None:
                cursor = await conn.execute(
                    "SELECT 1 FROM threads WHERE thread_id = %s FOR SHARE", (new.thread_id,)
                )
                if await cursor.fetchone() is None:
                    raise thread_not_found(new.thread_id)
            try:
                cursor = await conn.execute(
                    "INSERT INTO crons (cron_id, assistant_id, thread_id, user_id, schedule,"
                    " timezone, end_time, payload, metadata, on_run_completed, enabled,"
                    " next_run_date, created_at, updated_at)"
                    " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                    " RETURNING *",
                    (
                        new.cron_id,
                        new.assistant_id,
                        new.thread_id,
                        new.user_id,
                        new.schedule,
                        new.timezone,
                        new.end_time,
                        jsonb(new.payload),
                        jsonb(new.metadata),
                        new.on_run_completed,
                        new.enabled,
                        new.next_run_date,
                        now,
                        now,
                    ),
                )
            except psycopg.errors.UniqueViolation:
                raise ConflictError(
                    f'Cron "{new.cron_id}" already exists', code="cron_exists"
                ) from None
            row = await cursor.fetchone()
        assert row is not None
        return _cron(row)

    async def get_cron(self, cron_id: str) -> Cron:
        row = await self._db.fetch_one("SELECT * FROM crons WHERE cron_id = %s", (cron_id,))
        if row is None:
            raise cron_not_found(cron_id)
        return _cron(row)

    async def update_cron(self, cron_id: str, patch: CronPatch) -> Cron:
        sets, params = _patch_sets(patch)
        sets.append("updated_at = %s")
        params.append(self._now())
        rows = await self._db.write_returning(
            f"UPDATE crons SET {', '.join(sets)} WHERE cron_id = %s RETURNING *",
            [*params, cron_id],
        )
        if not rows:
            raise cron_not_found(cron_id)
        return _cron(rows[0])

    async def delete_cron(self, cron_id: str) -> None:
        rows = await self._db.write_returning(
            "DELETE FROM crons WHERE cron_id = %s RETURNING cron_id", (cron_id,)
        )
        if not rows:
            raise cron_not_found(cron_id)

    async def search_crons(self, query: CronQuery) -> list[Cron]:
        where, params = _where(query)
        order = "ASC" if query.sort_order == "asc" else "DESC"
        rows = await self._db.fetch_all(
            f"SELECT * FROM crons {where} ORDER BY {query.sort_by} {order} NULLS LAST,"
            f" cron_id {order} LIMIT %s OFFSET %s",
            [*params, query.limit, query.offset],
        )
        return [_cron(row) for row in rows]

    async def count_crons(self, query: CronQuery) -> int:
        where, params = _where(query)
        row = await self._db.fetch_one(f"SELECT count(*) AS n FROM crons {where}", params)
        return 0 if row is None else int(row["n"])

    async def claim_due_crons(self, owner: str, *, lease: timedelta, limit: int) -> list[Cron]:
        now = self._now()
        # The outer WHERE repeats the test: a row another claim updated while this one waited
        # is read again, and no longer due.
        rows = await self._db.write_returning(
            "UPDATE crons SET claimed_by = %s, claimed_until = %s"
            f" WHERE {_DUE} AND cron_id IN (SELECT cron_id FROM crons WHERE {_DUE}"
            " ORDER BY next_run_date, cron_id LIMIT %s FOR UPDATE SKIP LOCKED)"
            " RETURNING *",
            (owner, now + lease, now, now, now, now, limit),
        )
        return sorted((_cron(row) for row in rows), key=_due_order)

    async def release_cron(
        self, cron_id: str, owner: str, *, fired: datetime, next_run_date: datetime | None
    ) -> None:
        await self._db.write_returning(
            "UPDATE crons SET claimed_by = NULL, claimed_until = NULL, next_run_date ="
            " CASE WHEN next_run_date = %s THEN %s ELSE next_run_date END"
            " WHERE cron_id = %s AND claimed_by = %s RETURNING cron_id",
            (fired, next_run_date, cron_id, owner),
        )

    async def next_cron_time(self) -> datetime | None:
        row = await self._db.fetch_one(
            "SELECT min(GREATEST(next_run_date, claimed_until)) AS t FROM crons WHERE enabled"
            " AND next_run_date IS NOT NULL AND (end_time IS NULL OR next_run_date <= end_time)"
        )
        return None if row is None else row["t"]


def cron_not_found(cron_id: str) -> NotFoundError:
    return NotFoundError(f'Cron "{cron_id}" not found', code="cron_not_found")


def _patch_sets(patch: CronPatch) -> tuple[list[str], list[Any]]:
    sets: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("schedule", patch.schedule),
        ("timezone", patch.timezone),
        ("on_run_completed", patch.on_run_completed),
        ("enabled", patch.enabled),
    ):
        if value is not None:
            sets.append(f"{column} = %s")
            params.append(value)
    for column, json_value in (("payload", patch.payload), ("metadata", patch.metadata)):
        if json_value is not None:
            sets.append(f"{column} = %s")
            params.append(jsonb(json_value))
    if patch.end_time is not None or patch.clear_end_time:
        sets.append("end_time = %s")
        params.append(patch.end_time)
    if patch.reschedule:
        sets.append("next_run_date = %s")
        params.append(patch.next_run_date)
    return sets, params


def _where(query: CronQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    for column, value in (
        ("assistant_id", query.assistant_id),
        ("thread_id", query.thread_id),
        ("enabled", query.enabled),
    ):
        if value is not None:
            clauses.append(f"{column} = %s")
            params.append(value)
    for condition in (query.metadata, *auth_containments(query.auth)):
        if condition:
            clauses.append("metadata @> %s")
            params.append(jsonb(condition))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _due_order(cron: Cron) -> tuple[datetime, str]:
    assert cron["next_run_date"] is not None
    return cron["next_run_date"], cron["cron_id"]


def _cron(row: DictRow) -> Cron:
    return {
        "cron_id": row["cron_id"],
        "assistant_id": row["assistant_id"],
        "thread_id": row["thread_id"],
        "on_run_completed": row["on_run_completed"],
        "end_time": row["end_time"],
        "schedule": row["schedule"],
        "timezone": row["timezone"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "payload": row["payload"],
        "user_id": row["user_id"],
        "next_run_date": row["next_run_date"],
        "metadata": row["metadata"],
        "enabled": row["enabled"],
    }
