"""The long-term store over HTTP, shared with graphs through `runtime.store`."""

from __future__ import annotations

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError

from tests.conftest import RunningServer


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


async def test_graphs_share_the_store(server: RunningServer, client: LangGraphClient) -> None:
    store = server.services().storage.store
    await store.aput(("from", "graph"), "note", {"text": "written in-process"})
    item = await client.store.get_item(["from", "graph"], "note")
    assert item["value"] == {"text": "written in-process"}
