"""Runs in SQLite: the durable queue behind each thread (at most one run `running` per thread) and
the thread status it implies. Executing runs belongs to `runs/`, not here."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

import aiosqlite

from agent_runtime.encoding import dumps_text, loads
from agent_runtime.errors import (
    NotFoundError,
)
from agent_runtime.schema import CancelAction, Run, RunStatus
from agent_runtime.storage.filters import AuthFilter, auth_containments
from agent_runtime.storage.records import (
    Claim,
    CreatedRun,
    FinishedRun,
    NewRun,
    RunOutcome,
    claimed_from_past,
    finish_guard,
    from_past,
)
from agent_runtime.storage.sqlite.checkpoint_tables import delete_run_checkpoints
from agent_runtime.storage.sqlite.containment import containment_sql
from agent_runtime.storage.sqlite.database import SqliteDatabase, fetch_rows
from agent_runtime.storage.sqlite.run_create import (
    EXPIRES_AT,
    NOT_READ,
    create_run_rows,
    stored_time,
)
from agent_runtime.storage.sqlite.saver import RuntimeSqliteSaver
from agent_runtime.storage.sqlite.threads import thread_not_found
from agent_runtime.storage.sqlite.values import ValuesCompressor
from agent_runtime.usage import add_usage, loaded_usage, stored_usage

# How many step checkpoints (source "loop", top level) the run of the enclosing `runs` row has
# written on its thread: a count above the mark taken at its claim is progress. A first attempt
# writes one of them before any node runs (the input applied), so its mark counts it ahead.
_PROGRESS = (
    "(SELECT count(*) FROM checkpoints WHERE checkpoints.thread_id = runs.thread_id"
    " AND checkpoints.checkpoint_ns = ''"
    " AND json_extract(CAST(checkpoints.metadata AS TEXT), '$.run_id') = runs.run_id"
    " AND json_extract(CAST(checkpoints.metadata AS TEXT), '$.source') = 'loop')"
)

# The mark a claim takes. A first attempt has written nothing yet (its run id is new), so its
# mark is 1 without counting: the count reads every checkpoint of the thread (its metadata is
# not indexed), which on a 300-turn thread cost 2.5 ms of every claim. A retry counts.
_CLAIM_MARK = f"CASE WHEN attempt = 0 THEN 1 ELSE {_PROGRESS} END"

_NEXT_DUE = (
    "SELECT MIN(coalesce(not_before, created_at)) FROM runs"
    " WHERE thread_id = ? AND status = 'pending'"
)
"""When the thread's earliest pending run falls due (`next_due_time`)."""

_IDS_PER_READ = 500
"""Ids bound in one `IN (...)`: well under SQLite's limit on a statement's parameters."""


class SqliteRuns:
    _db: SqliteDatabase
    _now: Callable[[], datetime]
    _saver: RuntimeSqliteSaver | None

    async def create_run(self, new: NewRun, *, claim: Claim | None = None) -> CreatedRun:
        now = self._now()
        saver = self._saver
        # A run claimed now starts by reading the thread's latest checkpoint: read in the same
        # transaction, it costs no trip of its own (`storage.primed`).
        read = None if claim is None or saver is None or from_past(new) else saver.latest_reader
        # One trip to the writer's thread for the whole transaction.
        inserted, active, brief, found = await self._db.write(
            lambda db: create_run_rows(db, new, now, claim, read),
            durable=claim is None or claim.durable,
        )
        if found is not NOT_READ and saver is not None:
            saver.primed.put(new.run_id, new.thread_id, found)
        to_cancel = active if new.multitask_strategy in ("interrupt", "rollback") else []
        run = _run(inserted)
        return CreatedRun(
            run, [_run(r) for r in to_cancel], brief if run["status"] == "running" else None
        )

    async def get_run(self, thread_id: str, run_id: str) -> Run:
        row = await self._db.fetch_one(
            "SELECT * FROM runs WHERE run_id = ? AND thread_id = ?", (run_id, thread_id)
        )
        if row is None:
            raise _not_found_on(thread_id, run_id)
        return _run(row)

    async def find_run(self, run_id: str) -> Run:
        row = await self._db.fetch_one("SELECT * FROM runs WHERE run_id = ?", (run_id,))
        if row is None:
            raise _not_found(run_id)
        return _run(row)

    async def find_runs(self, run_ids: Sequence[str]) -> dict[str, Run]:
        found: dict[str, Run] = {}
        for start in range(0, len(run_ids), _IDS_PER_READ):
            chunk = list(run_ids[start : start + _IDS_PER_READ])
            marks = ", ".join("?" for _ in chunk)
            rows = await self._db.fetch_all(f"SELECT * FROM runs WHERE run_id IN ({marks})", chunk)
            found.update((row["run_id"], _run(row)) for row in rows)
        return found

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None
    ) -> list[Run]:
        if (
            await self._db.fetch_one("SELECT 1 FROM threads WHERE thread_id = ?", (thread_id,))
            is None
        ):
            raise thread_not_found(thread_id)
        clauses, params = ["thread_id = ?"], [thread_id]
        if status is not None:
            clauses.append("status = ?")
            params.append(status)
        rows = await self._db.fetch_all(
            f"SELECT * FROM runs WHERE {' AND '.join(clauses)}"
            " ORDER BY created_at DESC, run_id DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_run(row) for row in rows]

    async def search_runs(
        self,
        *,
        thread_id: str | None,
        statuses: Sequence[RunStatus],
        auth: AuthFilter | None = None,
    ) -> list[Run]:
        if not statuses:
            return []
        clauses = [f"status IN ({', '.join('?' for _ in statuses)})"]
        params: list[Any] = list(statuses)
        if thread_id is not None:
            clauses.append("thread_id = ?")
            params.append(thread_id)
        for expected in auth_containments(auth):
            sql, extra = containment_sql("metadata", expected)
            clauses.append(f"thread_id IN (SELECT thread_id FROM threads WHERE {sql})")
            params.extend(extra)
        rows = await self._db.fetch_all(
            f"SELECT * FROM runs WHERE {' AND '.join(clauses)} ORDER BY created_at, run_id",
            params,
        )
        return [_run(row) for row in rows]

    async def delete_run(self, thread_id: str, run_id: str, *, checkpoints: bool) -> None:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM runs WHERE run_id = ? AND thread_id = ?", (run_id, thread_id)
            )
            if cursor.rowcount == 0:
                raise _not_found_on(thread_id, run_id)
            if checkpoints:
                await delete_run_checkpoints(conn, thread_id, run_id)

    async def delete_run_checkpoints(self, thread_id: str, run_id: str) -> None:
        async with self._db.transaction() as conn:
            await delete_run_checkpoints(conn, thread_id, run_id)

    async def claim_next_run(
        self, thread_id: str, *, owner: str | None = None, lease: timedelta | None = None
    ) -> Run | None:
        now = self._now()
        stamp = stored_time(now)
        expires = None if lease is None else stored_time(now + lease)
        saver = self._saver

        def claim(db: sqlite3.Connection) -> tuple[Any, Any]:
            row = db.execute(
                "UPDATE runs SET status = 'running', attempt = attempt + 1, updated_at = ?,"
                f" owner = ?, lease_expires_at = ?, progress_mark = {_CLAIM_MARK}"
                " WHERE run_id = (SELECT run_id FROM runs WHERE thread_id = ?"
                " AND status = 'pending' AND (not_before IS NULL OR not_before <= ?)"
                " ORDER BY created_at, run_id LIMIT 1)"
                " AND NOT EXISTS (SELECT 1 FROM runs WHERE thread_id = ? AND status = 'running')"
                " RETURNING *",
                (stamp, owner, expires, thread_id, stamp, thread_id),
            ).fetchone()
            if row is None or saver is None:
                return row, NOT_READ
            # The run starts by reading the thread's latest checkpoint: read in this trip, it
            # costs none of its own (`storage.primed`).
            return row, saver.latest_reader(thread_id)(db)

        # A claim lost to a power cut leaves the run `pending`, as recovery would.
        row, found = await self._db.write(claim, durable=False)
        if row is None:
            return None
        run = _run(row)
        if found is not NOT_READ and saver is not None and not claimed_from_past(run):
            saver.primed.put(run["run_id"], thread_id, found)
        return run

    async def ready_threads(self, limit: int) -> list[str]:
        # Starts from the pending runs (an index on status), so finished runs, however many,
        # cost nothing; the running check is one probe of (thread_id, status) per candidate.
        rows = await self._db.fetch_all(
            "SELECT thread_id, MIN(created_at) AS oldest FROM runs AS queued"
            " WHERE status = 'pending' AND (not_before IS NULL OR not_before <= ?)"
            " AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.thread_id = queued.thread_id"
            " AND runs.status = 'running')"
            " GROUP BY thread_id ORDER BY oldest, thread_id LIMIT ?",
            (stored_time(self._now()), limit),
        )
        return [row["thread_id"] for row in rows]

    async def renew_leases(self, owner: str, run_ids: Sequence[str], lease: timedelta) -> list[str]:
        if not run_ids:
            return []
        marks = ", ".join("?" for _ in run_ids)
        rows = await self._db.write_returning(
            "UPDATE runs SET lease_expires_at = ? WHERE owner = ? AND status = 'running'"
            f" AND run_id IN ({marks}) RETURNING run_id",
            (stored_time(self._now() + lease), owner, *run_ids),
        )
        return sorted(row["run_id"] for row in rows)

    async def reap_expired_leases(self, *, sparing: str | None = None) -> list[str]:
        stamp = stored_time(self._now())
        async with self._db.transaction() as conn:
            # One lapsed lease means its owner stopped renewing (the heartbeat renews all of
            # them at once): the owner is presumed dead and every run it held goes back.
            dead = await _all(
                conn,
                "SELECT DISTINCT owner FROM runs WHERE status = 'running'"
                " AND (lease_expires_at IS NULL OR lease_expires_at <= ?)"
                + ("" if sparing is None else " AND owner IS NOT ?"),
                (stamp,) if sparing is None else (stamp, sparing),
            )
            threads: dict[str, str] = {}
            for owner in (row["owner"] for row in dead):
                held = await _all(
                    conn,
                    f"SELECT run_id, thread_id, created_at, progress_mark, {_PROGRESS} AS progress"
                    " FROM runs WHERE status = 'running' AND owner IS ?",
                    (owner,),
                )
                for row in held:
                    # A run alone in the dead process is the only suspect; beside others, one
                    # that wrote a step checkpoint since its claim was working, not crashing.
                    blamed = len(held) == 1 or row["progress"] <= row["progress_mark"]
                    await conn.execute(
                        "UPDATE runs SET status = 'pending', owner = NULL,"
                        " lease_expires_at = NULL, charged = charged + ?, updated_at = ?"
                        " WHERE run_id = ?",
                        (int(blamed), stamp, row["run_id"]),
                    )
                    oldest = threads.get(row["thread_id"])
                    if oldest is None or row["created_at"] < oldest:
                        threads[row["thread_id"]] = row["created_at"]
        return sorted(threads, key=lambda thread_id: (threads[thread_id], thread_id))

    async def release(self, owner: str) -> list[str]:
        rows = await self._db.write_returning(
            "UPDATE runs SET status = 'pending', owner = NULL, lease_expires_at = NULL,"
            " updated_at = ? WHERE owner = ? AND status = 'running' RETURNING thread_id",
            (stored_time(self._now()), owner),
        )
        return sorted({row["thread_id"] for row in rows})

    async def request_cancel(self, run_id: str, action: CancelAction) -> bool:
        rows = await self._db.write_returning(
            "UPDATE runs SET cancel_action = ? WHERE run_id = ? AND status = 'running'"
            " RETURNING run_id",
            (action, run_id),
        )
        return bool(rows)

    async def cancel_requests(self, owner: str) -> dict[str, CancelAction]:
        rows = await self._db.fetch_all(
            "SELECT run_id, cancel_action FROM runs WHERE status = 'running' AND owner = ?"
            " AND cancel_action IS NOT NULL",
            (owner,),
        )
        return {row["run_id"]: _cancel_action(row["cancel_action"]) for row in rows}

    async def charged_attempts(self, run_id: str) -> int:
        row = await self._db.fetch_one("SELECT charged FROM runs WHERE run_id = ?", (run_id,))
        if row is None:
            raise _not_found(run_id)
        return int(row[0])

    async def next_due_time(self, thread_id: str) -> datetime | None:
        row = await self._db.fetch_one(_NEXT_DUE, (thread_id,))
        return _due(row[0])

    async def finish_run(
        self,
        run_id: str,
        outcome: RunOutcome,
        *,
        only_if_pending: bool = False,
        held_by: str | None = None,
    ) -> FinishedRun | None:
        now = self._now()
        guard, guarded = finish_guard(only_if_pending, held_by, "?")

        def finish(db: sqlite3.Connection) -> tuple[Any, datetime | None] | None:
            rows = db.execute(
                # A finished run's lease is nobody's: cleared, it takes no room in the row.
                f"UPDATE runs SET status = ?, error = ?, usage = ?, updated_at = ?,"
                f" owner = NULL, lease_expires_at = NULL WHERE run_id = ?{guard} RETURNING *",
                (
                    outcome.status,
                    outcome.error,
                    None if outcome.usage is None else dumps_text(stored_usage(outcome.usage)),
                    stored_time(now),
                    run_id,
                    *guarded,
                ),
            ).fetchall()
            if not rows:
                found = db.execute("SELECT 1 FROM runs WHERE run_id = ?", (run_id,)).fetchone()
                if guard and found is not None:
                    return None
                raise _not_found(run_id)
            thread_id = rows[0]["thread_id"]
            _settle(db, thread_id, outcome, now, self._db.values)
            return rows[0], _due(db.execute(_NEXT_DUE, (thread_id,)).fetchone()[0])

        finished = await self._db.write(finish)
        if self._saver is not None:
            self._saver.primed.forget(run_id)
        return None if finished is None else FinishedRun(_run(finished[0]), finished[1])

    async def settle_thread(self, thread_id: str, outcome: RunOutcome) -> None:
        now = self._now()
        values = self._db.values
        await self._db.write(lambda db: _settle(db, thread_id, outcome, now, values))

    async def requeue_interrupted_work(self) -> list[str]:
        await self.reap_expired_leases()
        rows = await self._db.fetch_all(
            "SELECT thread_id, MIN(created_at) AS oldest FROM runs WHERE status = 'pending'"
            " GROUP BY thread_id ORDER BY oldest, thread_id",
            (),
        )
        return [row["thread_id"] for row in rows]


def _settle(
    db: sqlite3.Connection,
    thread_id: str,
    outcome: RunOutcome,
    now: datetime,
    values: ValuesCompressor,
) -> None:
    # Called after the finishing run left the active set, so any active run is a queued one.
    sets = [
        "status = CASE WHEN EXISTS (SELECT 1 FROM runs WHERE thread_id = ?"
        " AND status IN ('pending', 'running')) THEN 'busy' ELSE ? END",
        "interrupts = ?",
        "updated_at = ?",
        f"expires_at = {EXPIRES_AT}",
    ]
    params: list[Any] = [
        thread_id,
        outcome.thread_status,
        dumps_text(outcome.interrupts),
        now.isoformat(),
        now.isoformat(),
    ]
    encoded = outcome.encoded_values()
    if encoded is not None:
        db.execute(
            'INSERT INTO thread_values (thread_id, "values") VALUES (?, ?)'
            ' ON CONFLICT (thread_id) DO UPDATE SET "values" = excluded."values"',
            (thread_id, values.encode(thread_id, encoded, outcome.values_json_stable)),
        )
        sets.append("state_updated_at = ?")
        params.append(now.isoformat())
        count = outcome.count_messages()
        if count is not None:
            sets.append("message_count = ?")
            params.append(count)
    if outcome.usage is not None:
        found = db.execute("SELECT usage FROM threads WHERE thread_id = ?", (thread_id,)).fetchone()
        stored = None if found is None or found["usage"] is None else loads(found["usage"])
        total = add_usage(loaded_usage(stored), outcome.usage)
        assert total is not None
        sets += ["usage = ?", "total_tokens = ?", "cost_usd = ?"]
        params += [dumps_text(stored_usage(total)), total["total_tokens"], total["cost_usd"]]
    db.execute(f"UPDATE threads SET {', '.join(sets)} WHERE thread_id = ?", [*params, thread_id])


def _due(stored: str | None) -> datetime | None:
    return None if stored is None else datetime.fromisoformat(stored)


async def _all(conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...]) -> list[Any]:
    return await fetch_rows(conn, sql, params)


def _cancel_action(stored: str) -> CancelAction:
    return "rollback" if stored == "rollback" else "interrupt"


def _not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f'Run "{run_id}" not found', code="run_not_found")


def _not_found_on(thread_id: str, run_id: str) -> NotFoundError:
    return NotFoundError(f'Run "{run_id}" not found on thread "{thread_id}"', code="run_not_found")


def _run(row: Any) -> Run:
    return {
        "run_id": row["run_id"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "created_at": datetime.fromisoformat(row["created_at"]),
        "updated_at": datetime.fromisoformat(row["updated_at"]),
        "status": row["status"],
        "metadata": loads(row["metadata"]),
        "multitask_strategy": row["multitask_strategy"],
        "kwargs": loads(row["kwargs"]),
        "attempt": row["attempt"],
        "error": row["error"],
        "usage": None if row["usage"] is None else loaded_usage(loads(row["usage"])),
    }
