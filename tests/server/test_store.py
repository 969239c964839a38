"""The long-term store over HTTP, shared with graphs through `runtime.store`."""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from agent_runtime.clock import FakeClock
from agent_runtime.config import load_config
from tests.conftest import (
    ROOT,
    Database,
    RunningServer,
    json_of,
    raw_client,
    sdk_client,
    served,
    until,
)
from tests.fixtures.store.embeddings import embed_text


async def test_put_get_delete_item(client: LangGraphClient) -> None:
    await client.store.put_item(["users", "ada"], "prefs", {"theme": "dark"})
    item = await client.store.get_item(["users", "ada"], "prefs")
    assert item["namespace"] == ["users", "ada"]
    assert item["key"] == "prefs"
    assert item["value"] == {"theme": "dark"}
    assert item["created_at"] and item["updated_at"]

    await client.store.put_item(["users", "ada"], "prefs", {"theme": "light"})
    assert (await client.store.get_item(["users", "ada"], "prefs"))["value"] == {"theme": "light"}

    await client.store.delete_item(["users", "ada"], "prefs")
    with pytest.raises(NotFoundError):
        await client.store.get_item(["users", "ada"], "prefs")


async def test_missing_item_message(http: httpx.AsyncClient) -> None:
    response = await http.get("/store/items", params={"namespace": "a.b", "key": "k"})
    assert response.status_code == 404
    assert response.json() == {
        "detail": 'No item with key "k" in namespace "a.b"',
        "code": "item_not_found",
    }


async def test_search_items(client: LangGraphClient) -> None:
    for name, colour in (("apple", "red"), ("banana", "yellow"), ("cherry", "red")):
        await client.store.put_item(["fruit", name[0]], name, {"colour": colour, "name": name})
    await client.store.put_item(["veg"], "kale", {"colour": "green"})

    everything = await client.store.search_items(["fruit"], limit=10)
    assert sorted(i["key"] for i in everything["items"]) == ["apple", "banana", "cherry"]
    red = await client.store.search_items(["fruit"], filter={"colour": "red"})
    assert sorted(i["key"] for i in red["items"]) == ["apple", "cherry"]
    paged = await client.store.search_items(["fruit"], limit=2, offset=2)
    assert len(paged["items"]) == 1


async def test_list_namespaces(client: LangGraphClient) -> None:
    await client.store.put_item(["a", "b", "c"], "k", {"v": 1})
    await client.store.put_item(["a", "x"], "k", {"v": 1})
    await client.store.put_item(["z"], "k", {"v": 1})
    listed = await client.store.list_namespaces(prefix=["a"])
    assert sorted(listed["namespaces"]) == [["a", "b", "c"], ["a", "x"]]
    shallow = await client.store.list_namespaces(prefix=["a"], max_depth=2)
    assert sorted(shallow["namespaces"]) == [["a", "b"], ["a", "x"]]
    assert (await client.store.list_namespaces(suffix=["c"]))["namespaces"] == [["a", "b", "c"]]


async def test_store_errors(http: httpx.AsyncClient) -> None:
    response = await http.put("/store/items", json={"namespace": ["a"], "key": "k"})
    assert response.status_code == 422
    assert response.json()["detail"] == 'The request body is missing the required field "value"'
    response = await http.put("/store/items", json={"namespace": ["a.b"], "key": "k", "value": {}})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("namespace.0: string should match pattern")
    response = await http.put(
        "/store/items", json={"namespace": ["a"], "key": "k", "value": {}, "ttl": 5}
    )
    assert response.status_code == 422
    assert response.json() == {
        "detail": 'ttl: this store has no TTL support; add "store": {"ttl": {...}} to '
        "langgraph.json",
        "code": "ttl_not_configured",
    }


# LangGraph's store gives sqlite3 a datetime for a TTL; Python 3.12 deprecates its default adapter.
@pytest.mark.filterwarnings("ignore:The default datetime adapter is deprecated:DeprecationWarning")
async def test_an_item_ttl_works_when_the_store_has_ttl_configured(
    tmp_path: Path, database: Database
) -> None:
    config = tmp_path / "langgraph.json"
    config.write_text(
        json.dumps(
            {
                "graphs": {"chat": str(ROOT / "graphs" / "chat.py") + ":graph"},
                "store": {"ttl": {"default_ttl": 60, "refresh_on_read": False}},
            }
        )
    )
    async with served(config, database) as server, raw_client(server) as http:
        for key, ttl in (("short", 0.001), ("long", 60), ("default", None)):
            body = {"namespace": ["a"], "key": key, "value": {"k": key}, "ttl": ttl}
            response = await http.put("/store/items", json=body)
            assert response.status_code == 204, response.text
        # 60 ms, and SQLite compares expiry times to the second.
        await asyncio.sleep(1.2)
        store: Any = server.services().storage.store
        assert store.supports_ttl
        # The runtime sweeps every 5 minutes here (the default); sweep now, by hand.
        assert await store.sweep_ttl() == 1
        response = await http.get("/store/items", params={"namespace": "a", "key": "short"})
        assert response.status_code == 404
        for key in ("long", "default"):
            response = await http.get("/store/items", params={"namespace": "a", "key": key})
            assert response.json()["value"] == {"k": key}


async def test_graphs_share_the_store(server: RunningServer, client: LangGraphClient) -> None:
    store = server.services().storage.store
    await store.aput(("from", "graph"), "note", {"text": "written in-process"})
    item = await client.store.get_item(["from", "graph"], "note")
    assert item["value"] == {"text": "written in-process"}


# Semantic search: tests/fixtures/store indexes the "text" field with a bag-of-words model.

STORE_CONFIG = ROOT / "tests" / "fixtures" / "store" / "langgraph.json"
MEMORIES = {
    "tea": {"text": "Ada drinks green tea every morning", "kind": "habit"},
    "cat": {"text": "Ada has a cat called Turing", "kind": "pet"},
    "teacup": {"text": "green tea tastes best from a green cup", "kind": "habit"},
    "bike": {"text": "Ada rides a bike to work", "kind": "habit"},
}


@pytest.fixture
async def store_server(database: Path) -> AsyncIterator[RunningServer]:
    async with served(STORE_CONFIG, database) as running:
        yield running


@pytest.fixture
async def sclient(store_server: RunningServer) -> AsyncIterator[LangGraphClient]:
    async with sdk_client(store_server) as sdk:
        yield sdk


async def _remember(client: LangGraphClient) -> None:
    for key, value in MEMORIES.items():
        await client.store.put_item(["memories", "ada"], key, value)
    await client.store.put_item(["memories", "bob"], "tea", {"text": "Bob drinks green tea"})


def _cosine(a: list[float], b: list[float]) -> float:
    dot = sum(x * y for x, y in zip(a, b, strict=True))
    return dot / (math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b)))


async def test_semantic_search_ranks_by_cosine_similarity(sclient: LangGraphClient) -> None:
    await _remember(sclient)

    found = await sclient.store.search_items(["memories", "ada"], query="green tea", limit=10)

    query = embed_text("green tea")
    expected = sorted(
        ((_cosine(query, embed_text(v["text"])), k) for k, v in MEMORIES.items()),
        key=lambda pair: (-pair[0], pair[1]),
    )
    # Ties (no shared word: score 0) go by key.
    assert [item["key"] for item in found["items"]] == ["teacup", "tea", "bike", "cat"]
    assert [item["key"] for item in found["items"]] == [key for _, key in expected]
    for item, (score, _) in zip(found["items"], expected, strict=True):
        assert item["namespace"] == ["memories", "ada"]
        assert item["score"] == pytest.approx(score, abs=1e-6)
    # The SDK declares `score` optional (it is None without a query); these searches have one.
    items = [json_of(item) for item in found["items"]]
    assert items[0]["score"] > items[1]["score"] > items[2]["score"]
    assert found["items"][2]["score"] == found["items"][3]["score"] == 0.0


async def test_semantic_search_honours_prefix_filter_limit_and_offset(
    sclient: LangGraphClient,
) -> None:
    await _remember(sclient)

    everyone = await sclient.store.search_items(["memories"], query="green tea", limit=3)
    assert [(i["namespace"][1], i["key"]) for i in everyone["items"]] == [
        ("bob", "tea"),
        ("ada", "teacup"),
        ("ada", "tea"),
    ]
    habits = await sclient.store.search_items(
        ["memories", "ada"], query="green tea", filter={"kind": "habit"}, limit=10
    )
    assert [i["key"] for i in habits["items"]] == ["teacup", "tea", "bike"]
    second = await sclient.store.search_items(
        ["memories", "ada"], query="green tea", filter={"kind": "habit"}, limit=1, offset=1
    )
    assert [i["key"] for i in second["items"]] == ["tea"]
    past_the_end = await sclient.store.search_items(
        ["memories", "ada"], query="green tea", limit=5, offset=4
    )
    assert past_the_end["items"] == []


async def test_semantic_search_follows_updates_deletes_and_index_choices(
    sclient: LangGraphClient,
) -> None:
    await _remember(sclient)

    # Re-indexed on update: the old text no longer matches, the new one does.
    await sclient.store.put_item(["memories", "ada"], "bike", {"text": "Ada switched to green tea"})
    await sclient.store.put_item(["memories", "ada"], "teacup", {"text": "a cup of coffee"})
    found = await sclient.store.search_items(["memories", "ada"], query="green tea", limit=2)
    assert [i["key"] for i in found["items"]] == ["bike", "tea"]

    # Deleted: gone from the ranking.
    await sclient.store.delete_item(["memories", "ada"], "tea")
    found = await sclient.store.search_items(["memories", "ada"], query="green tea", limit=10)
    assert [i["key"] for i in found["items"]] == ["bike", "cat", "teacup"]

    # index=False keeps an item out of the ranking, as LangGraph's SQL stores do; a plain
    # search still lists it.
    await sclient.store.put_item(["memories", "ada"], "bike", {"text": "green tea"}, index=False)
    found = await sclient.store.search_items(["memories", "ada"], query="green tea", limit=10)
    assert [i["key"] for i in found["items"]] == ["cat", "teacup"]
    listed = await sclient.store.search_items(["memories", "ada"], limit=10)
    assert "bike" in [i["key"] for i in listed["items"]]
    assert {i["score"] for i in listed["items"]} == {None}

    # A per-item list of fields replaces the configured ones.
    await sclient.store.put_item(
        ["memories", "ada"],
        "note",
        {"text": "unrelated words", "title": "green tea"},
        index=["title"],
    )
    found = await sclient.store.search_items(["memories", "ada"], query="green tea", limit=1)
    assert [(i["key"], json_of(i)["score"]) for i in found["items"]] == [
        ("note", pytest.approx(1.0))
    ]


async def test_semantic_search_over_raw_http(store_server: RunningServer) -> None:
    async with raw_client(store_server) as raw:
        for key, value in MEMORIES.items():
            body = {"namespace": ["memories", "ada"], "key": key, "value": value}
            assert (await raw.put("/store/items", json=body)).status_code == 204
        response = await raw.post(
            "/store/items/search",
            json={"namespace_prefix": ["memories"], "query": "a cat", "limit": 1},
        )
    assert response.status_code == 200
    [item] = response.json()["items"]
    assert item["key"] == "cat"
    assert item["value"] == MEMORIES["cat"]
    assert item["score"] == pytest.approx(
        _cosine(embed_text("a cat"), embed_text(MEMORIES["cat"]["text"])), abs=1e-6
    )


@pytest.mark.parametrize("graph_id", ["recall", "recall_sync"])
async def test_a_graph_searches_the_store_by_meaning(
    sclient: LangGraphClient, graph_id: str
) -> None:
    await _remember(sclient)
    thread = await sclient.threads.create()

    result = await sclient.runs.wait(
        thread["thread_id"], graph_id, input={"user": "ada", "query": "green tea"}
    )

    assert isinstance(result, dict)
    assert [found["key"] for found in result["found"]] == ["teacup", "tea"]
    query = embed_text("green tea")
    assert result["found"][0]["score"] == pytest.approx(
        _cosine(query, embed_text(MEMORIES["teacup"]["text"])), abs=1e-6
    )


@pytest.mark.filterwarnings("ignore:The default datetime adapter is deprecated:DeprecationWarning")
async def test_the_runtime_sweeps_expired_store_items_every_sweep_interval(
    tmp_path: Path, database: Database
) -> None:
    config_path = tmp_path / "langgraph.json"
    config_path.write_text(
        json.dumps(
            {
                "graphs": {"chat": str(ROOT / "graphs" / "chat.py") + ":graph"},
                "store": {"ttl": {"sweep_interval_minutes": 2}},
            }
        )
    )
    clock = FakeClock()
    config = load_config(config_path, database=database, environ={})
    server = await RunningServer(config, clock=clock).start()
    try:
        async with raw_client(server) as http:
            for key, ttl in (("short", 0.001), ("long", 60)):
                body = {"namespace": ["a"], "key": key, "value": {"k": key}, "ttl": ttl}
                assert (await http.put("/store/items", json=body)).status_code == 204
            # The item expires in the database's time (to the second on SQLite); the sweep
            # comes on the server's clock, every `sweep_interval_minutes`.
            await asyncio.sleep(1.2)
            clock.advance(119)
            await asyncio.sleep(0.2)
            # Read without refreshing: a refreshing read (LangGraph's default) would give the
            # item another 0.06 s, and a sweep coming sooner than that would leave it.
            short = {"namespace": "a", "key": "short", "refresh_ttl": "false"}
            assert (await http.get("/store/items", params=short)).status_code == 200
            clock.advance(1)

            async def swept() -> bool:
                answer = await http.get("/store/items", params=short)
                return answer.status_code == 404

            await until(swept)
            long = {"namespace": "a", "key": "long"}
            assert (await http.get("/store/items", params=long)).json()["value"] == {"k": "long"}
    finally:
        await server.stop()
