"""The Postgres database itself: migrations (once, under a lock, refusing a newer schema),
start-up failures in one line without the password, a busy pool and a database that goes away,
both as `StorageError` (503)."""

from __future__ import annotations

import asyncio

import psycopg
import pytest

from agent_runtime.errors import StorageError
from agent_runtime.storage.postgres import PostgresStorage, schema
from agent_runtime.storage.postgres.runs import _lock_for_run
from agent_runtime.storage.postgres.schema import MIGRATIONS
from agent_runtime.storage.records import NewThread, RunOutcome, ThreadQuery
from tests.storage.postgres.conftest import opened


async def _scalar(uri: str, sql: str) -> object:
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        cursor = await conn.execute(sql)
        row = await cursor.fetchone()
        return None if row is None else row[0]


async def test_migrations_run_once_however_often_setup_runs(pg_uri: str) -> None:
    async with opened(pg_uri) as storage:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
    async with opened(pg_uri) as storage:
        assert (await storage.get_thread("t"))["thread_id"] == "t"
    assert await _scalar(pg_uri, "SELECT count(*) FROM agent_runtime_migrations") == len(MIGRATIONS)


async def test_thread_values_move_from_jsonb_to_json_with_lz4_where_the_server_has_it(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Version 4 kept values as JSONB; version 5 keeps them as sent (json), found by values
    # filters as before, and compressed with lz4 where the server has it.
    messages = [{"type": "human", "content": f"message {n} " * 40} for n in range(200)]
    with monkeypatch.context() as patched:
        patched.setattr(schema, "MIGRATIONS", MIGRATIONS[:4])
        async with opened(pg_uri) as storage:
            await storage.create_thread(NewThread(thread_id="old"), if_exists="raise")
            old = RunOutcome(status="success", values={"messages": messages[:2], "n": 1})
            await storage.settle_thread("old", old)
    kind = "SELECT data_type FROM information_schema.columns WHERE column_name = 'values'"
    assert await _scalar(pg_uri, kind) == "jsonb"
    async with opened(pg_uri) as storage:
        assert await _scalar(pg_uri, kind) == "json"
        assert (await storage.get_thread("old"))["values"] == {"messages": messages[:2], "n": 1}
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        values = {"messages": messages, "n": 2}
        await storage.settle_thread("t", RunOutcome(status="success", values=values))
        assert (await storage.get_thread("t"))["values"] == values
        for expected, found in (({"n": 1}, ["old"]), ({"n": 2.0}, ["t"]), ({"n": "2"}, [])):
            matches = await storage.search_threads(ThreadQuery(values=expected))
            assert [thread["thread_id"] for thread in matches] == found
    has_lz4 = await _scalar(
        pg_uri,
        "SELECT 'lz4' = ANY (enumvals) FROM pg_settings WHERE name = 'default_toast_compression'",
    )
    stored = "SELECT pg_column_compression(\"values\") FROM thread_values WHERE thread_id = 't'"
    assert await _scalar(pg_uri, stored) == ("lz4" if has_lz4 else "pglz")


async def test_processes_starting_together_migrate_once(pg_uri: str) -> None:
    # Each storage has a pool of its own, as separate processes would: without the advisory
    # lock, two would create the same tables (and LangGraph's) at once and one would fail.
    storages = [PostgresStorage(pg_uri, pool_size=2) for _ in range(4)]
    try:
        await asyncio.gather(*(storage.setup() for storage in storages))
    finally:
        for storage in storages:
            await storage.close()
    assert await _scalar(pg_uri, "SELECT count(*) FROM agent_runtime_migrations") == len(MIGRATIONS)
    duplicated = "SELECT count(*) - count(DISTINCT v) FROM checkpoint_migrations"
    assert await _scalar(pg_uri, duplicated) == 0


async def test_a_database_from_a_newer_release_is_refused(pg_uri: str) -> None:
    async with opened(pg_uri):
        pass
    async with await psycopg.AsyncConnection.connect(pg_uri, autocommit=True) as conn:
        await conn.execute("INSERT INTO agent_runtime_migrations VALUES (99, now())")
    storage = PostgresStorage(pg_uri)
    with pytest.raises(StorageError) as caught:
        await storage.setup()
    assert caught.value.detail.endswith(
        f"its schema version is 99, newer than this release of agent-runtime knows "
        f"({len(MIGRATIONS)}); upgrade agent-runtime, or use another database"
    )


async def test_an_unreachable_server_fails_in_one_line_without_the_password() -> None:
    storage = PostgresStorage("postgresql://ada:s3cret@127.0.0.1:1/agents")
    with pytest.raises(StorageError) as caught:
        await storage.setup()
    detail = caught.value.detail
    assert detail.startswith(
        "Cannot connect to the database postgresql://ada:***@127.0.0.1:1/agents: "
    )
    assert "Connection refused" in detail
    assert "s3cret" not in detail and "\n" not in detail


async def test_an_unknown_database_is_named(pg_uri: str) -> None:
    missing = pg_uri.rsplit("/", 1)[0] + "/no_such_database_here"
    with pytest.raises(StorageError) as caught:
        await PostgresStorage(missing).setup()
    assert 'database "no_such_database_here" does not exist' in caught.value.detail


async def test_a_busy_pool_is_a_storage_error(pg_uri: str) -> None:
    async with opened(pg_uri, pool_size=1, pool_timeout=0.2) as storage:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        async with storage.database.connection():
            with pytest.raises(StorageError) as caught:
                await storage.get_thread("t")
        assert caught.value.detail == (
            "The database is busy: all 1 connections of this process stayed in use for 0.2 s; "
            "retry, or raise agent_runtime.postgres_pool_size"
        )
        # Once the connection is back, the storage answers again.
        assert (await storage.get_thread("t"))["thread_id"] == "t"


async def test_a_database_going_away_is_a_storage_error_then_recovers(pg_uri: str) -> None:
    async with opened(pg_uri, pool_size=1) as storage:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        name = pg_uri.rsplit("/", 1)[1]
        async with await psycopg.AsyncConnection.connect(pg_uri, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                " WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
        with pytest.raises(StorageError) as caught:
            await storage.get_thread("t")
        assert caught.value.detail.startswith(f"The database {pg_uri} cannot be reached: ")
        # The pool drops the dead connection and opens a new one for the next request.
        assert (await storage.get_thread("t"))["thread_id"] == "t"


async def test_a_version_three_database_gets_its_metadata_index_without_a_pending_list(
    pg_uri: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    with monkeypatch.context() as patched:
        patched.setattr(schema, "MIGRATIONS", MIGRATIONS[:3])
        async with opened(pg_uri) as storage:
            for n in range(3):
                new = NewThread(thread_id=f"t{n}", metadata={"user": f"u{n}"})
                await storage.create_thread(new, if_exists="raise")
    options = "SELECT reloptions::text FROM pg_class WHERE relname = 'threads_metadata'"
    assert await _scalar(pg_uri, options) is None
    async with opened(pg_uri) as storage:
        found = await storage.search_threads(ThreadQuery(metadata={"user": "u1"}))
        assert [thread["thread_id"] for thread in found] == ["t1"]
    assert await _scalar(pg_uri, options) == "{fastupdate=off}"
    assert await _scalar(pg_uri, "SELECT count(*) FROM agent_runtime_migrations") == len(MIGRATIONS)


@pytest.mark.parametrize("prepared", [True, False])
async def test_the_pool_prepares_statements_it_runs_often_unless_told_not_to(
    pg_uri: str, prepared: bool
) -> None:
    # One connection, so every statement and the check below share it.
    async with opened(pg_uri, pool_size=1, prepared_statements=prepared) as storage:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        for _ in range(8):
            assert (await storage.get_thread("t"))["thread_id"] == "t"
        async with storage.database.connection() as conn:
            cursor = await conn.execute("SELECT count(*) AS n FROM pg_prepared_statements")
            row = await cursor.fetchone()
        assert row is not None
        assert (row["n"] > 0) is prepared


async def test_an_attended_runs_creation_commits_without_waiting_for_the_disk(pg_uri: str) -> None:
    # `synchronous_commit` goes off for the creating transaction of a relaxed claim only,
    # set by the statement that locks the thread (`runs._lock_for_run`).
    async def setting(relaxed: bool) -> tuple[object, object]:
        async with storage.database.transaction() as conn:
            row = await _lock_for_run(conn, "t", relaxed=relaxed)
            assert row is not None and row["thread_id"] == "t"
            inside = await (await conn.execute("SHOW synchronous_commit")).fetchone()
        async with storage.database.transaction() as conn:
            after = await (await conn.execute("SHOW synchronous_commit")).fetchone()
        assert inside is not None and after is not None
        return inside["synchronous_commit"], after["synchronous_commit"]

    async with opened(pg_uri, pool_size=1) as storage:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        assert await setting(relaxed=True) == ("off", "on")
        assert await setting(relaxed=False) == ("on", "on")
