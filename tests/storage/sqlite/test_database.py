"""A database that cannot be used fails `setup` with one sentence, leaves the file as it was and
leaves nothing open (a connection's thread would keep a failed server's process alive)."""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
from pathlib import Path

import pytest

from agent_runtime.errors import ConfigError, StorageError
from agent_runtime.storage.records import ThreadQuery
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.storage.sqlite.schema import MIGRATIONS


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _foreign_database(path: Path, *statements: str) -> None:
    # Another program's file: the default rollback journal, so WAL would rewrite its header.
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()


async def _setup_error(path: Path, **options: object) -> str:
    threads = set(threading.enumerate())
    storage = SqliteStorage(path, **options)  # type: ignore[arg-type]
    with pytest.raises((StorageError, ConfigError)) as caught:
        await storage.setup()
    for thread in set(threading.enumerate()) - threads:
        # A closed connection's thread ends right after the close returns.
        thread.join(timeout=2)
        assert not thread.is_alive(), f"a connection was left open: {thread.name}"
    return caught.value.detail  # type: ignore[union-attr]


async def test_setup_refuses_a_file_that_is_not_a_database(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    path.write_bytes(os.urandom(8192))
    before = _digest(path)

    detail = await _setup_error(path)

    assert detail == f"Cannot open the database {path}: file is not a database"
    assert _digest(path) == before


async def test_setup_refuses_a_folder(tmp_path: Path) -> None:
    detail = await _setup_error(tmp_path)

    assert detail == (
        f"Cannot open the database {tmp_path}: it is a folder; pass a file path "
        "(--database or AGENT_RUNTIME_DATABASE)"
    )


async def test_setup_refuses_a_database_from_a_newer_release(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    _foreign_database(path, "CREATE TABLE later (x)", "PRAGMA user_version = 99")
    before = _digest(path)

    detail = await _setup_error(path)

    assert detail == (
        f"Cannot open the database {path}: its schema version is 99, newer than this release "
        f"of agent-runtime knows ({len(MIGRATIONS)}); upgrade agent-runtime, or use another "
        "database file"
    )
    assert _digest(path) == before


async def test_setup_refuses_tables_it_cannot_migrate_and_changes_nothing(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    _foreign_database(path, "CREATE TABLE threads (id INTEGER PRIMARY KEY, body TEXT)")
    before = _digest(path)

    detail = await _setup_error(path)

    assert detail == (
        f"Cannot open the database {path}: bringing its tables to schema version 1 failed: "
        "no such column: created_at; is it another program's database? Use another database file"
    )
    assert _digest(path) == before
    conn = sqlite3.connect(path)
    assert conn.execute("SELECT name FROM sqlite_master").fetchall() == [("threads",)]
    assert conn.execute("PRAGMA journal_mode").fetchone() == ("delete",)
    conn.close()


@pytest.mark.parametrize(
    ("index", "problem"),
    [
        (
            {"dims": 3, "embed": "openai:text-embedding-3-small"},
            'store.index.embed: "openai:text-embedding-3-small" names a provider\'s model, '
            "which needs the langchain",
        ),
        (
            {"embed": "openai:text-embedding-3-small"},
            "store.index.dims: expected a positive integer, got None",
        ),
    ],
)
async def test_setup_checks_the_store_index_before_opening_the_file(
    tmp_path: Path, index: dict[str, object], problem: str
) -> None:
    path = tmp_path / "data" / "runtime.sqlite"

    detail = await _setup_error(path, store_config={"index": index})

    assert detail.startswith(f"langgraph.json: {problem}")
    assert not path.parent.exists()


async def test_setup_after_a_failure_can_be_retried_once_the_file_is_fixed(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runtime.sqlite"
    path.write_bytes(os.urandom(4096))
    storage = SqliteStorage(path)
    with pytest.raises(StorageError):
        await storage.setup()

    path.unlink()
    await storage.setup()
    try:
        assert await storage.count_threads(ThreadQuery()) == 0
    finally:
        await storage.close()
