"""The writer connection's thread: a whole transaction in one trip to it (`one_trip`,
`on_thread`, `committed`), and durable commits synced to disk in groups (`GroupCommit`,
`write_once`). How commits reach the disk (`Synchronous`) is decided here; which connections
exist and what they hold is `database.py`'s."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite

from agent_runtime.errors import StorageError

T = TypeVar("T")

Synchronous = Literal["full", "normal"]
"""SQLite's `synchronous` pragma for the connections that write: under "full" no durable commit
is acknowledged before the WAL holding it is synced (one sync may carry several commits,
`GroupCommit`), so a power loss or OS crash keeps every committed run and checkpoint; "normal" syncs
only at checkpoints of the WAL, so such a crash may lose the last commits (the file stays
consistent). A crash of the process alone loses nothing either way."""


def synchronous_pragma(synchronous: Synchronous) -> str:
    """The statement setting it; only the two known values ever reach SQL."""
    if synchronous not in ("full", "normal"):
        raise ValueError(f'synchronous must be "full" or "normal", got {synchronous!r}')
    return f"PRAGMA synchronous={synchronous.upper()}"


async def one_trip(
    lock: asyncio.Lock, conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]
) -> T:
    """`on_thread` for a write that is whole in one trip (its BEGIN to its COMMIT) on the
    writer connection, which `lock` guards for transactions of several trips.

    The connection's thread runs its queue in order, one call at a time, so a whole
    transaction needs no lock to stay whole: it waits on the lock only while a transaction of
    several trips holds it, then queues behind it (one that has not taken it yet has queued
    nothing, so whatever queues now runs before its BEGIN). Holding the lock for its
    own trip would leave the writer idle between trips, for as long as the event loop takes to
    resume each finished caller and start the next: with many runs at once, that wait, not
    SQLite, set how many transactions a second the writer could do."""
    if lock.locked():
        async with lock:
            return await on_thread(conn, work)
    # Queued on the thread right here (aiosqlite queues before its first await).
    return await on_thread(conn, work)


async def on_thread(conn: aiosqlite.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """Call `work` with the connection's `sqlite3` connection, on the connection's own thread:
    any number of statements, and the commit, for one trip there and one wake-up of the event
    loop back (each aiosqlite call is a trip of its own). aiosqlite has no public call for
    this; `_execute` is how each of its own methods reaches the thread."""
    return await conn._execute(lambda: work(conn._conn))  # type: ignore[no-untyped-call,no-any-return]


def committed(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`work` then a commit, or a rollback if either raised: for `on_thread`. Without the
    rollback a failed statement (or commit) would leave the transaction open, and the next
    BEGIN, or a change of `synchronous`, fail."""
    try:
        result = work(db)
        db.commit()
    except BaseException:
        if db.in_transaction:
            db.rollback()
        raise
    return result


def committed_relaxed(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    """`committed`, its commit not waiting for the disk: `synchronous=NORMAL` for it (SQLite
    takes no change of it inside a transaction), `FULL` again after."""
    db.execute(synchronous_pragma("normal"))
    try:
        return committed(db, work)
    finally:
        db.execute(synchronous_pragma("full"))


async def write_once(
    lock: asyncio.Lock,
    conn: aiosqlite.Connection,
    work: Callable[[sqlite3.Connection], T],
    sync: GroupCommit | None,
) -> T:
    """`work` and its commit in one trip to the writer's thread (`one_trip`), returning once
    the commit is on disk when the connection syncs (`sync`): alone, or with those queued
    beside it (`GroupCommit`)."""
    if sync is None:
        return await one_trip(lock, conn, lambda db: committed(db, work))
    waiter = sync.waiter()

    def run(db: sqlite3.Connection) -> tuple[T, asyncio.Future[None] | None]:
        return sync.run(db, work, waiter)

    result, pending = await one_trip(lock, conn, run)
    await sync.durable(pending)
    return result


class GroupCommit:
    """Durable commits of the writer connection (`synchronous=FULL`) that share one sync of
    the WAL to the disk when several are queued at once.

    A transaction that starts while nothing else waits for the writer's thread commits as
    `FULL` does, syncing with it every commit before it. One that starts while other calls
    are queued commits without waiting for the disk and leaves a sync call at the end of the
    queue, which syncs the WAL once for every commit before it (`fdatasync` of the file, as
    SQLite does for a `FULL` commit). Either way the caller hears of its commit (`durable`)
    only once the disk has it: under load the writer syncs once a batch instead of once a
    commit, and a power cut still loses nothing a caller was told is stored. Other
    connections may read such a commit before it is synced, as they read a relaxed one
    (`Claim.durable`).

    `run` and the sync run on the writer's thread; `waiter` and `durable` on the event loop.
    A commit's waiter is made before its trip and handed to the writer's thread with it, so the
    sync that carries the commit always finds it: the caller may resume after that sync has
    run, and still hears of its outcome."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        # aiosqlite's queue of calls for its thread: whether it is empty tells whether
        # anything else waits for the writer right now.
        self._queue: Any = conn._tx
        self._path = path
        self._wal = path.with_name(path.name + "-wal")
        self._loop = asyncio.get_running_loop()
        # The writer's thread's own; the loop reads the two counters.
        self._committed = 0
        self._synced = 0
        self._sync_queued = False
        self._fd: int | None = None
        self._waiting: list[asyncio.Future[None]] = []
        self.syncs = 0
        """Times the disk was synced: FULL commits and syncs of a group."""

    def waiter(self) -> asyncio.Future[None]:
        """A future for `run` to resolve once its commit is on disk (on the event loop)."""
        return self._loop.create_future()

    def run(
        self,
        db: sqlite3.Connection,
        work: Callable[[sqlite3.Connection], T],
        waiter: asyncio.Future[None],
    ) -> tuple[T, asyncio.Future[None] | None]:
        """`work` and its commit (in the writer's thread), or a rollback if either raised.

        Returns:
            Its result, and `waiter` when the commit waits for a group sync (to pass to
            `durable`), None when it was synced before returning.
        """
        grouped = not self._queue.empty()
        result = committed_relaxed(db, work) if grouped else committed(db, work)
        self._committed += 1
        if not grouped:
            self._synced = self._committed  # FULL: on disk now, and every commit before it
            self.syncs += 1
            return result, None
        # Only this thread touches the list: the sync queued behind this commit takes it.
        self._waiting.append(waiter)
        if not self._sync_queued:
            self._sync_queued = True
            self._queue.put_nowait((None, self._sync))
        return result, waiter

    @staticmethod
    async def durable(pending: asyncio.Future[None] | None) -> None:
        """Return once the commit `run` made is on disk (`pending`, what it returned).

        Raises:
            StorageError: the sync that was to carry it failed.
        """
        if pending is not None:
            await pending

    @property
    def commits(self) -> int:
        """Commits made through `run`."""
        return self._committed

    @property
    def synced(self) -> int:
        """The number of the last commit known to be on disk."""
        return self._synced

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None

    def _sync(self) -> None:
        # On the writer's thread, after every call queued before it (and so after every commit
        # whose waiter is in the list); never raises (aiosqlite would drop the exception of a
        # call nobody awaits).
        self._sync_queued = False
        waiting, self._waiting = self._waiting, []
        target = self._committed
        error: OSError | None = None
        if self._synced < target:
            try:
                os.fdatasync(self._file())
            except OSError as exc:
                error = exc
            else:
                self._synced = target
                self.syncs += 1
        with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
            self._loop.call_soon_threadsafe(self._wake, waiting, error)

    def _file(self) -> int:
        # Opened once and kept: SQLite keeps the same WAL file while any connection is open
        # (this one is), and an inode we hold cannot be swapped under us. Without a WAL (a
        # journal mode other than WAL), the database file holds the commits.
        if self._fd is None:
            path = self._wal if self._wal.exists() else self._path
            self._fd = os.open(path, os.O_RDONLY)
            # Its name too, once, in case SQLite made the file since its last sync of the
            # folder (it syncs the folder after a new file's first FULL commit).
            folder = os.open(path.parent, os.O_RDONLY)
            try:
                os.fsync(folder)
            finally:
                os.close(folder)
        return self._fd

    def _wake(self, waiting: list[asyncio.Future[None]], error: OSError | None) -> None:
        for waiter in waiting:
            if waiter.done():  # its caller was cancelled
                continue
            if error is None:
                waiter.set_result(None)
            else:  # one exception each: raising it adds to its traceback
                waiter.set_exception(
                    StorageError(f"A commit to {self._path} could not be synced to disk: {error}")
                )
