"""The one writer connection: a transaction whole in one trip runs on the connection's thread in
the order it was asked for, never inside a transaction of several trips, and holds no lock
while it runs (`writer.one_trip`); durable ones queued together share a sync of the disk,
and none returns before the disk has it (`writer.GroupCommit`)."""

from __future__ import annotations

import asyncio
import os
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import StorageError
from agent_runtime.storage.sqlite.database import SqliteDatabase
from agent_runtime.storage.sqlite.writer import GroupCommit, on_thread


@pytest.fixture
async def db(tmp_path: Path) -> AsyncIterator[SqliteDatabase]:
    database = SqliteDatabase(tmp_path / "db.sqlite")
    await database.open()
    await database.write(lambda c: c.execute("CREATE TABLE seen (n INTEGER)"))
    try:
        yield database
    finally:
        await database.close()


def _insert(n: int) -> Callable[[sqlite3.Connection], sqlite3.Cursor]:
    return lambda c: c.execute("INSERT INTO seen (n) VALUES (?)", (n,))


async def _order(db: SqliteDatabase) -> list[int]:
    rows = await db.fetch_all("SELECT n FROM seen ORDER BY rowid")
    return [row[0] for row in rows]


async def test_a_one_trip_write_waits_out_a_transaction_of_several_trips(
    db: SqliteDatabase,
) -> None:
    async with db.transaction() as conn:
        await conn.execute("INSERT INTO seen (n) VALUES (1)")
        queued = asyncio.create_task(db.write(_insert(2)))
        await asyncio.sleep(0.05)
        # Not run inside this transaction, whose next statement still sees only its own row.
        assert not queued.done()
        rows = list(await conn.execute_fetchall("SELECT n FROM seen ORDER BY rowid"))
        assert [row[0] for row in rows] == [1]
        await conn.execute("INSERT INTO seen (n) VALUES (3)")
    await queued
    assert await _order(db) == [1, 3, 2]


async def test_one_trip_writes_hold_no_lock_while_they_run_and_keep_their_order(
    db: SqliteDatabase,
) -> None:
    started = threading.Event()

    def slow(c: sqlite3.Connection) -> None:
        started.set()
        time.sleep(0.1)
        c.execute("INSERT INTO seen (n) VALUES (1)")

    first = asyncio.create_task(db.write(slow))
    await asyncio.to_thread(started.wait, 5)
    # The writer's thread is busy with the first; the lock is free, so the next ones queue
    # on the thread at once, behind it, and a transaction of several trips could start.
    assert not db._write_lock.locked()
    rest = [asyncio.create_task(db.write(_insert(n))) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    assert not first.done()
    await asyncio.gather(first, *rest)
    assert await _order(db) == [1, 2, 3, 4]


def _group_commit(db: SqliteDatabase) -> GroupCommit:
    sync = db.group_commit
    assert sync is not None  # synchronous=full, the default
    return sync


async def _durable_insert(db: SqliteDatabase, n: int) -> int:
    # As `write_once` does it, keeping the commit's number (read on the writer's thread, right
    # after the commit) for the test.
    sync = _group_commit(db)
    waiter = sync.waiter()

    def run(c: sqlite3.Connection) -> tuple[asyncio.Future[None] | None, int]:
        _, pending = sync.run(c, _insert(n), waiter)
        return pending, sync.commits

    pending, number = await on_thread(db.writer, run)
    await sync.durable(pending)
    assert sync.synced >= number  # on disk before the caller hears of it
    return number


async def test_durable_writes_queued_together_share_a_sync_and_each_waits_for_it(
    db: SqliteDatabase,
) -> None:
    sync = _group_commit(db)
    commits, syncs = sync.commits, sync.syncs
    alone = await _durable_insert(db, 0)
    # Nothing else was queued: a FULL commit, its own sync.
    assert (sync.commits, sync.syncs, sync.synced) == (commits + 1, syncs + 1, alone)
    numbers = await asyncio.gather(*(_durable_insert(db, n) for n in range(1, 33)))
    assert sorted(numbers) == list(range(alone + 1, alone + 33))
    assert sync.synced == sync.commits
    # 32 commits, far fewer syncs: the first commits FULL, the rest in groups behind it.
    assert sync.syncs - syncs - 1 < 8
    assert sorted(await _order(db)) == list(range(33))
    # The same through `write`, which every durable write of the storage takes.
    await asyncio.gather(*(db.write(_insert(n)) for n in range(33, 65)))
    assert sync.synced == sync.commits
    assert sorted(await _order(db)) == list(range(65))


def _refuse_sync(fd: int) -> None:
    # The disk refusing a sync (EIO) cannot be made to happen here; the call is replaced.
    raise OSError(5, "Input/output error")


async def test_a_failed_sync_fails_the_writes_waiting_for_it(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "fdatasync", _refuse_sync)
    outcomes = await asyncio.gather(
        *(db.write(_insert(n)) for n in range(16)), return_exceptions=True
    )
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    # Queued together, they waited for a group sync that failed, and say so (a write that
    # found the writer idle would have committed FULL, SQLite's own sync).
    assert failed and all(isinstance(o, StorageError) for o in failed)
    assert "could not be synced to disk: [Errno 5] Input/output error" in str(failed[0])
    monkeypatch.undo()
    await asyncio.gather(*(db.write(_insert(n)) for n in range(16, 32)))
    assert _group_commit(db).synced == _group_commit(db).commits


async def test_a_caller_resuming_after_its_failed_sync_still_hears_of_it(
    db: SqliteDatabase, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The writer's thread commits and fails the group's sync while the event loop is busy
    # elsewhere: when the callers resume, the sync that carried their commits is over. Each
    # must still hear that it failed, not wait for a sync that will never come.
    monkeypatch.setattr(os, "fdatasync", _refuse_sync)
    go = threading.Event()

    def held(c: sqlite3.Connection) -> None:
        go.wait(5)
        c.execute("INSERT INTO seen (n) VALUES (0)")

    writes: list[asyncio.Task[Any]] = [asyncio.create_task(db.write(held))]
    writes += [asyncio.create_task(db.write(_insert(n))) for n in (1, 2, 3)]
    await asyncio.sleep(0.05)  # all four queued on the writer's thread, the first held
    go.set()
    # The loop is busy (on purpose): the thread commits all four and fails their sync.
    time.sleep(0.3)  # noqa: ASYNC251
    outcomes = await asyncio.wait_for(asyncio.gather(*writes, return_exceptions=True), 10)
    failed = [o for o in outcomes if isinstance(o, StorageError)]
    # The first found the others queued behind it, so all four waited for the group's sync.
    assert len(failed) == 4, outcomes
    assert all("could not be synced to disk" in str(f) for f in failed)
    assert _group_commit(db).synced < _group_commit(db).commits
