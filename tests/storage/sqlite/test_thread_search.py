"""Searching threads on SQLite reads about as many rows as it returns: each shape of search has a
plan without a full scan or a full sort (checked with EXPLAIN QUERY PLAN on the statements the
search sends), and `thread_metadata` is filled for databases of the previous schema."""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.storage.filters import AuthFilter
from agent_runtime.storage.records import NewThread, ThreadPatch, ThreadQuery
from agent_runtime.storage.sqlite import SqliteStorage, threads
from agent_runtime.storage.sqlite.schema import MIGRATIONS


@contextlib.asynccontextmanager
async def _storage(path: Path, count: int) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(path, clock=FakeClock(tick=timedelta(milliseconds=1)))
    await storage.setup()
    try:
        for n in range(count):
            metadata = {"user": f"u{n % 10}", "source": "web" if n % 2 else "api", "n": n}
            await storage.create_thread(
                NewThread(thread_id=f"t{n:03d}", metadata=metadata), if_exists="raise"
            )
        yield storage
    finally:
        await storage.close()


def _plans(path: Path, statements: list[tuple[str, Any]]) -> list[str]:
    conn = sqlite3.connect(path)
    try:
        return [
            " / ".join(row[3] for row in conn.execute(f"EXPLAIN QUERY PLAN {sql}", params))
            for sql, params in statements
        ]
    finally:
        conn.close()


@pytest.mark.parametrize(
    "query",
    [
        ThreadQuery(),
        ThreadQuery(sort_order="asc"),
        ThreadQuery(sort_by="updated_at"),
        ThreadQuery(metadata={"source": "web"}),
        ThreadQuery(metadata={"user": "u3"}),
        ThreadQuery(metadata={"user": "u3"}, sort_by="updated_at"),
        ThreadQuery(metadata={"source": "web", "user": "u3"}),
        ThreadQuery(auth=AuthFilter.parse({"user": "u3"})),
        ThreadQuery(metadata={"n": 7}, auth=AuthFilter.parse({"user": {"$eq": "u7"}})),
        ThreadQuery(ids=["t001", "t003"], metadata={"source": "web"}),
    ],
)
async def test_searches_read_no_more_than_they_return(tmp_path: Path, query: ThreadQuery) -> None:
    path = tmp_path / "runtime.sqlite"
    sent: list[tuple[str, Any]] = []
    async with _storage(path, 30) as storage:
        fetch_all = storage._db.fetch_all

        async def spied(sql: str, params: Any = ()) -> Any:
            sent.append((sql, params))
            return await fetch_all(sql, params)

        storage._db.fetch_all = spied  # type: ignore[method-assign]
        found = await storage.search_threads(query)
    assert found
    (plan,) = _plans(path, sent)
    assert "SCAN threads" not in plan
    # A sort of every row read only where those are few: one key's holders, or the ids given.
    bounded = "drive" in plan or "(thread_id=?)" in plan.split(" / ")[0]
    assert "USE TEMP B-TREE FOR ORDER BY" not in plan or bounded, plan


async def test_sorted_otherwise_than_by_creation_a_common_key_is_not_read_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Held by more threads than the probe counts: read in the sort's order instead, same answer.
    monkeypatch.setattr(threads, "_PROBE_LIMIT", 5)
    async with _storage(tmp_path / "runtime.sqlite", 30) as storage:
        await storage.update_thread("t004", ThreadPatch(name="touched"))
        query = ThreadQuery(metadata={"source": "api"}, sort_by="updated_at", limit=3)
        found = [thread["thread_id"] for thread in await storage.search_threads(query)]
        assert found == ["t004", "t028", "t026"]
        rare = ThreadQuery(metadata={"user": "u4"}, sort_by="updated_at", sort_order="asc")
        found = [thread["thread_id"] for thread in await storage.search_threads(rare)]
        assert found == ["t014", "t024", "t004"]


async def test_a_version_six_database_gets_its_metadata_index(tmp_path: Path) -> None:
    path = tmp_path / "old.sqlite"
    conn = sqlite3.connect(path)
    for script in MIGRATIONS[:6]:
        conn.executescript(script)
    conn.execute("PRAGMA user_version = 6")
    for thread_id, metadata in (("t1", '{"user": "a", "n": 1, "o": {"k": 1}}'), ("t2", "{}")):
        conn.execute(
            "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at, metadata)"
            " VALUES (?, '2026-01-01T00:00:00+00:00', '2026-01-01T00:00:00+00:00',"
            " '2026-01-01T00:00:00+00:00', ?)",
            (thread_id, metadata),
        )
    conn.commit()
    conn.close()
    storage = SqliteStorage(path)
    await storage.setup()
    try:
        found = await storage.search_threads(ThreadQuery(metadata={"n": 1.0, "user": "a"}))
        assert [thread["thread_id"] for thread in found] == ["t1"]
        found = await storage.search_threads(ThreadQuery(metadata={"o": {"k": 1}}))
        assert [thread["thread_id"] for thread in found] == ["t1"]
    finally:
        await storage.close()
    conn = sqlite3.connect(path)
    assert conn.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
    rows = conn.execute("SELECT thread_id, key, kind, value FROM thread_metadata ORDER BY key")
    assert rows.fetchall() == [("t1", "n", "number", 1), ("t1", "user", "text", "a")]
    conn.close()
