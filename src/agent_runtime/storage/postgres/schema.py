"""Our tables in Postgres, as numbered migrations: `agent_runtime_migrations` records each one
applied, each is applied once in its own transaction, and an advisory lock makes processes that
start together migrate one after the other. LangGraph's savers and store set up their own tables
under the same lock (their set-up is not safe to run twice at once)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import datetime

import psycopg

from agent_runtime.errors import StorageError
from agent_runtime.storage.postgres.database import Conn

MIGRATION_LOCK = 0x6167656E7472756E
"""The advisory lock key ("agentrun" in ASCII) every process takes while it migrates."""
LOCK_POLL_SECONDS = 0.1

# Text we sort or compare by is `COLLATE "C"`: byte order, as SQLite compares, whatever the
# database's locale.
_V1 = """
CREATE TABLE assistants (
    assistant_id TEXT COLLATE "C" PRIMARY KEY,
    graph_id TEXT COLLATE "C" NOT NULL,
    config JSONB NOT NULL,
    context JSONB NOT NULL,
    metadata JSONB NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT,
    version INTEGER NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX assistants_graph_id ON assistants (graph_id);
CREATE INDEX assistants_created_at ON assistants (created_at);
CREATE INDEX assistants_metadata ON assistants USING GIN (metadata jsonb_path_ops);
CREATE TABLE assistant_versions (
    assistant_id TEXT COLLATE "C" NOT NULL
        REFERENCES assistants (assistant_id) ON DELETE CASCADE,
    version INTEGER NOT NULL,
    graph_id TEXT COLLATE "C" NOT NULL,
    config JSONB NOT NULL,
    context JSONB NOT NULL,
    metadata JSONB NOT NULL,
    name TEXT COLLATE "C" NOT NULL,
    description TEXT,
    created_at TIMESTAMPTZ NOT NULL,
    PRIMARY KEY (assistant_id, version)
);
CREATE TABLE threads (
    thread_id TEXT COLLATE "C" PRIMARY KEY,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    state_updated_at TIMESTAMPTZ NOT NULL,
    metadata JSONB NOT NULL,
    status TEXT COLLATE "C" NOT NULL DEFAULT 'idle',
    interrupts JSONB NOT NULL DEFAULT '{}',
    config JSONB NOT NULL DEFAULT '{}',
    ttl JSONB,
    expires_at TIMESTAMPTZ,
    lifecycle TEXT NOT NULL DEFAULT 'open',
    visible BOOLEAN NOT NULL DEFAULT TRUE,
    name TEXT COLLATE "C",
    tags JSONB NOT NULL DEFAULT '[]',
    usage JSONB,
    total_tokens BIGINT NOT NULL DEFAULT 0,
    cost_usd DOUBLE PRECISION,
    run_count INTEGER NOT NULL DEFAULT 0,
    first_run_at TIMESTAMPTZ,
    last_run_at TIMESTAMPTZ,
    message_count INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX threads_visible_created ON threads (visible, created_at);
CREATE INDEX threads_updated_at ON threads (updated_at);
CREATE INDEX threads_expires_at ON threads (expires_at) WHERE expires_at IS NOT NULL;
CREATE INDEX threads_metadata ON threads USING GIN (metadata jsonb_path_ops);
-- A thread's latest values apart from its row: status and usage updates, several a run, then
-- never rewrite the whole state.
CREATE TABLE thread_values (
    thread_id TEXT COLLATE "C" PRIMARY KEY REFERENCES threads (thread_id) ON DELETE CASCADE,
    "values" JSONB NOT NULL
);
CREATE TABLE runs (
    run_id TEXT COLLATE "C" PRIMARY KEY,
    thread_id TEXT COLLATE "C" NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    assistant_id TEXT COLLATE "C" NOT NULL,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL,
    status TEXT COLLATE "C" NOT NULL DEFAULT 'pending',
    metadata JSONB NOT NULL DEFAULT '{}',
    kwargs JSONB NOT NULL DEFAULT '{}',
    multitask_strategy TEXT NOT NULL DEFAULT 'enqueue',
    attempt INTEGER NOT NULL DEFAULT 0,
    error TEXT,
    not_before TIMESTAMPTZ,
    usage JSONB,
    -- Leases: the process holding a running run, until when unless renewed, the attempts
    -- blamed on the run, and its step checkpoints when last claimed.
    owner TEXT,
    lease_expires_at TIMESTAMPTZ,
    charged INTEGER NOT NULL DEFAULT 0,
    progress_mark INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX runs_thread_status ON runs (thread_id, status, created_at);
CREATE INDEX runs_running_lease ON runs (lease_expires_at) WHERE status = 'running';
CREATE INDEX runs_pending_created ON runs (created_at) WHERE status = 'pending';
CREATE TABLE tool_calls (
    tool_call_id TEXT COLLATE "C" NOT NULL,
    thread_id TEXT COLLATE "C" NOT NULL REFERENCES threads (thread_id) ON DELETE CASCADE,
    run_id TEXT COLLATE "C" NOT NULL,
    checkpoint_id TEXT,
    name TEXT NOT NULL,
    args JSONB NOT NULL,
    status TEXT NOT NULL,
    result JSONB,
    error TEXT,
    started_at TIMESTAMPTZ NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (thread_id, run_id, tool_call_id)
);
CREATE INDEX tool_calls_thread_started ON tool_calls (thread_id, started_at);
"""

# Version 2: a cancel asked of a running run by a process that does not execute it, for the one
# that does to find without Redis (`cancel_action`: interrupt or rollback).
_V2 = """
ALTER TABLE runs ADD COLUMN cancel_action TEXT;
"""

# Version 3: crons. `next_run_date` is when the cron fires next (NULL once it has ended); a
# process firing it holds it (`claimed_by`) until `claimed_until`, so that each fire happens
# once across processes.
_V3 = """
CREATE TABLE crons (
    cron_id TEXT COLLATE "C" PRIMARY KEY,
    assistant_id TEXT COLLATE "C" NOT NULL,
    thread_id TEXT COLLATE "C" REFERENCES threads (thread_id) ON DELETE CASCADE,
    user_id TEXT,
    schedule TEXT NOT NULL,
    timezone TEXT,
    end_time TIMESTAMPTZ,
    payload JSONB NOT NULL,
    metadata JSONB NOT NULL DEFAULT '{}',
    on_run_completed TEXT,
    enabled BOOLEAN NOT NULL DEFAULT TRUE,
    next_run_date TIMESTAMPTZ,
    claimed_by TEXT,
    claimed_until TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL
);
CREATE INDEX crons_due ON crons (next_run_date) WHERE enabled;
CREATE INDEX crons_thread ON crons (thread_id);
CREATE INDEX crons_assistant ON crons (assistant_id);
CREATE INDEX crons_metadata ON crons USING GIN (metadata jsonb_path_ops);
"""

# Version 4: the GIN index of thread metadata takes each entry when it is written. With its
# pending list (the default), entries wait in a list that every search by metadata reads whole
# until a vacuum merges them, and the planner, counting that list, preferred reading every
# thread: 9 ms for a key 5 threads of 20,000 hold, against 0.3 ms from the index.
_V4 = """
ALTER INDEX threads_metadata SET (fastupdate = off);
SELECT gin_clean_pending_list('threads_metadata'::regclass);
"""

# Version 5: a thread's values are rewritten whole at each run's end (150 KiB of JSON at 600
# messages), and as JSONB each write parsed and re-encoded them: 3.4 ms an upsert with pglz, 0.9
# as `json` (kept as sent) with lz4, where the server has it (PostgreSQL 14 and later built with
# lz4, as Debian's and the official images are). Reading them back is faster too (1.4 ms against
# 0.6: JSONB is printed anew). A search by values casts them to JSONB (`@>`), which only such
# searches pay for; they read every thread's values either way.
_V5 = """
ALTER TABLE thread_values ALTER COLUMN "values" TYPE json USING "values"::json;
DO $$
BEGIN
    IF 'lz4' = ANY (
        SELECT unnest(enumvals) FROM pg_settings WHERE name = 'default_toast_compression'
    ) THEN
        EXECUTE 'ALTER TABLE thread_values ALTER COLUMN "values" SET COMPRESSION lz4';
    END IF;
END $$;
"""

MIGRATIONS: tuple[str, ...] = (_V1, _V2, _V3, _V4, _V5)


async def migrate(
    conn: Conn,
    *,
    now: Callable[[], datetime],
    then: Callable[[], Awaitable[None]] | None = None,
) -> None:
    """Apply every migration newer than the database under the migration lock, then run `then`
    (LangGraph's own set-ups) still under it.

    Raises:
        StorageError: the database comes from a newer release, or a migration failed (its
            transaction is rolled back).
    """
    await _lock(conn)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS agent_runtime_migrations"
            " (version INTEGER PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)"
        )
        cursor = await conn.execute("SELECT max(version) AS v FROM agent_runtime_migrations")
        row = await cursor.fetchone()
        current = int(row["v"]) if row and row["v"] is not None else 0
        if current > len(MIGRATIONS):
            raise StorageError(
                f"its schema version is {current}, newer than this release of agent-runtime "
                f"knows ({len(MIGRATIONS)}); upgrade agent-runtime, or use another database"
            )
        for version, script in enumerate(MIGRATIONS, start=1):
            if version <= current:
                continue
            try:
                async with conn.transaction():
                    await conn.execute(script)
                    await conn.execute(
                        "INSERT INTO agent_runtime_migrations (version, applied_at)"
                        " VALUES (%s, %s)",
                        (version, now()),
                    )
            except psycopg.errors.DuplicateTable as exc:
                raise StorageError(
                    f"bringing its tables to schema version {version} failed: {exc}; is it "
                    "another program's database? Use another database"
                ) from None
        if then is not None:
            await then()
    finally:
        await conn.execute("SELECT pg_advisory_unlock(%s)", (MIGRATION_LOCK,))


async def _lock(conn: Conn) -> None:
    # Polled, not waited for in one statement: a process waiting inside `pg_advisory_lock` holds
    # a snapshot, and LangGraph's `CREATE INDEX CONCURRENTLY`, run by the process holding the
    # lock, waits for every snapshot to go: they would wait for each other forever.
    while True:
        cursor = await conn.execute("SELECT pg_try_advisory_lock(%s) AS ok", (MIGRATION_LOCK,))
        row = await cursor.fetchone()
        if row is not None and row["ok"]:
            return
        await asyncio.sleep(LOCK_POLL_SECONDS)
