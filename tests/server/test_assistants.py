"""Assistants over HTTP, through langgraph_sdk as users call it and raw httpx for status codes."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from agent_runtime.registry import default_assistant_id
from tests.conftest import json_of

GRAPHS = ("chat", "agent", "approval")


async def test_default_assistants_exist_for_every_graph(client: LangGraphClient) -> None:
    found = await client.assistants.search(metadata={"created_by": "system"}, limit=100)
    assert sorted(a["graph_id"] for a in found) == sorted(GRAPHS)
    for assistant in found:
        assert assistant["assistant_id"] == default_assistant_id(assistant["graph_id"])
        assert assistant["name"] == assistant["graph_id"]
        assert assistant["version"] == 1


async def test_get_assistant_by_graph_name_or_id(client: LangGraphClient) -> None:
    by_name = await client.assistants.get("agent")
    by_id = await client.assistants.get(default_assistant_id("agent"))
    assert by_name == by_id
    assert by_name["graph_id"] == "agent"


async def test_create_assistant_with_fields(client: LangGraphClient) -> None:
    created = await client.assistants.create(
        "chat",
        config={"configurable": {"model": "offline:x"}},
        context={"system_prompt": "Be brief."},
        metadata={"team": "support"},
        name="Support bot",
        description="Answers support questions",
    )
    assert uuid.UUID(created["assistant_id"])
    assert created["graph_id"] == "chat"
    assert created["config"] == {"configurable": {"model": "offline:x"}}
    assert created["context"] == {"system_prompt": "Be brief."}
    assert created["metadata"] == {"team": "support"}
    assert created["name"] == "Support bot"
    assert created["description"] == "Answers support questions"
    assert created["version"] == 1
    assert await client.assistants.get(created["assistant_id"]) == created


async def test_create_assistant_if_exists(client: LangGraphClient) -> None:
    assistant_id = str(uuid.uuid4())
    first = await client.assistants.create("chat", assistant_id=assistant_id, name="one")
    again = await client.assistants.create(
        "chat", assistant_id=assistant_id, name="two", if_exists="do_nothing"
    )
    assert again == first
    with pytest.raises(ConflictError):
        await client.assistants.create("chat", assistant_id=assistant_id)


async def test_create_assistant_duplicate_message(http: httpx.AsyncClient) -> None:
    assistant_id = str(uuid.uuid4())
    body = {"graph_id": "chat", "assistant_id": assistant_id}
    assert (await http.post("/assistants", json=body)).status_code == 200
    response = await http.post("/assistants", json=body)
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Assistant "{assistant_id}" already exists; pass if_exists="do_nothing" '
        "to get the existing one",
        "code": "assistant_exists",
    }


async def test_create_assistant_unknown_graph(http: httpx.AsyncClient) -> None:
    response = await http.post("/assistants", json={"graph_id": "agnet"})
    assert response.status_code == 404
    assert response.json() == {
        "detail": 'Graph "agnet" not found; known graphs: chat, agent, approval',
        "code": "graph_not_found",
    }


async def test_create_assistant_invalid_bodies(http: httpx.AsyncClient) -> None:
    cases = [
        ({}, 'The request body is missing the required field "graph_id"'),
        ({"graph_id": "chat", "assistant_id": "abc"}, 'assistant_id must be a UUID, got "abc"'),
        ({"graph_id": "chat", "colour": "red"}, 'Unknown field "colour" in the request body'),
        (
            {"graph_id": "chat", "if_exists": "ignore"},
            "if_exists: value should be 'raise' or 'do_nothing', got \"ignore\"",
        ),
        (
            {"graph_id": "chat", "metadata": [1]},
            "metadata: value should be a valid dictionary, got [1]",
        ),
    ]
    for body, detail in cases:
        response = await http.post("/assistants", json=body)
        assert response.status_code == 422, body
        assert response.json()["detail"] == detail


async def test_malformed_json_is_422(http: httpx.AsyncClient) -> None:
    response = await http.post(
        "/assistants", content=b'{"graph_id": ', headers={"content-type": "application/json"}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_json"
    assert response.json()["detail"].startswith("The request body is not valid JSON: ")


async def test_body_not_an_object_is_422(http: httpx.AsyncClient) -> None:
    response = await http.post("/assistants", json=[1, 2])
    assert response.status_code == 422
    assert response.json()["detail"] == ("The request body must be a JSON object, got [1,2]")


async def test_update_assistant_makes_versions(client: LangGraphClient) -> None:
    created = await client.assistants.create("chat", metadata={"a": 1}, name="v1")
    assistant_id = created["assistant_id"]
    updated = await client.assistants.update(
        assistant_id, metadata={"b": 2}, name="v2", config={"tags": ["x"]}
    )
    assert updated["version"] == 2
    assert updated["metadata"] == {"a": 1, "b": 2}
    assert updated["name"] == "v2"
    assert updated["config"] == {"tags": ["x"]}
    versions = await client.assistants.get_versions(assistant_id)
    assert [v["version"] for v in versions] == [2, 1]
    assert [v["name"] for v in versions] == ["v2", "v1"]
    filtered = await client.assistants.get_versions(assistant_id, metadata={"b": 2})
    assert [v["version"] for v in filtered] == [2]

    back = await client.assistants.set_latest(assistant_id, 1)
    assert back["version"] == 1
    assert back["name"] == "v1"
    assert back["metadata"] == {"a": 1}
    assert (await client.assistants.get(assistant_id))["version"] == 1


async def test_set_latest_unknown_version(http: httpx.AsyncClient) -> None:
    assistant_id = default_assistant_id("chat")
    response = await http.post(f"/assistants/{assistant_id}/latest", json={"version": 7})
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Assistant "{assistant_id}" has no version 7',
        "code": "assistant_version_not_found",
    }


async def test_update_assistant_unknown_graph(http: httpx.AsyncClient) -> None:
    response = await http.patch("/assistants/chat", json={"graph_id": "nope"})
    assert response.status_code == 404
    assert response.json()["code"] == "graph_not_found"


async def test_delete_assistant(client: LangGraphClient) -> None:
    created = await client.assistants.create("chat")
    await client.assistants.delete(created["assistant_id"])
    with pytest.raises(NotFoundError):
        await client.assistants.get(created["assistant_id"])
    with pytest.raises(NotFoundError):
        await client.assistants.delete(created["assistant_id"])


async def test_delete_assistant_with_threads(client: LangGraphClient) -> None:
    created = await client.assistants.create("chat")
    mine = await client.threads.create(metadata={"assistant_id": created["assistant_id"]})
    other = await client.threads.create(metadata={"assistant_id": "someone-else"})
    await client.assistants.delete(created["assistant_id"], delete_threads=True)
    with pytest.raises(NotFoundError):
        await client.threads.get(mine["thread_id"])
    assert (await client.threads.get(other["thread_id"]))["thread_id"] == other["thread_id"]


async def test_unknown_assistant_messages(http: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await http.get(f"/assistants/{missing}")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Assistant "{missing}" not found',
        "code": "assistant_not_found",
    }
    response = await http.get("/assistants/agnet")
    assert response.status_code == 404
    assert response.json()["detail"] == (
        'Assistant "agnet" not found; pass an assistant id (a UUID) or a graph name: '
        "chat, agent, approval"
    )


async def test_search_assistants_filters_and_pages(client: LangGraphClient) -> None:
    for index in range(5):
        await client.assistants.create(
            "agent", name=f"Helper {index}", metadata={"batch": "b1", "n": index}
        )
    assert await client.assistants.count(metadata={"batch": "b1"}) == 5
    assert await client.assistants.count(graph_id="agent") == 6
    assert await client.assistants.count(name="helper") == 5

    page1 = await client.assistants.search(
        metadata={"batch": "b1"}, limit=2, sort_by="name", sort_order="asc"
    )
    page2 = await client.assistants.search(
        metadata={"batch": "b1"}, limit=2, offset=2, sort_by="name", sort_order="asc"
    )
    assert [a["name"] for a in page1 + page2] == [f"Helper {i}" for i in range(4)]

    exact = await client.assistants.search(metadata={"batch": "b1", "n": 3})
    assert [a["name"] for a in exact] == ["Helper 3"]

    # `select` trims the fields: these are not whole Assistants, as the SDK declares.
    picked: list[Any] = await client.assistants.search(
        graph_id="chat", select=["assistant_id", "name"]
    )
    assert picked == [{"assistant_id": default_assistant_id("chat"), "name": "chat"}]


async def test_search_assistants_object_format_pages(client: LangGraphClient) -> None:
    for _ in range(3):
        await client.assistants.create("chat", metadata={"paged": True})
    first = await client.assistants.search(
        metadata={"paged": True}, limit=2, response_format="object"
    )
    assert len(first["assistants"]) == 2
    assert first["next"] == "2"
    last = await client.assistants.search(
        metadata={"paged": True}, limit=2, offset=2, response_format="object"
    )
    assert len(last["assistants"]) == 1
    assert last["next"] is None


async def test_search_assistants_limit_bounds(http: httpx.AsyncClient) -> None:
    response = await http.post("/assistants/search", json={"limit": 5000})
    assert response.status_code == 422
    assert response.json()["detail"] == (
        "limit: value should be less than or equal to 1000, got 5000"
    )
    response = await http.post("/assistants/search", json={"sort_by": "colour"})
    assert response.status_code == 422
    assert response.json()["detail"].startswith("sort_by: value should be 'assistant_id'")


async def test_assistant_graph_drawing(client: LangGraphClient) -> None:
    drawn = await client.assistants.get_graph("agent")
    node_ids = {node["id"] for node in drawn["nodes"]}
    assert {"__start__", "__end__", "tools"} <= node_ids
    assert {"source": "__start__", "target": "model"}.items() <= drawn["edges"][0].items() or any(
        edge["source"] == "__start__" for edge in drawn["edges"]
    )


async def test_assistant_schemas(client: LangGraphClient) -> None:
    schemas = await client.assistants.get_schemas("chat")
    assert schemas["graph_id"] == "chat"
    assert "messages" in json_of(schemas["input_schema"])["properties"]
    assert "messages" in json_of(schemas["state_schema"])["properties"]
    assert "model" in json_of(schemas["context_schema"])["properties"]


async def test_assistant_subgraphs_empty_for_flat_graph(client: LangGraphClient) -> None:
    assert await client.assistants.get_subgraphs("chat") == {}
