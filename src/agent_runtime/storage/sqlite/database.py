"""One SQLite file: connections, pragmas and transactions. The checkpointer and the
store open their own connections to the same file; WAL lets readers run beside the one writer."""

from __future__ import annotations

import asyncio
import contextlib
import os
import sqlite3
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal, TypeVar

import aiosqlite

from agent_runtime.errors import StorageError
from agent_runtime.storage.sqlite.schema import migrate

T = TypeVar("T")

BUSY_TIMEOUT_MS = 10_000
SETUP_LOCK_POLL_SECONDS = 0.05
Synchronous = Literal["full", "normal"]
"""SQLite's `synchronous` pragma for the connections that write: "full" syncs the WAL on every
commit, so a power loss or OS crash keeps every committed run and checkpoint; "normal" syncs
only at checkpoints of the WAL, so such a crash may lose the last commits (the file stays
consistent). A crash of the process alone loses nothing either way."""


MIN_SQLITE_VERSION = (3, 35, 0)
"""`RETURNING` and `ALTER TABLE ... DROP COLUMN`, which the runtime's statements and migrations use,
arrived in SQLite 3.35 (2021)."""


def require_sqlite_version(found: tuple[int, int, int] = sqlite3.sqlite_version_info) -> None:
    """Fail with a sentence, before anything is written, where Python's SQLite is too old."""
    if found < MIN_SQLITE_VERSION:
        need = ".".join(map(str, MIN_SQLITE_VERSION))
        have = ".".join(map(str, found))
        raise StorageError(
            f"agent-runtime needs SQLite {need} or newer; this Python uses SQLite {have}. "
            "Use a Python built against a newer libsqlite3 (python.org's builds and those of "
            "current Linux distributions are)."
        )


def synchronous_pragma(synchronous: Synchronous) -> str:
    """The statement setting it; only the two known values ever reach SQL."""
    if synchronous not in ("full", "normal"):
        raise ValueError(f'synchronous must be "full" or "normal", got {synchronous!r}')
    return f"PRAGMA synchronous={synchronous.upper()}"


class SqliteDatabase:
    """Two connections to the file: the one writer (serialised by a lock, and shared with the
    checkpointer so the file never has two writers racing for its lock) and one reader."""

    def __init__(self, path: Path, *, synchronous: Synchronous = "full") -> None:
        self.path = path
        self.synchronous = synchronous
        self._writer: aiosqlite.Connection | None = None
        self._reader: aiosqlite.Connection | None = None
        self._write_lock = asyncio.Lock()
        self.group_sync: GroupSync | None = None
        """How the writer's durable one-trip commits reach the disk under `synchronous=full`
        (None under `normal`, where no commit waits for it)."""

    async def open(self) -> None:
        """Open the file, creating it if needed, and bring its tables up to date.

        Raises:
            StorageError: the file cannot be opened, is not a database, or cannot be migrated;
                it is left as it was, and nothing stays open.
        """
        require_sqlite_version()
        if self.path.is_dir():
            raise StorageError(
                f"Cannot open the database {self.path}: it is a folder; pass a file path "
                "(--database or AGENT_RUNTIME_DATABASE)"
            )
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # WAL comes after the migrations: switching to it rewrites the file's header, and a
            # file they refuse (not ours, or from a newer release) must stay as it was.
            self._writer = await connect(
                self.path, autocommit=False, wal=False, synchronous=self.synchronous
            )
            await migrate(self._writer)
            # Fetched, so the statement is done and holds no lock when the reader connects.
            await self._writer.execute_fetchall("PRAGMA journal_mode=WAL")
            self._reader = await connect(self.path, synchronous=self.synchronous)
            if self.synchronous == "full":
                self.group_sync = GroupSync(self._writer, self.path)
        except BaseException as exc:
            await self.close()
            if isinstance(exc, StorageError):
                raise StorageError(f"Cannot open the database {self.path}: {exc.detail}") from exc
            if isinstance(exc, OSError | sqlite3.Error):
                raise StorageError(f"Cannot open the database {self.path}: {exc}") from exc
            raise

    @property
    def writer(self) -> aiosqlite.Connection:
        return self._require(self._writer)

    def share_lock(self, lock: asyncio.Lock) -> None:
        """Serialise our writes with another user of the writer connection (the checkpointer)."""
        self._write_lock = lock

    async def close(self) -> None:
        for conn in (self._reader, self._writer):
            if conn is not None:
                await conn.close()
        self._reader = self._writer = None
        if self.group_sync is not None:
            self.group_sync.close()
            self.group_sync = None

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[aiosqlite.Connection]:
        """A write transaction; BEGIN IMMEDIATE takes the file's write lock up front."""
        conn = self._require(self._writer)
        async with self._write_lock:
            await conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                await conn.rollback()
                raise
            else:
                await conn.commit()

    async def write(self, work: Callable[[sqlite3.Connection], T], *, durable: bool = True) -> T:
        """`work` in a write transaction (BEGIN IMMEDIATE, then COMMIT, or ROLLBACK if it
        raised), the whole of it one trip to the writer's thread (`on_thread`).

        Args:
            durable: as for `write_returning`.
        """

        def run(db: sqlite3.Connection) -> T:
            db.execute("BEGIN IMMEDIATE")
            return work(db)

        return await self._on_writer(run, durable)

    async def write_returning(
        self, sql: str, params: tuple[Any, ...] | list[Any] = (), *, durable: bool = True
    ) -> list[Any]:
        """One writing statement with RETURNING, atomic on its own (no explicit BEGIN), and
        its commit: one trip.

        Args:
            durable: False for a write whose loss in a power cut is harmless (a claim, which
                recovery undoes anyway): its commit does not wait for the disk even under
                `synchronous=FULL`. The next durable commit syncs it with its own (the WAL
                is synced in order), so it is lost only if everything after it is too.
        """

        def run(db: sqlite3.Connection) -> list[Any]:
            return db.execute(sql, params).fetchall()

        return await self._on_writer(run, durable)

    async def _on_writer(self, work: Callable[[sqlite3.Connection], T], durable: bool) -> T:
        # `work` leaves its transaction open: committed here, as durably as asked.
        conn = self._require(self._writer)
        if durable:
            return await write_once(self._write_lock, conn, work, self.group_sync)
        relaxed = self.synchronous == "full"

        def run_relaxed(db: sqlite3.Connection) -> T:
            if relaxed:
                db.execute(synchronous_pragma("normal"))
            try:
                return committed(db, work)
            finally:
                if relaxed:
                    db.execute(synchronous_pragma("full"))

        return await one_trip(self._write_lock, conn, run_relaxed)

    async def fetch_all(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> list[Any]:
        return await fetch_rows(self._require(self._reader), sql, params)

    async def fetch_one(self, sql: str, params: tuple[Any, ...] | list[Any] = ()) -> Any:
        return await fetch_row(self._require(self._reader), sql, params)

    def _require(self, conn: aiosqlite.Connection | None) -> aiosqlite.Connection:
        if conn is None:
            raise StorageError("The database is not open")
        return conn


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
    """`work` then a commit, or a rollback if it raised: for `on_thread`. Without the rollback
    a failed statement would leave the implicit transaction open, and the next BEGIN fail."""
    result = _rolled_back_on_error(db, work)
    db.commit()
    return result


async def write_once(
    lock: asyncio.Lock,
    conn: aiosqlite.Connection,
    work: Callable[[sqlite3.Connection], T],
    sync: GroupSync | None,
) -> T:
    """`work` and its commit in one trip to the writer's thread (`one_trip`), returning once
    the commit is on disk when the connection syncs (`sync`): alone, or with those queued
    beside it (`GroupSync`)."""
    if sync is None:
        return await one_trip(lock, conn, lambda db: committed(db, work))

    def run(db: sqlite3.Connection) -> tuple[T, int]:
        return sync.run(db, work)

    result, number = await one_trip(lock, conn, run)
    await sync.durable(number)
    return result


class GroupSync:
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

    `run` and the sync run on the writer's thread; `durable` on the event loop."""

    def __init__(self, conn: aiosqlite.Connection, path: Path) -> None:
        # aiosqlite's queue of calls for its thread: whether it is empty tells whether
        # anything else waits for the writer right now.
        self._queue: Any = conn._tx
        self._path = path
        self._wal = path.with_name(path.name + "-wal")
        self._loop = asyncio.get_running_loop()
        # The writer's thread writes these; the loop reads the two counters.
        self._committed = 0
        self._synced = 0
        self._sync_queued = False
        self._fd: int | None = None
        self.syncs = 0
        """Times the disk was synced: FULL commits and syncs of a group."""
        # The loop's own.
        self._waiters: list[tuple[int, asyncio.Future[None]]] = []

    def run(self, db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> tuple[T, int]:
        """`work` and its commit (in the writer's thread), or a rollback if either raised;
        returns its result and the number to pass to `durable`."""
        # Decided before the transaction: SQLite takes no change of `synchronous` inside one.
        grouped = not self._queue.empty()
        if grouped:
            db.execute(synchronous_pragma("normal"))
        try:
            result = committed(db, work)
        except BaseException:
            if db.in_transaction:
                db.rollback()  # the commit itself failed
            raise
        finally:
            if grouped:
                db.execute(synchronous_pragma("full"))
        self._committed += 1
        if not grouped:
            self._synced = self._committed  # FULL: on disk now, and every commit before it
            self.syncs += 1
        elif not self._sync_queued:
            self._sync_queued = True
            self._queue.put_nowait((None, self._sync))
        return result, self._committed

    async def durable(self, number: int) -> None:
        """Return once commit `number` is on disk.

        Raises:
            StorageError: the sync that was to carry it failed.
        """
        if self._synced >= number:
            return
        waiter = self._loop.create_future()
        self._waiters.append((number, waiter))
        await waiter

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
        # On the writer's thread, after every call queued before it; never raises (aiosqlite
        # would drop the exception of a call nobody awaits).
        self._sync_queued = False
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
            self._loop.call_soon_threadsafe(self._wake, target, error)

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

    def _wake(self, target: int, error: OSError | None) -> None:
        waiting: list[tuple[int, asyncio.Future[None]]] = []
        for number, waiter in self._waiters:
            if waiter.done():
                continue
            if number <= self._synced:
                waiter.set_result(None)
            elif error is not None and number <= target:
                waiter.set_exception(
                    StorageError(f"A commit to {self._path} could not be synced to disk: {error}")
                )
            else:
                waiting.append((number, waiter))
        self._waiters = waiting


def _rolled_back_on_error(db: sqlite3.Connection, work: Callable[[sqlite3.Connection], T]) -> T:
    try:
        return work(db)
    except BaseException:
        db.rollback()
        raise


async def fetch_rows(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] | list[Any] = ()
) -> list[Any]:
    """Every row of a statement in one trip to the connection's thread (a cursor would take
    three: execute, fetch, close)."""
    return list(await conn.execute_fetchall(sql, params))


async def fetch_row(
    conn: aiosqlite.Connection, sql: str, params: tuple[Any, ...] | list[Any] = ()
) -> Any:
    """The first row of a statement, or None, in one trip."""
    rows = await conn.execute_fetchall(sql, params)
    return next(iter(rows), None)


async def connect(
    path: Path, *, autocommit: bool = True, wal: bool = True, synchronous: Synchronous = "full"
) -> aiosqlite.Connection:
    """A connection with the pragmas every connection to the file needs. The writer is not in
    autocommit mode: the checkpointer that shares it groups its statements and commits.

    Closed again if a pragma fails (a file that is not a database fails the first one that
    reads it): its thread would otherwise keep the process alive."""
    conn = await aiosqlite.connect(path, isolation_level=None if autocommit else "DEFERRED")
    try:
        conn.row_factory = aiosqlite.Row
        if wal:
            await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
        await conn.execute(synchronous_pragma(synchronous))
        await conn.execute("PRAGMA foreign_keys=ON")
    except BaseException:
        await conn.close()
        raise
    return conn


@asynccontextmanager
async def setup_lock(path: Path) -> AsyncIterator[None]:
    """Hold an exclusive lock on the database file (created if missing) while setting it up, so
    processes starting together set it up one at a time. A lock of its own kind (`flock`),
    which SQLite's locks ignore; where there is none (Windows), or the path is not a file that
    can be opened, nothing is held and opening the database reports the problem."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield
        return
    try:
        # Polled, not blocking: another process may hold it for the seconds its set-up takes,
        # and a thread to wait in would outlive the set-up.
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                await asyncio.sleep(SETUP_LOCK_POLL_SECONDS)
        yield
    finally:
        os.close(fd)  # releases the lock
