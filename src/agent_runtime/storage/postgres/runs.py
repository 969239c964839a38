"""Runs in Postgres: the durable queue behind each thread (at most one run `running` per thread,
across every process on the database) and the thread status it implies.

Every transaction that changes a thread's runs locks the thread's row first (`lock_thread`),
so two processes creating, claiming or finishing runs of one thread take turns, and locks are
always taken thread first, run second: no two transactions can wait on each other.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from psycopg.rows import DictRow

from agent_runtime.errors import ConflictError, InvalidRequestError, NotFoundError
from agent_runtime.lifecycle import require_open
from agent_runtime.schema import CancelAction, Run, RunStatus
from agent_runtime.storage.filters import AuthFilter, auth_containments
from agent_runtime.storage.multitask import check_active
from agent_runtime.storage.postgres.checkpoint_tables import (
    delete_run_checkpoints,
    latest_columns,
    latest_join,
    latest_row,
)
from agent_runtime.storage.postgres.database import Conn, PostgresDatabase, jsonb
from agent_runtime.storage.postgres.idle_create import (
    EXPIRES_AT,
    can_try,
    create_on_idle_thread,
    run_values,
)
from agent_runtime.storage.postgres.idle_finish import (
    IdleStart,
    IdleStarts,
    finish_on_unchanged_thread,
)
from agent_runtime.storage.postgres.saver import RuntimePostgresSaver
from agent_runtime.storage.postgres.settle import NEXT_DUE, settle
from agent_runtime.storage.postgres.threads import lock_thread, thread_not_found
from agent_runtime.storage.records import (
    AssistantChangedError,
    AssistantStamp,
    Claim,
    CreatedRun,
    FinishedRun,
    NewRun,
    RunOutcome,
    ThreadBrief,
    claimed_from_past,
    finish_guard,
    from_past,
)
from agent_runtime.usage import loaded_usage, stored_usage

# How many step checkpoints (source "loop", top level) the run of the enclosing `runs` row has
# written on its thread: a count above the mark taken at its claim is progress. A first attempt
# writes one of them before any node runs (the input applied), so its mark counts it ahead.
_PROGRESS = (
    "(SELECT count(*) FROM checkpoints WHERE checkpoints.thread_id = runs.thread_id"
    " AND checkpoints.checkpoint_ns = '' AND checkpoints.metadata ->> 'run_id' = runs.run_id"
    " AND checkpoints.metadata ->> 'source' = 'loop')"
)

# The mark a claim takes. A first attempt has written nothing yet (its run id is new), so its
# mark is 1 without counting: the count reads every checkpoint of the thread (its metadata is
# not indexed), which on a 300-turn thread cost 2.5 ms of every claim. A retry counts.
_CLAIM_MARK = f"CASE WHEN attempt = 0 THEN 1 ELSE {_PROGRESS} END"


class PostgresRuns:
    _saver: RuntimePostgresSaver | None
    _db: PostgresDatabase
    _now: Callable[[], datetime]
    _idle_starts: IdleStarts

    async def create_run(self, new: NewRun, *, claim: Claim | None = None) -> CreatedRun:
        now = self._now()
        if can_try(new):
            saver = self._saver
            # A run claimed now starts by reading the thread's latest checkpoint: read in the
            # same statement, it costs no statement of its own (`storage.primed`).
            read_latest = claim is not None and saver is not None and not from_past(new)
            row = await create_on_idle_thread(self._db, new, claim, now, read_latest=read_latest)
            if row is not None:
                run = _run(row)
                start = IdleStart(new.thread_id, row["thread_version"], row["thread_usage"])
                self._idle_starts.add(run["run_id"], start)
                brief = None
                if run["status"] == "running":
                    brief = ThreadBrief(int(row["message_count"]), row["thread_metadata"])
                    if read_latest and saver is not None:
                        saver.prime(run["run_id"], new.thread_id, latest_row(row))
                return CreatedRun(run, [], brief)
        # An attended run's creation, claimed or queued behind another, commits without
        # waiting for the disk (as on SQLite).
        relaxed = claim is not None and not claim.durable
        async with self._db.transaction() as conn:
            thread = await _lock_for_run(conn, new.thread_id, relaxed=relaxed)
            if thread is None and new.if_not_exists == "create":
                await conn.execute(
                    "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at,"
                    " metadata, visible, ttl) VALUES (%s, %s, %s, %s, %s, %s, %s)"
                    " ON CONFLICT (thread_id) DO NOTHING",
                    (
                        new.thread_id,
                        now,
                        now,
                        now,
                        jsonb(dict(new.thread_metadata or {})),
                        new.thread_visible,
                        None if new.thread_ttl is None else jsonb(new.thread_ttl),
                    ),
                )
                # Another process may have created it meanwhile; either way it is there now.
                thread = await _lock_for_run(conn, new.thread_id, relaxed=relaxed)
            if thread is None:
                raise thread_not_found(new.thread_id)
            require_open(new.thread_id, thread["lifecycle"], "take new runs")
            # The running run first, so a refusal names the run that actually holds the thread.
            cursor = await conn.execute(
                "SELECT * FROM runs WHERE thread_id = %s AND status IN ('pending', 'running')"
                " ORDER BY status = 'running' DESC, created_at, run_id",
                (new.thread_id,),
            )
            active = await cursor.fetchall()
            check_active(new, active)
            tags = list(dict.fromkeys([*thread["tags"], *new.tags]))
            if len(tags) > new.max_tags:
                raise InvalidRequestError(
                    f"tags: the thread would carry {len(tags)} tags, over the limit of "
                    f"{new.max_tags}",
                    code="too_many_tags",
                )
            # Claimed at once only where `claim_next_run` would claim it next (the thread's
            # row lock keeps it so until commit): a claim writes these.
            if active or (new.not_before is not None and new.not_before > now):
                claim = None
            stamped = {"graph_id": new.graph_id, "assistant_id": new.assistant_id}
            # One statement: the run inserted (a run id taken already inserts nothing, and no
            # savepoint is needed to recover), the thread updated only if it was (a run is
            # activity: a TTL counts from it; `ttl` holds minutes), and the stored assistant
            # read to check `assistant_seen` by.
            cursor = await conn.execute(
                "WITH inserted AS (INSERT INTO runs (run_id, thread_id, assistant_id, created_at,"
                " updated_at, status, metadata, kwargs, multitask_strategy, attempt,"
                " not_before, owner, lease_expires_at, progress_mark) VALUES (%s, %s,"
                " %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)"
                " ON CONFLICT (run_id) DO NOTHING RETURNING *),"
                " touched AS (UPDATE threads SET status = 'busy', metadata = metadata || %s,"
                " tags = %s, updated_at = %s, run_count = run_count + 1,"
                " first_run_at = coalesce(first_run_at, %s), last_run_at = %s,"
                f" expires_at = {EXPIRES_AT} WHERE thread_id = %s"
                " AND EXISTS (SELECT 1 FROM inserted)"
                " RETURNING message_count, metadata AS thread_metadata)"
                " SELECT inserted.*, touched.message_count, touched.thread_metadata,"
                " (SELECT version FROM assistants WHERE assistant_id = %s) AS assistant_version,"
                " (SELECT updated_at FROM assistants WHERE assistant_id = %s) AS assistant_at"
                " FROM inserted CROSS JOIN touched",
                (
                    *run_values(new, now, claim),
                    *(jsonb(stamped), jsonb(tags), now, now, now, now, new.thread_id),
                    *(new.assistant_id, new.assistant_id),
                ),
            )
            inserted = await cursor.fetchone()
            if inserted is None:
                raise ConflictError(
                    f'Run "{new.run_id}" already exists; choose a new run_id', code="run_exists"
                )
            if new.assistant_seen is not None and new.assistant_seen != AssistantStamp(
                inserted["assistant_version"], inserted["assistant_at"]
            ):
                raise AssistantChangedError(new.assistant_id)
        to_cancel = active if new.multitask_strategy in ("interrupt", "rollback") else []
        run = _run(inserted)
        brief = None
        if run["status"] == "running":
            brief = ThreadBrief(int(inserted["message_count"]), inserted["thread_metadata"])
        return CreatedRun(run, [_run(r) for r in to_cancel], brief)

    async def get_run(self, thread_id: str, run_id: str) -> Run:
        row = await self._db.fetch_one(
            "SELECT * FROM runs WHERE run_id = %s AND thread_id = %s", (run_id, thread_id)
        )
        if row is None:
            raise _not_found_on(thread_id, run_id)
        return _run(row)

    async def find_run(self, run_id: str) -> Run:
        row = await self._db.fetch_one("SELECT * FROM runs WHERE run_id = %s", (run_id,))
        if row is None:
            raise _not_found(run_id)
        return _run(row)

    async def find_runs(self, run_ids: Sequence[str]) -> dict[str, Run]:
        if not run_ids:
            return {}
        rows = await self._db.fetch_all(
            "SELECT * FROM runs WHERE run_id = ANY(%s)", (list(run_ids),)
        )
        return {row["run_id"]: _run(row) for row in rows}

    async def list_runs(
        self, thread_id: str, *, limit: int, offset: int, status: RunStatus | None
    ) -> list[Run]:
        if (
            await self._db.fetch_one("SELECT 1 FROM threads WHERE thread_id = %s", (thread_id,))
            is None
        ):
            raise thread_not_found(thread_id)
        clauses, params = ["thread_id = %s"], [thread_id]
        if status is not None:
            clauses.append("status = %s")
            params.append(status)
        rows = await self._db.fetch_all(
            f"SELECT * FROM runs WHERE {' AND '.join(clauses)}"
            " ORDER BY created_at DESC, run_id DESC LIMIT %s OFFSET %s",
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
        clauses = ["status = ANY(%s)"]
        params: list[Any] = [list(statuses)]
        if thread_id is not None:
            clauses.append("thread_id = %s")
            params.append(thread_id)
        for expected in auth_containments(auth):
            clauses.append("thread_id IN (SELECT thread_id FROM threads WHERE metadata @> %s)")
            params.append(jsonb(expected))
        rows = await self._db.fetch_all(
            f"SELECT * FROM runs WHERE {' AND '.join(clauses)} ORDER BY created_at, run_id",
            params,
        )
        return [_run(row) for row in rows]

    async def delete_run(self, thread_id: str, run_id: str, *, checkpoints: bool) -> None:
        async with self._db.transaction() as conn:
            await lock_thread(conn, thread_id)
            cursor = await conn.execute(
                "DELETE FROM runs WHERE run_id = %s AND thread_id = %s", (run_id, thread_id)
            )
            if cursor.rowcount == 0:
                raise _not_found_on(thread_id, run_id)
            if checkpoints:
                await delete_run_checkpoints(conn, thread_id, run_id)

    async def delete_run_checkpoints(self, thread_id: str, run_id: str) -> None:
        async with self._db.transaction() as conn:
            await lock_thread(conn, thread_id)
            await delete_run_checkpoints(conn, thread_id, run_id)

    async def claim_next_run(
        self, thread_id: str, *, owner: str | None = None, lease: timedelta | None = None
    ) -> Run | None:
        now = self._now()
        expires = None if lease is None else now + lease
        saver = self._saver
        # One statement. Two claims of a thread pick the same first pending run (a later one
        # only once it has finished), so the row lock on it decides between them: the loser,
        # having waited, finds it no longer `pending` (Postgres checks an updated row's
        # conditions again on its newest version) and claims nothing.
        sql = (
            "WITH claimed AS (UPDATE runs SET status = 'running', attempt = attempt + 1,"
            " updated_at = %s, owner = %s, lease_expires_at = %s,"
            f" progress_mark = {_CLAIM_MARK}"
            " WHERE run_id = (SELECT run_id FROM runs WHERE thread_id = %s"
            " AND status = 'pending' AND (not_before IS NULL OR not_before <= %s)"
            " ORDER BY created_at, run_id LIMIT 1) AND status = 'pending'"
            " AND NOT EXISTS (SELECT 1 FROM runs WHERE thread_id = %s AND status = 'running')"
            " RETURNING *) SELECT claimed.*"
        )
        params: list[object] = [now, owner, expires, thread_id, now, thread_id]
        if saver is not None:
            # The run starts by reading the thread's latest checkpoint: read here, it costs
            # no statement of its own (`storage.primed`).
            sql += f", {latest_columns()} FROM claimed{latest_join()}"
            params.append(thread_id)
        else:
            sql += " FROM claimed"
        row = await self._db.fetch_one(sql, params)
        if row is None:
            return None
        run = _run(row)
        if saver is not None and not claimed_from_past(run):
            saver.prime(run["run_id"], thread_id, latest_row(row))
        return run

    async def ready_threads(self, limit: int) -> list[str]:
        # From the pending runs (a partial index), so finished runs cost nothing; the running
        # check is one probe of (thread_id, status) per candidate. A read: no lock is taken,
        # and a claim re-checks under the thread's row lock.
        rows = await self._db.fetch_all(
            "SELECT thread_id, MIN(created_at) AS oldest FROM runs AS queued"
            " WHERE status = 'pending' AND (not_before IS NULL OR not_before <= %s)"
            " AND NOT EXISTS (SELECT 1 FROM runs WHERE runs.thread_id = queued.thread_id"
            " AND runs.status = 'running')"
            " GROUP BY thread_id ORDER BY oldest, thread_id LIMIT %s",
            (self._now(), limit),
        )
        return [row["thread_id"] for row in rows]

    async def renew_leases(self, owner: str, run_ids: Sequence[str], lease: timedelta) -> list[str]:
        if not run_ids:
            return []
        rows = await self._db.write_returning(
            "UPDATE runs SET lease_expires_at = %s WHERE owner = %s AND status = 'running'"
            " AND run_id = ANY(%s) RETURNING run_id",
            (self._now() + lease, owner, list(run_ids)),
        )
        return sorted(row["run_id"] for row in rows)

    async def reap_expired_leases(self, *, sparing: str | None = None) -> list[str]:
        now = self._now()
        threads: dict[str, datetime] = {}
        async with self._db.transaction() as conn:
            # One lapsed lease means its owner stopped renewing (the heartbeat renews all of
            # them at once): the owner is presumed dead and every run it held goes back.
            cursor = await conn.execute(
                "SELECT DISTINCT owner FROM runs WHERE status = 'running'"
                " AND (lease_expires_at IS NULL OR lease_expires_at <= %s)"
                + ("" if sparing is None else " AND owner IS DISTINCT FROM %s"),
                (now,) if sparing is None else (now, sparing),
            )
            for owner in [row["owner"] for row in await cursor.fetchall()]:
                # Locked, and the lapse checked again under the lock: a second reaper at the
                # same moment finds them pending already, and never charges them twice.
                cursor = await conn.execute(
                    "SELECT run_id, thread_id, created_at, progress_mark, lease_expires_at,"
                    f" {_PROGRESS} AS progress FROM runs WHERE status = 'running'"
                    " AND owner IS NOT DISTINCT FROM %s ORDER BY run_id FOR UPDATE",
                    (owner,),
                )
                held = await cursor.fetchall()
                if not any(
                    row["lease_expires_at"] is None or row["lease_expires_at"] <= now
                    for row in held
                ):
                    continue
                for row in held:
                    # A run alone in the dead process is the only suspect; beside others, one
                    # that wrote a step checkpoint since its claim was working, not crashing.
                    blamed = len(held) == 1 or row["progress"] <= row["progress_mark"]
                    await conn.execute(
                        "UPDATE runs SET status = 'pending', owner = NULL,"
                        " lease_expires_at = NULL, charged = charged + %s, updated_at = %s"
                        " WHERE run_id = %s",
                        (int(blamed), now, row["run_id"]),
                    )
                    oldest = threads.get(row["thread_id"])
                    if oldest is None or row["created_at"] < oldest:
                        threads[row["thread_id"]] = row["created_at"]
        return sorted(threads, key=lambda thread_id: (threads[thread_id], thread_id))

    async def release(self, owner: str) -> list[str]:
        rows = await self._db.write_returning(
            "UPDATE runs SET status = 'pending', owner = NULL, lease_expires_at = NULL,"
            " updated_at = %s WHERE owner = %s AND status = 'running' RETURNING thread_id",
            (self._now(), owner),
        )
        return sorted({row["thread_id"] for row in rows})

    async def request_cancel(self, run_id: str, action: CancelAction) -> bool:
        rows = await self._db.write_returning(
            "UPDATE runs SET cancel_action = %s WHERE run_id = %s AND status = 'running'"
            " RETURNING run_id",
            (action, run_id),
        )
        return bool(rows)

    async def cancel_requests(self, owner: str) -> dict[str, CancelAction]:
        rows = await self._db.fetch_all(
            "SELECT run_id, cancel_action FROM runs WHERE status = 'running' AND owner = %s"
            " AND cancel_action IS NOT NULL",
            (owner,),
        )
        return {
            row["run_id"]: "rollback" if row["cancel_action"] == "rollback" else "interrupt"
            for row in rows
        }

    async def charged_attempts(self, run_id: str) -> int:
        row = await self._db.fetch_one("SELECT charged FROM runs WHERE run_id = %s", (run_id,))
        if row is None:
            raise _not_found(run_id)
        return int(row["charged"])

    async def next_due_time(self, thread_id: str) -> datetime | None:
        row = await self._db.fetch_one(f"SELECT {NEXT_DUE} AS due", (thread_id,))
        return None if row is None else row["due"]

    async def finish_run(
        self,
        run_id: str,
        outcome: RunOutcome,
        *,
        only_if_pending: bool = False,
        held_by: str | None = None,
    ) -> FinishedRun | None:
        now = self._now()
        if self._saver is not None:
            self._saver.primed.forget(run_id)
        start = None if only_if_pending else self._idle_starts.pop(run_id)
        if start is not None:
            row = await finish_on_unchanged_thread(
                self._db, run_id, start, outcome, now, held_by=held_by
            )
            if row is not None:
                return FinishedRun(_run(row), None)  # the thread's only active run
        guard, guarded = finish_guard(only_if_pending, held_by, "%s")
        async with self._db.transaction() as conn:
            # The thread first, as every transaction on runs takes its locks: found and locked
            # before the run's row is (`finished` waits on `locked`), in the statement that
            # ends the run. The thread's status waits for `settle`'s own statement, whose
            # snapshot, taken after the lock, sees every run committed before it.
            cursor = await conn.execute(
                "WITH locked AS (SELECT thread_id, usage FROM threads WHERE thread_id ="
                " (SELECT thread_id FROM runs WHERE run_id = %s) FOR UPDATE),"
                # A finished run's lease is nobody's: cleared, it takes no room in the row.
                " finished AS (UPDATE runs SET status = %s, error = %s, usage = %s,"
                " updated_at = %s, owner = NULL, lease_expires_at = NULL"
                f" WHERE run_id = %s{guard} AND EXISTS (SELECT 1 FROM locked) RETURNING *)"
                " SELECT locked.thread_id AS locked_thread_id, locked.usage AS thread_usage,"
                " finished.* FROM locked LEFT JOIN finished ON true",
                (
                    run_id,
                    outcome.status,
                    outcome.error,
                    None if outcome.usage is None else jsonb(stored_usage(outcome.usage)),
                    now,
                    run_id,
                    *guarded,
                ),
            )
            row = await cursor.fetchone()
            if row is None:
                raise _not_found(run_id)
            if row["run_id"] is None:  # no longer pending, or no longer held by `held_by`
                if guard:
                    return None
                raise _not_found(run_id)
            thread = {"thread_id": row["locked_thread_id"], "usage": row["thread_usage"]}
            next_due = await settle(conn, thread, outcome, now)
        return FinishedRun(_run(row), next_due)

    async def settle_thread(self, thread_id: str, outcome: RunOutcome) -> None:
        async with self._db.transaction() as conn:
            thread = await lock_thread(conn, thread_id)
            if thread is not None:
                await settle(conn, thread, outcome, self._now())

    async def requeue_interrupted_work(self) -> list[str]:
        await self.reap_expired_leases()
        rows = await self._db.fetch_all(
            "SELECT thread_id, min(created_at) AS oldest FROM runs WHERE status = 'pending'"
            " GROUP BY thread_id ORDER BY oldest, thread_id",
        )
        return [row["thread_id"] for row in rows]


async def _lock_for_run(conn: Conn, thread_id: str, *, relaxed: bool) -> DictRow | None:
    """`lock_thread`; `relaxed` also sets the transaction's commit not to wait for the disk
    (`synchronous_commit`), in the same statement rather than a `SET LOCAL` of its own. (The
    setting takes with the thread's row: without one, the creation fails or makes it.)"""
    if not relaxed:
        return await lock_thread(conn, thread_id)
    cursor = await conn.execute(
        "SELECT *, set_config('synchronous_commit', 'off', true) AS relaxed FROM threads"
        " WHERE thread_id = %s FOR UPDATE",
        (thread_id,),
    )
    return await cursor.fetchone()


def _not_found(run_id: str) -> NotFoundError:
    return NotFoundError(f'Run "{run_id}" not found', code="run_not_found")


def _not_found_on(thread_id: str, run_id: str) -> NotFoundError:
    return NotFoundError(f'Run "{run_id}" not found on thread "{thread_id}"', code="run_not_found")


def _run(row: DictRow) -> Run:
    return {
        "run_id": row["run_id"],
        "thread_id": row["thread_id"],
        "assistant_id": row["assistant_id"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
        "status": row["status"],
        "metadata": row["metadata"],
        "multitask_strategy": row["multitask_strategy"],
        "kwargs": row["kwargs"],
        "attempt": row["attempt"],
        "error": row["error"],
        "usage": loaded_usage(row["usage"]),
    }
