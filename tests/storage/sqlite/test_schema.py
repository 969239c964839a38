"""Databases written by an older release are brought up to date at start-up, data intact."""

from __future__ import annotations

import asyncio
import sqlite3
from pathlib import Path

import pytest

from agent_runtime.errors import StorageError
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.storage.sqlite.database import require_sqlite_version
from agent_runtime.storage.sqlite.schema import MIGRATIONS


def _old_database(path: Path, version: int) -> None:
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:version]:
        conn.executescript(script)
    conn.execute(f"PRAGMA user_version = {version}")
    conn.execute(
        "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata)"
        " VALUES ('t', '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00',"
        " '2026-01-01T00:00:00+00:00', '{\"kept\": true}')"
    )
    conn.commit()
    conn.close()


async def test_version_one_database_is_migrated(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path, 1)
    storage = SqliteStorage(path)
    await storage.setup()
    try:
        thread = await storage.get_thread("t")
        assert thread["metadata"] == {"kept": True}
    finally:
        await storage.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    columns = {row[1] for row in conn.execute("PRAGMA table_info(threads)")}
    assert {"lifecycle", "visible", "name", "tags", "run_count"} <= columns
    assert conn.execute("SELECT lifecycle, visible FROM threads").fetchone() == ("open", 1)
    conn.close()


async def test_migrations_run_once(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    for _ in range(2):
        storage = SqliteStorage(path)
        await storage.setup()
        await storage.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


async def test_processes_starting_together_on_a_new_file_both_migrate_it(tmp_path: Path) -> None:
    # As `serve --workers 4` does: each process opens the file it finds empty.
    path = tmp_path / "runtime.sqlite"
    storages = [SqliteStorage(path) for _ in range(4)]
    try:
        await asyncio.gather(*(storage.setup() for storage in storages))
        assert all([await storage.ready_threads(1) == [] for storage in storages])
    finally:
        for storage in storages:
            await storage.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    conn.close()


async def test_version_two_values_move_to_their_own_table(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    _old_database(path, 2)
    conn = sqlite3.connect(path)
    conn.execute(
        """UPDATE threads SET "values" = '{"messages": [{"type": "human", "content": "hi"}]}',"""
        " name = 'kept', message_count = 1 WHERE thread_id = 't'"
    )
    conn.execute(
        "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata)"
        " VALUES ('never-ran', '2026-01-02T00:00:00+00:00', '2026-01-02T00:00:00+00:00',"
        " '2026-01-02T00:00:00+00:00', '{}')"
    )
    conn.commit()
    conn.close()
    storage = SqliteStorage(path)
    await storage.setup()
    try:
        thread = await storage.get_thread("t")
        assert thread["values"] == {"messages": [{"type": "human", "content": "hi"}]}
        assert (thread["name"], thread["message_count"]) == ("kept", 1)
        assert (await storage.get_thread("never-ran"))["values"] is None
        copy = await storage.copy_thread("t", "t-copy")
        assert copy["values"] == thread["values"]
        await storage.delete_thread("t")
        assert (await storage.get_thread("t-copy"))["values"] == thread["values"]
    finally:
        await storage.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    assert "values" not in {row[1] for row in conn.execute("PRAGMA table_info(threads)")}
    assert conn.execute("SELECT thread_id FROM thread_values").fetchall() == [("t-copy",)]
    conn.close()


def test_an_old_sqlite_is_refused_with_a_sentence() -> None:
    with pytest.raises(
        StorageError, match=r"needs SQLite 3\.35\.0 or newer; .* uses SQLite 3\.34\.1"
    ):
        require_sqlite_version((3, 34, 1))
    require_sqlite_version((3, 35, 0))
    require_sqlite_version(sqlite3.sqlite_version_info)
