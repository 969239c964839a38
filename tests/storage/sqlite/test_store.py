"""The SQLite store's own semantic index: kept in step with every write, delete and TTL sweep,
and start-up errors for an index that cannot work."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.errors import ConfigError
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.storage.sqlite.store import RuntimeSqliteStore
from tests.conftest import ROOT

FIXTURE = ROOT / "tests" / "fixtures" / "store" / "embeddings.py"
INDEX = {"dims": 256, "embed": f"{FIXTURE}:embeddings", "fields": ["text"]}


@asynccontextmanager
async def opened(tmp_path: Path, store_config: Mapping[str, Any]) -> AsyncIterator[SqliteStorage]:
    storage = SqliteStorage(tmp_path / "runtime.sqlite", store_config=store_config)
    try:
        await storage.setup()
        yield storage
    finally:
        await storage.close()


async def _embedded(store: RuntimeSqliteStore) -> list[tuple[str, str, str]]:
    async with store.conn.execute(
        "SELECT prefix, key, field_name FROM store_embeddings ORDER BY prefix, key, field_name"
    ) as cursor:
        return [tuple(row) for row in await cursor.fetchall()]  # type: ignore[misc]


def _store(storage: SqliteStorage) -> RuntimeSqliteStore:
    store = storage.store
    assert isinstance(store, RuntimeSqliteStore)
    return store


# LangGraph's store gives sqlite3 a datetime for a TTL; Python 3.12 deprecates its default adapter.
@pytest.mark.filterwarnings("ignore:The default datetime adapter is deprecated:DeprecationWarning")
async def test_embeddings_follow_puts_deletes_and_ttl_sweeps(tmp_path: Path) -> None:
    config = {"index": INDEX, "ttl": {"default_ttl": 10}}
    async with opened(tmp_path, config) as storage:
        store = _store(storage)
        await store.aput(("docs",), "one", {"text": "green tea", "tags": ["a", "b"]})
        await store.aput(("docs",), "two", {"text": "black coffee"}, index=["tags", "text"])
        await store.aput(("docs",), "list", {"tags": ["x", "y"]}, index=["tags[*]"])
        assert await _embedded(store) == [
            ("docs", "list", "tags[*].0"),
            ("docs", "list", "tags[*].1"),
            ("docs", "one", "text"),
            ("docs", "two", "text"),
        ]

        await store.aput(("docs",), "one", {"text": "green tea"}, index=False)
        await store.adelete(("docs",), "two")
        assert await _embedded(store) == [
            ("docs", "list", "tags[*].0"),
            ("docs", "list", "tags[*].1"),
        ]

        await store.conn.execute("UPDATE store SET expires_at = '2000-01-01 00:00:00'")
        assert await store.sweep_ttl() == 2
        assert await _embedded(store) == []


async def test_last_put_of_a_batch_wins_in_the_index(tmp_path: Path) -> None:
    from langgraph.store.base import PutOp

    async with opened(tmp_path, {"index": INDEX}) as storage:
        store = _store(storage)
        await store.abatch(
            [
                PutOp(("docs",), "k", {"text": "green tea"}),
                PutOp(("docs",), "k", {"text": "black coffee"}),
            ]
        )
        [item] = await store.asearch(("docs",), query="black coffee")
        assert item.value == {"text": "black coffee"}
        assert item.score == pytest.approx(1.0)


async def test_an_embedding_function_works_like_an_embeddings_object(tmp_path: Path) -> None:
    index = {**INDEX, "embed": f"{FIXTURE}:embed_texts"}
    async with opened(tmp_path, {"index": index}) as storage:
        store = _store(storage)
        await store.aput(("docs",), "tea", {"text": "green tea"})
        await store.aput(("docs",), "coffee", {"text": "black coffee"})
        found = await store.asearch(("docs",), query="coffee")
        assert [item.key for item in found] == ["coffee", "tea"]


async def test_without_an_index_a_query_is_a_plain_search(tmp_path: Path) -> None:
    async with opened(tmp_path, {}) as storage:
        store = _store(storage)
        await store.aput(("docs",), "tea", {"text": "green tea"})
        [item] = await store.asearch(("docs",), query="tea")
        assert (item.key, item.score) == ("tea", None)
        assert await _embedded(store) == []


async def test_embeddings_of_the_wrong_size_are_refused(tmp_path: Path) -> None:
    async with opened(tmp_path, {"index": {**INDEX, "dims": 1536}}) as storage:
        with pytest.raises(ConfigError) as caught:
            await storage.store.aput(("docs",), "tea", {"text": "green tea"})
    assert caught.value.detail == (
        "langgraph.json: store.index.dims is 1536, but the embeddings returned 256 numbers for "
        'item "tea" in namespace "docs"; set dims to 256'
    )


@pytest.mark.parametrize(
    ("index", "message"),
    [
        (
            {"dims": 8, "embed": "openai:text-embedding-3-small"},
            'store.index.embed: "openai:text-embedding-3-small" names a provider\'s model, which '
            "needs the langchain package and the provider's (e.g. pip install langchain "
            'langchain-openai); or name your own embeddings as "./file.py:name"',
        ),
        (
            {"dims": 8, "embed": f"{FIXTURE}:embedings"},
            f'store.index.embed: {FIXTURE} has no attribute "embedings"; did you mean embeddings?',
        ),
        (
            {"dims": 8, "embed": f"{FIXTURE}:not_embeddings"},
            f"store.index.embed: {FIXTURE}:not_embeddings is an int, not an Embeddings object or "
            "an embedding function",
        ),
        (
            {"dims": 8, "embed": f"{FIXTURE}:BagOfWords"},
            f"store.index.embed: {FIXTURE}:BagOfWords is a class; name an instance of it",
        ),
        (
            {"dims": 8, "embed": f"{ROOT}/missing.py:embed"},
            f"store.index.embed: {ROOT}/missing.py does not exist",
        ),
        (
            {"dims": 0, "embed": f"{FIXTURE}:embeddings"},
            "store.index.dims: expected a positive integer, got 0",
        ),
    ],
)
async def test_an_unusable_index_fails_setup(
    tmp_path: Path, index: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConfigError) as caught:
        async with opened(tmp_path, {"index": index}):
            pass
    assert caught.value.detail == f"langgraph.json: {message}"
