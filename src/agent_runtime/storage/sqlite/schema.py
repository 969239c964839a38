"""Our tables in the SQLite file, as numbered migrations: `PRAGMA user_version` records the last
one applied, so a database from an older release is brought up to date at start-up."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Iterator

import aiosqlite

from agent_runtime.errors import StorageError

# Version 1: assistants, threads and runs as first released. Its statements are idempotent, so a
# database created before versioning existed (user_version 0, tables present) passes through.
_V1 = """
CREATE TABLE IF NOT EXISTS assistants (
    assistant_id TEXT PRIMARY KEY,
    graph_id TEXT NOT NULL,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    version INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS assistants_graph_id ON assistants (graph_id);
CREATE TABLE IF NOT EXISTS assistant_versions (
    assistant_id TEXT NOT NULL REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    graph_id TEXT NOT NULL,
    config TEXT NOT NULL,
    context TEXT NOT NULL,
    metadata TEXT NOT NULL,
    name TEXT NOT NULL,
    description TEXT,
    created_at TEXT NOT NULL,
    PRIMARY KEY (assistant_id, version)
);
CREATE TABLE IF NOT EXISTS threads (
    thread_id TEXT PRIMARY KEY,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    state_updated_at TEXT NOT NULL,
    metadata TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'idle',
    "values" TEXT,
    interrupts TEXT NOT NULL DEFAULT '{}',
    config TEXT NOT NULL DEFAULT '{}',
    ttl TEXT,
    expires_at TEXT
);
CREATE INDEX IF NOT EXISTS threads_created_at ON threads (created_at);
CREATE INDEX IF NOT EXISTS threads_updated_at ON threads (updated_at);
CREATE INDEX IF NOT EXISTS threads_expires_at ON threads (expires_at) WHERE expires_at IS NOT NULL;
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY,
    thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    assistant_id TEXT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'pending',
    metadata TEXT NOT NULL DEFAULT '{}',
    kwargs TEXT NOT NULL DEFAULT '{}',
    multitask_strategy TEXT NOT NULL DEFAULT 'enqueue',
    attempt INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    not_before TEXT
);
CREATE INDEX IF NOT EXISTS runs_thread_status ON runs (thread_id, status, created_at);
"""

# Version 2: thread lifecycle, visibility, name and tags; usage and cost per run and per thread;
# the tool-call log.
_V2 = """
ALTER TABLE threads ADD COLUMN lifecycle TEXT NOT NULL DEFAULT 'open';
ALTER TABLE threads ADD COLUMN visible INTEGER NOT NULL DEFAULT 1;
ALTER TABLE threads ADD COLUMN name TEXT;
ALTER TABLE threads ADD COLUMN tags TEXT NOT NULL DEFAULT '[]';
ALTER TABLE threads ADD COLUMN usage TEXT;
ALTER TABLE threads ADD COLUMN total_tokens INTEGER NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN cost_usd REAL;
ALTER TABLE threads ADD COLUMN run_count INTEGER NOT NULL DEFAULT 0;
ALTER TABLE threads ADD COLUMN first_run_at TEXT;
ALTER TABLE threads ADD COLUMN last_run_at TEXT;
ALTER TABLE threads ADD COLUMN message_count INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS threads_visible_created ON threads (visible, created_at);
ALTER TABLE runs ADD COLUMN usage TEXT;
CREATE TABLE IF NOT EXISTS tool_calls (
    tool_call_id TEXT NOT NULL,
    thread_id TEXT NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    run_id TEXT NOT NULL,
    checkpoint_id TEXT,
    name TEXT NOT NULL,
    args TEXT NOT NULL,
    status TEXT NOT NULL,
    result TEXT,
    error TEXT,
    started_at TEXT NOT NULL,
    duration_ms REAL NOT NULL,
    PRIMARY KEY (thread_id, run_id, tool_call_id)
);
CREATE INDEX IF NOT EXISTS tool_calls_thread_started ON tool_calls (thread_id, started_at);
"""

# Version 3: a thread's latest values get a table of their own. In the threads row they made
# every status or usage update rewrite the whole state (171 KiB for 600 messages, several times
# a run), and reading any column added after them walk its overflow pages.
_V3 = """
CREATE TABLE IF NOT EXISTS thread_values (
    thread_id TEXT PRIMARY KEY REFERENCES threads (thread_id) ON DELETE CASCADE,
    "values" TEXT NOT NULL
);
INSERT INTO thread_values (thread_id, "values")
    SELECT thread_id, "values" FROM threads WHERE "values" IS NOT NULL;
ALTER TABLE threads DROP COLUMN "values";
"""

# Version 4: leases. A running run names the process that claimed it (`owner`) and until when
# that claim holds unless renewed (`lease_expires_at`); `charged` counts the attempts that ended
# with the process dying and were blamed on this run, `progress_mark` how many step checkpoints
# the run had when it was last claimed (a crash after new ones is not blamed on it).
_V4 = """
ALTER TABLE runs ADD COLUMN owner TEXT;
ALTER TABLE runs ADD COLUMN lease_expires_at TEXT;
ALTER TABLE runs ADD COLUMN charged INTEGER NOT NULL DEFAULT 0;
ALTER TABLE runs ADD COLUMN progress_mark INTEGER NOT NULL DEFAULT 0;
CREATE INDEX IF NOT EXISTS runs_status_lease ON runs (status, lease_expires_at);
"""

# Version 5: a cancel asked of a running run by a process that does not execute it, for the one
# that does to find without Redis (`cancel_action`: interrupt or rollback).
_V5 = """
ALTER TABLE runs ADD COLUMN cancel_action TEXT;
"""

# Version 6: crons. `next_run_date` is when the cron fires next (NULL once it has ended); a
# process firing it holds it (`claimed_by`) until `claimed_until`, so that each fire happens
# once across processes. Timestamps are UTC ISO 8601 with microseconds, compared as text.
_V6 = """
CREATE TABLE IF NOT EXISTS crons (
    cron_id TEXT PRIMARY KEY,
    assistant_id TEXT NOT NULL,
    thread_id TEXT REFERENCES threads (thread_id) ON DELETE CASCADE,
    user_id TEXT,
    schedule TEXT NOT NULL,
    timezone TEXT,
    end_time TEXT,
    payload TEXT NOT NULL,
    metadata TEXT NOT NULL DEFAULT '{}',
    on_run_completed TEXT,
    enabled INTEGER NOT NULL DEFAULT 1,
    next_run_date TEXT,
    claimed_by TEXT,
    claimed_until TEXT,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS crons_due ON crons (next_run_date) WHERE enabled = 1;
CREATE INDEX IF NOT EXISTS crons_thread ON crons (thread_id);
CREATE INDEX IF NOT EXISTS crons_assistant ON crons (assistant_id);
"""

# Version 7: the status indexes hold only the runs waiting or running, as on Postgres. Over
# every run they grew with the history (64 bytes a run) to serve queries that only ever ask for
# `pending` or `running`; a finished run also no longer keeps its lease (cleared at its end).
_V7 = """
DROP INDEX IF EXISTS runs_status_lease;
CREATE INDEX IF NOT EXISTS runs_running_lease ON runs (status, lease_expires_at)
    WHERE status = 'running';
CREATE INDEX IF NOT EXISTS runs_pending_created ON runs (status, thread_id, created_at)
    WHERE status = 'pending';
"""

# Version 8: searching threads reads about as many rows as it returns. Sorted by `updated_at`, an
# index of its own (the `visible` one kept the sort to a full sort). Filtered by metadata, a row
# per top-level scalar key of each thread's metadata (`kind` is the JSON type, numbers one kind
# so that 1 finds 1.0; `value` the SQL value, NULL for null), with the thread's visibility and
# creation time: equality on one key then reads the matching threads newest first, however few
# or many there are. Triggers keep it, whichever statement writes a thread's metadata.
_V8 = """
CREATE INDEX IF NOT EXISTS threads_visible_updated ON threads (visible, updated_at);
CREATE TABLE IF NOT EXISTS thread_metadata (
    thread_id TEXT NOT NULL,
    key TEXT NOT NULL,
    kind TEXT NOT NULL,
    value,
    visible INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (thread_id, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS thread_metadata_lookup
    ON thread_metadata (key, kind, value, visible, created_at, thread_id);
INSERT INTO thread_metadata (thread_id, key, kind, value, visible, created_at)
    SELECT threads.thread_id, entry.key, CASE entry.type WHEN 'integer' THEN 'number'
        WHEN 'real' THEN 'number' ELSE entry.type END, entry.atom, threads.visible,
        threads.created_at
    FROM threads, json_each(threads.metadata) AS entry
    WHERE entry.type NOT IN ('object', 'array');
CREATE TRIGGER IF NOT EXISTS thread_metadata_insert AFTER INSERT ON threads BEGIN
    INSERT INTO thread_metadata (thread_id, key, kind, value, visible, created_at)
        SELECT NEW.thread_id, key, CASE type WHEN 'integer' THEN 'number'
            WHEN 'real' THEN 'number' ELSE type END, atom, NEW.visible, NEW.created_at
        FROM json_each(NEW.metadata) WHERE type NOT IN ('object', 'array');
END;
CREATE TRIGGER IF NOT EXISTS thread_metadata_update AFTER UPDATE OF metadata, visible ON threads
WHEN OLD.metadata IS NOT NEW.metadata OR OLD.visible IS NOT NEW.visible BEGIN
    DELETE FROM thread_metadata WHERE thread_id = OLD.thread_id;
    INSERT INTO thread_metadata (thread_id, key, kind, value, visible, created_at)
        SELECT NEW.thread_id, key, CASE type WHEN 'integer' THEN 'number'
            WHEN 'real' THEN 'number' ELSE type END, atom, NEW.visible, NEW.created_at
        FROM json_each(NEW.metadata) WHERE type NOT IN ('object', 'array');
END;
CREATE TRIGGER IF NOT EXISTS thread_metadata_delete AFTER DELETE ON threads BEGIN
    DELETE FROM thread_metadata WHERE thread_id = OLD.thread_id;
END;
"""

# Version 9: a thread's values may be stored compressed (zlib in a BLOB, `storage.sqlite.values`),
# which earlier releases would read as JSON text and fail on; the version keeps them from opening
# the file. The tables do not change, and values stored as text stay readable as they are.
_V9 = ""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5, _V6, _V7, _V8, _V9)


async def migrate(conn: aiosqlite.Connection) -> None:
    """Apply every migration newer than the database, each in its own transaction.

    Raises:
        StorageError: the database comes from a newer release, whose tables this one would
            misread.
        sqlite3.Error: a migration failed (its transaction is not committed).
    """
    current = await _user_version(conn)
    if current > len(MIGRATIONS):
        raise StorageError(
            f"its schema version is {current}, newer than this release of agent-runtime knows "
            f"({len(MIGRATIONS)}); upgrade agent-runtime, or use another database file"
        )
    for version, script in enumerate(MIGRATIONS, start=1):
        if version <= current:
            continue
        try:
            # The write lock first, then the version again: processes started together on a
            # new file (`serve --workers N`) each apply only the steps no other one has.
            await conn.execute("BEGIN IMMEDIATE")
            if await _user_version(conn) < version:
                for statement in _statements(script):
                    await conn.execute(statement)
                await conn.execute(f"PRAGMA user_version = {version}")
            await conn.commit()
        except sqlite3.Error as exc:
            # Tables of the same names but another shape: the file is not ours, or was edited.
            with contextlib.suppress(sqlite3.Error):
                await conn.rollback()
            raise StorageError(
                f"bringing its tables to schema version {version} failed: {exc}; "
                "is it another program's database? Use another database file"
            ) from exc


def _statements(script: str) -> Iterator[str]:
    statement = ""
    for line in script.splitlines(keepends=True):
        statement += line
        if sqlite3.complete_statement(statement):
            yield statement.strip()
            statement = ""
    if statement.strip():
        yield statement.strip()


async def _user_version(conn: aiosqlite.Connection) -> int:
    async with conn.execute("PRAGMA user_version") as cursor:
        row = await cursor.fetchone()
    return int(row[0]) if row else 0
