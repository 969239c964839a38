"""The Postgres store's semantic index without pgvector: our embeddings table kept in step with
puts and deletes, and queries ranked as on SQLite."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import psycopg

from agent_runtime.storage.sqlite import SqliteStorage
from tests.conftest import ROOT
from tests.storage.postgres.conftest import opened

FIXTURE = ROOT / "tests" / "fixtures" / "store" / "embeddings.py"
INDEX = {"dims": 256, "embed": f"{FIXTURE}:embeddings", "fields": ["text"]}
ITEMS = {
    "tea": {"text": "Ada drinks green tea every morning", "kind": "habit"},
    "cat": {"text": "Ada has a cat called Turing", "kind": "pet"},
    "teacup": {"text": "green tea tastes best from a green cup", "kind": "habit"},
}


async def _embedded(uri: str) -> list[tuple[Any, ...]]:
    async with await psycopg.AsyncConnection.connect(uri) as conn:
        cursor = await conn.execute(
            "SELECT prefix, key, field_name FROM store_embeddings ORDER BY 1, 2, 3"
        )
        return [tuple(row) for row in await cursor.fetchall()]


async def test_embeddings_follow_puts_and_deletes(pg_uri: str) -> None:
    async with opened(pg_uri, store_config={"index": INDEX}) as storage:
        store = storage.store
        for key, value in ITEMS.items():
            await store.aput(("memories", "ada"), key, value)
        await store.aput(("memories", "ada"), "plain", {"text": "not indexed"}, index=False)
        assert await _embedded(pg_uri) == [
            ("memories.ada", "cat", "text"),
            ("memories.ada", "tea", "text"),
            ("memories.ada", "teacup", "text"),
        ]
        await store.adelete(("memories", "ada"), "cat")
        await store.aput(("memories", "ada"), "tea", {"text": "now unindexed"}, index=False)
        assert await _embedded(pg_uri) == [("memories.ada", "teacup", "text")]


async def test_search_ranks_as_sqlite_does(pg_uri: str, tmp_path: Path) -> None:
    sqlite = SqliteStorage(tmp_path / "runtime.sqlite", store_config={"index": INDEX})
    await sqlite.setup()
    try:
        async with opened(pg_uri, store_config={"index": INDEX}) as postgres:
            answers = []
            for storage in (sqlite, postgres):
                for key, value in ITEMS.items():
                    await storage.store.aput(("memories", "ada"), key, value)
                found = await storage.store.asearch(("memories",), query="green tea", limit=2)
                filtered = await storage.store.asearch(
                    ("memories",), query="green tea", filter={"kind": "pet"}
                )
                answers.append(
                    (
                        [(item.key, round(item.score or 0, 5)) for item in found],
                        [item.key for item in filtered],
                    )
                )
            assert answers[0] == answers[1]
            assert [key for key, _ in answers[1][0]] == ["teacup", "tea"]
            assert answers[1][1] == ["cat"]
    finally:
        await sqlite.close()
