"""The one writer connection: a transaction whole in one trip runs on the connection's thread in
the order it was asked for, never inside a transaction of several trips, and holds no lock
while it runs (`database.one_trip`)."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from agent_runtime.storage.sqlite.database import SqliteDatabase


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
