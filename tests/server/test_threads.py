"""Threads over HTTP: CRUD, search and count filters, copy with checkpoints, errors."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest
from langchain_core.runnables import RunnableConfig
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from agent_runtime.storage.base import Storage
from tests.conftest import RunningServer, json_of


async def test_create_and_get_thread(client: LangGraphClient) -> None:
    created = await client.threads.create(metadata={"user": "ada"})
    assert uuid.UUID(created["thread_id"])
    assert created["metadata"] == {"user": "ada"}
    assert created["status"] == "idle"
    assert created["values"] is None
    assert created["interrupts"] == {}
    assert await client.threads.get(created["thread_id"]) == created


async def test_create_thread_with_id_and_if_exists(client: LangGraphClient) -> None:
    thread_id = str(uuid.uuid4())
    first = await client.threads.create(thread_id=thread_id, metadata={"n": 1})
    assert first["thread_id"] == thread_id
    again = await client.threads.create(
        thread_id=thread_id, metadata={"n": 2}, if_exists="do_nothing"
    )
    assert again == first
    with pytest.raises(ConflictError):
        await client.threads.create(thread_id=thread_id)


async def test_create_thread_graph_id_goes_to_metadata(client: LangGraphClient) -> None:
    created = await client.threads.create(graph_id="chat")
    assert created["metadata"] == {"graph_id": "chat"}


async def test_thread_id_errors(http: httpx.AsyncClient) -> None:
    response = await http.post("/threads", json={"thread_id": "not-a-uuid"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": 'thread_id must be a UUID, got "not-a-uuid"',
        "code": "invalid_id",
    }
    response = await http.get("/threads/not-a-uuid")
    assert response.status_code == 422
    missing = str(uuid.uuid4())
    response = await http.get(f"/threads/{missing}")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Thread "{missing}" not found',
        "code": "thread_not_found",
    }
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    response = await http.post("/threads", json={"thread_id": thread_id})
    assert response.status_code == 409
    assert response.json()["detail"] == (
        f'Thread "{thread_id}" already exists; pass if_exists="do_nothing" to get the existing one'
    )


async def test_create_thread_supersteps_refused(http: httpx.AsyncClient) -> None:
    body = {"supersteps": [{"updates": [{"values": {}, "as_node": "model"}]}]}
    response = await http.post("/threads", json=body)
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "supersteps is not supported yet: create the thread, then update its state"
    )


async def test_update_thread_merges_metadata(client: LangGraphClient) -> None:
    created = await client.threads.create(metadata={"a": 1, "b": 1})
    updated = await client.threads.update(created["thread_id"], metadata={"b": 2, "c": 3})
    assert updated["metadata"] == {"a": 1, "b": 2, "c": 3}
    assert updated["updated_at"] >= created["updated_at"]
    # The SDK types the minimal update as returning None, which is what this checks.
    assert (
        await client.threads.update(created["thread_id"], metadata={}, return_minimal=True)  # type: ignore[func-returns-value]
        is None
    )


async def test_thread_ttl(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    created = await client.threads.create(ttl=30)
    assert json_of(created)["ttl"] == {"strategy": "delete", "ttl": 30}
    updated = await client.threads.update(created["thread_id"], metadata={}, ttl=5)
    assert json_of(updated)["ttl"] == {"strategy": "delete", "ttl": 5}
    response = await http.post("/threads", json={"ttl": {"strategy": "delete", "ttl": -1}})
    assert response.status_code == 422
    assert response.json()["detail"] == "ttl.ttl: value should be greater than 0, got -1"


async def test_thread_ttl_keep_latest(
    runs_server: RunningServer, rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    keep_latest = {"strategy": "keep_latest", "ttl": 60}
    created = await rclient.threads.create(ttl=keep_latest)
    thread_id = created["thread_id"]
    assert json_of(created)["ttl"] == keep_latest
    assert json_of(await rclient.threads.get(thread_id))["ttl"] == keep_latest
    await rclient.runs.wait(thread_id, "slow", input={"steps": []}, context={"delay": 0.01})
    assert len(await rclient.threads.get_history(thread_id)) == 5

    # Expire it (6 ms), then sweep: trimmed to its latest checkpoint, not deleted.
    short = {"strategy": "keep_latest", "ttl": 0.0001}
    updated = await rclient.threads.update(thread_id, metadata={}, ttl=short)
    assert json_of(updated)["ttl"] == short
    await asyncio.sleep(0.05)
    assert await runs_server.services().storage.sweep_expired_threads() == 1
    thread = await rclient.threads.get(thread_id)
    assert json_of(thread)["ttl"] == short
    assert thread["values"] == {"steps": ["one", "two", "three"]}
    history = await rclient.threads.get_history(thread_id)
    assert [h["values"] for h in history] == [{"steps": ["one", "two", "three"]}]
    assert history[0]["parent_checkpoint"] is None

    response = await rhttp.patch(
        f"/threads/{thread_id}", json={"ttl": {"strategy": "shred", "ttl": 5}}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "ttl.strategy: value should be 'delete' or 'keep_latest', got \"shred\""
    )


async def test_expired_threads_are_swept(server: RunningServer, client: LangGraphClient) -> None:
    storage: Storage = server.services().storage
    keep = await client.threads.create()
    # Our API takes fractional minutes; the SDK types `ttl` as whole minutes.
    doomed = await client.threads.create(ttl=0.0001)  # type: ignore[arg-type]
    await asyncio.sleep(0.05)
    assert await storage.sweep_expired_threads() == 1
    with pytest.raises(NotFoundError):
        await client.threads.get(doomed["thread_id"])
    assert (await client.threads.get(keep["thread_id"]))["thread_id"] == keep["thread_id"]


async def test_delete_thread(client: LangGraphClient) -> None:
    created = await client.threads.create()
    await client.threads.delete(created["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.get(created["thread_id"])
    with pytest.raises(NotFoundError):
        await client.threads.delete(created["thread_id"])


async def test_search_threads_filters(client: LangGraphClient) -> None:
    a = await client.threads.create(metadata={"user": "ada", "tags": ["x", "y"], "n": 1})
    b = await client.threads.create(metadata={"user": "bob", "tags": ["y"], "n": 2})
    await client.threads.create(metadata={"user": "cy", "nested": {"deep": True}})

    assert [t["thread_id"] for t in await client.threads.search(metadata={"user": "ada"})] == [
        a["thread_id"]
    ]
    tagged = await client.threads.search(metadata={"tags": ["y"]}, sort_order="asc")
    assert [t["thread_id"] for t in tagged] == [a["thread_id"], b["thread_id"]]
    assert len(await client.threads.search(metadata={"nested": {"deep": True}})) == 1
    assert len(await client.threads.search(metadata={"nested": {"deep": 1}})) == 0
    assert await client.threads.count(metadata={"tags": ["y"]}) == 2
    assert await client.threads.count(status="idle") == 3
    assert await client.threads.count(status="busy") == 0

    by_ids = await client.threads.search(ids=[b["thread_id"], a["thread_id"]])
    assert {t["thread_id"] for t in by_ids} == {a["thread_id"], b["thread_id"]}


async def test_search_and_count_threads_by_values(client: LangGraphClient) -> None:
    talked = await client.threads.create(metadata={"by_values": True})
    hi: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
    await client.runs.wait(talked["thread_id"], "chat", input=hi)
    await client.threads.create(metadata={"by_values": True})  # never ran: no values
    said_hi = {"messages": [{"type": "human", "content": "hi"}]}
    found = await client.threads.search(metadata={"by_values": True}, values=said_hi)
    assert [t["thread_id"] for t in found] == [talked["thread_id"]]
    assert json_of(found[0]["values"])["messages"][0]["content"] == "hi"
    assert await client.threads.count(metadata={"by_values": True}, values=said_hi) == 1
    assert await client.threads.count(values={"messages": [{"content": "bye"}]}) == 0


async def test_search_threads_pages_and_sorts(client: LangGraphClient) -> None:
    made = [await client.threads.create(metadata={"page": True}) for _ in range(5)]
    newest_first = [t["thread_id"] for t in reversed(made)]
    page1 = await client.threads.search(metadata={"page": True}, limit=3)
    page2 = await client.threads.search(metadata={"page": True}, limit=3, offset=3)
    assert [t["thread_id"] for t in page1 + page2] == newest_first
    oldest_first = await client.threads.search(
        metadata={"page": True}, sort_by="created_at", sort_order="asc", limit=10
    )
    assert [t["thread_id"] for t in oldest_first] == list(reversed(newest_first))


async def test_search_threads_select_and_extract(client: LangGraphClient) -> None:
    created = await client.threads.create(metadata={"kind": "selected"})
    # `select` trims the fields: these are not whole Threads, as the SDK declares.
    found: list[Any] = await client.threads.search(
        metadata={"kind": "selected"},
        select=["thread_id", "status"],
        extract={"kind": "metadata.kind", "missing": "values.messages[-1]"},
    )
    assert found == [
        {
            "thread_id": created["thread_id"],
            "status": "idle",
            "extracted": {"kind": "selected", "missing": None},
        }
    ]


async def test_search_threads_invalid(http: httpx.AsyncClient) -> None:
    response = await http.post("/threads/search", json={"limit": 0})
    assert response.status_code == 422
    assert response.json()["detail"] == "limit: value should be greater than or equal to 1, got 0"
    response = await http.post("/threads/search", json={"status": "sleeping"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("status: value should be 'idle'")
    response = await http.post("/threads/search", json={"ids": ["nope"]})
    assert response.status_code == 422
    assert response.json()["detail"] == 'ids[] must be a UUID, got "nope"'
    response = await http.post("/threads/search", json={"extract": {"x": "values..bad"}})
    assert response.status_code == 422
    assert (
        response.json()["detail"]
        == 'extract.x: "values..bad" is not a path like "values.messages[-1]"'
    )


async def test_copy_thread_copies_checkpoints(
    server: RunningServer, client: LangGraphClient
) -> None:
    thread = await client.threads.create(metadata={"origin": True})
    graph = await server.services().registry.get_graph("chat")
    config: RunnableConfig = {"configurable": {"thread_id": thread["thread_id"]}}
    await graph.ainvoke({"messages": [{"role": "user", "content": "hello"}]}, config)
    original = [c async for c in graph.aget_state_history(config)]
    assert len(original) >= 2

    # The SDK types `copy` as returning None; the API answers with the new thread.
    copied = json_of(await client.threads.copy(thread["thread_id"]))  # type: ignore[func-returns-value]
    assert copied["thread_id"] != thread["thread_id"]
    assert copied["metadata"] == {"origin": True}
    copy_config: RunnableConfig = {"configurable": {"thread_id": copied["thread_id"]}}
    history = [c async for c in graph.aget_state_history(copy_config)]
    assert [c.config["configurable"]["checkpoint_id"] for c in history] == [
        c.config["configurable"]["checkpoint_id"] for c in original
    ]
    assert history[0].values == original[0].values

    # The copy is independent: deleting the original keeps the copy's history.
    await client.threads.delete(thread["thread_id"])
    assert [c async for c in graph.aget_state_history(config)] == []
    assert len([c async for c in graph.aget_state_history(copy_config)]) == len(original)


async def test_copy_unknown_thread(http: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await http.post(f"/threads/{missing}/copy")
    assert response.status_code == 404
    assert response.json()["code"] == "thread_not_found"
