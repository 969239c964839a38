"""Thread features beyond LangGraph (issue 5): lifecycle, hidden threads, names and tags, the
search filters and sorts over them, and their place in /openapi.json."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import orjson
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import ConflictError, NotFoundError

from tests.conftest import json_of

HI: dict[str, Any] = {"messages": [{"role": "user", "content": "hi"}]}
WAY_OUT = {
    "locked": 'reopen it with PATCH {"lifecycle": "open"} first',
    "archived": "archived threads stay read-only; copy it to continue",
}
# The allowed moves; REACH brings a new thread to each starting point by allowed moves.
ALLOWED = [("open", "locked"), ("locked", "open"), ("open", "archived"), ("locked", "archived")]
REACH = {"open": [], "locked": ["locked"], "archived": ["archived"]}
NEW_FIELDS = (
    "lifecycle", "visible", "name", "tags", "usage", "run_count", "first_run_at", "last_run_at"
)  # fmt: skip


def read_only(thread_id: str, lifecycle: str, action: str) -> dict[str, str]:
    return {
        "detail": f'Thread "{thread_id}" is {lifecycle}, so it cannot {action}; '
        f"{WAY_OUT[lifecycle]}",
        "code": f"thread_{lifecycle}",
    }


async def set_lifecycle(client: LangGraphClient, thread_id: str, lifecycle: str) -> Any:
    return await client.http.patch(f"/threads/{thread_id}", json={"lifecycle": lifecycle})


async def thread_with_run(client: LangGraphClient) -> tuple[str, str]:
    """A thread that has run the chat graph once; returns (thread_id, run_id)."""
    thread = await client.threads.create()
    run = await client.runs.create(thread["thread_id"], "chat", input=HI)
    await client.runs.join(thread["thread_id"], run["run_id"])
    return thread["thread_id"], run["run_id"]


def ids(threads: list[Any]) -> list[str]:
    return [thread["thread_id"] for thread in threads]


# Lifecycle


async def test_new_thread_has_the_issue_5_fields(client: LangGraphClient) -> None:
    created = await client.threads.create()
    assert {key: json_of(created)[key] for key in NEW_FIELDS} == {
        "lifecycle": "open",
        "visible": True,
        "name": None,
        "tags": [],
        "usage": None,
        "run_count": 0,
        "first_run_at": None,
        "last_run_at": None,
    }


@pytest.mark.parametrize(("start", "wanted"), ALLOWED)
async def test_lifecycle_allowed_transition(
    client: LangGraphClient, start: str, wanted: str
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    for step in REACH[start]:
        await set_lifecycle(client, thread_id, step)
    updated = await set_lifecycle(client, thread_id, wanted)
    assert updated["lifecycle"] == wanted
    assert json_of(await client.threads.get(thread_id))["lifecycle"] == wanted


@pytest.mark.parametrize("wanted", ["open", "locked"])
async def test_lifecycle_leaving_archived_is_409(http: httpx.AsyncClient, wanted: str) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    assert (await http.patch(f"/threads/{thread_id}", json={"lifecycle": "archived"})).is_success
    response = await http.patch(f"/threads/{thread_id}", json={"lifecycle": wanted})
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{thread_id}" is archived and cannot become {wanted}; '
        "archived threads stay archived",
        "code": "lifecycle_transition",
    }
    assert (await http.get(f"/threads/{thread_id}")).json()["lifecycle"] == "archived"


async def test_lifecycle_unknown_value_is_422(http: httpx.AsyncClient) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    expected = {
        "detail": "lifecycle: value should be 'open', 'locked' or 'archived', got \"frozen\"",
        "code": "validation_error",
    }
    response = await http.patch(f"/threads/{thread_id}", json={"lifecycle": "frozen"})
    assert response.status_code == 422
    assert response.json() == expected
    for route in ("/threads/search", "/threads/count"):
        response = await http.post(route, json={"lifecycle": "frozen"})
        assert response.status_code == 422
        assert response.json() == expected
    assert (await http.get(f"/threads/{thread_id}")).json()["lifecycle"] == "open"


@pytest.mark.parametrize("lifecycle", ["locked", "archived"])
async def test_read_only_thread_refuses_new_runs(
    client: LangGraphClient, http: httpx.AsyncClient, lifecycle: str
) -> None:
    thread_id, _ = await thread_with_run(client)
    await set_lifecycle(client, thread_id, lifecycle)
    refusal = read_only(thread_id, lifecycle, "take new runs")
    with pytest.raises(ConflictError) as raised:
        await client.runs.create(thread_id, "chat", input=HI)
    assert raised.value.body == refusal
    body = {"assistant_id": "chat", "input": HI}
    response = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert response.status_code == 409
    assert response.json() == refusal
    async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        assert response.status_code == 409
        assert orjson.loads(await response.aread()) == refusal
    thread = await client.threads.get(thread_id)
    assert json_of(thread)["run_count"] == 1
    assert len(await client.runs.list(thread_id)) == 1


@pytest.mark.parametrize("lifecycle", ["locked", "archived"])
async def test_read_only_thread_refuses_state_updates_and_patches(
    client: LangGraphClient, http: httpx.AsyncClient, lifecycle: str
) -> None:
    thread_id, _ = await thread_with_run(client)
    before = await client.threads.get_state(thread_id)
    await set_lifecycle(client, thread_id, lifecycle)
    response = await http.post(f"/threads/{thread_id}/state", json={"values": HI})
    assert response.status_code == 409
    assert response.json() == read_only(thread_id, lifecycle, "have its state updated")
    for change in ({"metadata": {"a": 1}}, {"name": "n"}, {"tags": ["t"]}, {"visible": False}):
        response = await http.patch(f"/threads/{thread_id}", json=change)
        assert response.status_code == 409
        assert response.json() == read_only(thread_id, lifecycle, "be changed")
    assert await client.threads.get_state(thread_id) == before
    thread = json_of(await client.threads.get(thread_id))
    assert (thread["name"], thread["tags"], thread["visible"]) == (None, [], True)


@pytest.mark.parametrize("lifecycle", ["locked", "archived"])
async def test_read_only_thread_keeps_answering_reads(
    client: LangGraphClient, http: httpx.AsyncClient, lifecycle: str
) -> None:
    thread_id, run_id = await thread_with_run(client)
    state = await client.threads.get_state(thread_id)
    history = await client.threads.get_history(thread_id)
    await set_lifecycle(client, thread_id, lifecycle)

    assert json_of(await client.threads.get(thread_id))["lifecycle"] == lifecycle
    assert await client.threads.get_state(thread_id) == state
    assert await client.threads.get_history(thread_id) == history
    assert [run["run_id"] for run in await client.runs.list(thread_id)] == [run_id]
    assert (await client.runs.get(thread_id, run_id))["status"] == "success"
    assert await client.runs.join(thread_id, run_id) == state["values"]
    async with http.stream("GET", f"/threads/{thread_id}/runs/{run_id}/stream") as response:
        assert response.status_code == 200
        assert response.headers["content-type"].startswith("text/event-stream")
        await response.aread()
    assert await client.http.get(f"/threads/{thread_id}/tool-calls") == []


async def test_locked_thread_reopens_for_writes(client: LangGraphClient) -> None:
    thread_id, _ = await thread_with_run(client)
    await set_lifecycle(client, thread_id, "locked")
    reopened = await set_lifecycle(client, thread_id, "open")
    assert reopened["lifecycle"] == "open"
    result = await client.runs.wait(thread_id, "chat", input=HI)
    assert isinstance(result, dict)
    assert len(result["messages"]) == 4
    updated = await client.threads.update(thread_id, metadata={"after": "reopen"})
    assert json_of(updated["metadata"])["after"] == "reopen"


async def test_archived_thread_copy_is_open(client: LangGraphClient) -> None:
    thread_id, _ = await thread_with_run(client)
    await set_lifecycle(client, thread_id, "archived")
    copy = await client.http.post(f"/threads/{thread_id}/copy", json=None)
    assert copy["lifecycle"] == "open"
    assert copy["values"] == (await client.threads.get(thread_id))["values"]
    result = await client.runs.wait(copy["thread_id"], "chat", input=HI)
    assert isinstance(result, dict)
    assert len(result["messages"]) == 4


async def test_delete_locked_thread_is_409_until_unlocked(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    await set_lifecycle(client, thread_id, "locked")
    with pytest.raises(ConflictError) as raised:
        await client.threads.delete(thread_id)
    assert raised.value.body == read_only(thread_id, "locked", "be deleted")
    assert (await client.threads.get(thread_id))["thread_id"] == thread_id
    await set_lifecycle(client, thread_id, "open")
    await client.threads.delete(thread_id)
    with pytest.raises(NotFoundError):
        await client.threads.get(thread_id)


async def test_delete_archived_thread(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    thread_id, _ = await thread_with_run(client)
    await set_lifecycle(client, thread_id, "archived")
    response = await http.delete(f"/threads/{thread_id}")
    assert response.status_code == 204
    response = await http.get(f"/threads/{thread_id}")
    assert response.status_code == 404
    assert response.json()["code"] == "thread_not_found"


# Hidden threads


async def test_hidden_thread_is_reachable_by_id_but_left_out_of_search_and_count(
    client: LangGraphClient,
) -> None:
    shown = await client.threads.create()
    hidden = await client.http.post("/threads", json={"visible": False, "tags": ["t"]})
    assert hidden["visible"] is False
    assert json_of(await client.threads.get(hidden["thread_id"]))["visible"] is False

    assert ids(await client.threads.search()) == [shown["thread_id"]]
    assert ids(await client.threads.search(ids=[hidden["thread_id"]])) == []
    assert await client.threads.count() == 1
    assert await client.http.post("/threads/search", json={"tags": ["t"]}) == []

    hidden_only = await client.http.post("/threads/search", json={"visible": False})
    assert ids(hidden_only) == [hidden["thread_id"]]
    assert await client.http.post("/threads/count", json={"visible": False}) == 1
    body = {"visible": False, "tags": ["t"]}
    assert ids(await client.http.post("/threads/search", json=body)) == [hidden["thread_id"]]


async def test_patch_hides_and_shows_a_thread(client: LangGraphClient) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    hidden = await client.http.patch(f"/threads/{thread_id}", json={"visible": False})
    assert hidden["visible"] is False
    assert await client.threads.count() == 0
    assert await client.threads.search() == []
    shown = await client.http.patch(f"/threads/{thread_id}", json={"visible": True})
    assert shown["visible"] is True
    assert ids(await client.threads.search()) == [thread_id]


async def test_kept_stateless_run_leaves_a_hidden_thread(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    body = {"assistant_id": "chat", "input": HI, "on_completion": "keep"}
    response = await http.post("/runs/wait", json=body)
    assert response.status_code == 200
    thread_id = response.headers["content-location"].split("/")[2]
    kept = await client.threads.get(thread_id)
    assert json_of(kept)["visible"] is False
    assert len(json_of(kept["values"])["messages"]) == 2
    assert await client.threads.search() == []
    assert await client.threads.count() == 0
    hidden = await client.http.post("/threads/search", json={"visible": False})
    assert ids(hidden) == [thread_id]

    # on_completion defaults to delete; the thread goes just after the run ends.
    await client.runs.wait(None, "chat", input=HI)
    for _ in range(50):
        if await client.http.post("/threads/count", json={"visible": False}) == 1:
            break
        await asyncio.sleep(0.02)
    assert ids(await client.http.post("/threads/search", json={"visible": False})) == [thread_id]


# Names and tags


async def test_name_and_tags_on_create_and_patch(client: LangGraphClient) -> None:
    created = await client.http.post(
        "/threads", json={"name": "Quarterly report", "tags": ["work", "q3", "work"]}
    )
    thread_id = created["thread_id"]
    assert (created["name"], created["tags"]) == ("Quarterly report", ["work", "q3"])

    renamed = await client.http.patch(f"/threads/{thread_id}", json={"name": "Q3 report"})
    assert (renamed["name"], renamed["tags"]) == ("Q3 report", ["work", "q3"])
    retagged = await client.http.patch(f"/threads/{thread_id}", json={"tags": ["done"]})
    assert (retagged["name"], retagged["tags"]) == ("Q3 report", ["done"])
    untouched = await client.threads.update(thread_id, metadata={"k": 1})
    assert (json_of(untouched)["name"], json_of(untouched)["tags"]) == ("Q3 report", ["done"])


async def test_name_and_tag_limits_on_create_and_patch(http: httpx.AsyncClient) -> None:
    at_limit = {"name": "n" * 200, "tags": [f"{i:064d}" for i in range(20)]}
    created = await http.post("/threads", json=at_limit)
    assert created.status_code == 200
    assert (created.json()["name"], created.json()["tags"]) == (at_limit["name"], at_limit["tags"])
    thread_id = created.json()["thread_id"]

    too_many = [f"t{i}" for i in range(21)]
    refusals: list[tuple[dict[str, Any], str]] = [
        (
            {"name": "n" * 201},
            f'name: string should have at most 200 characters, got "{"n" * 76}...',
        ),
        (
            {"tags": too_many},
            "tags: list should have at most 20 items after validation, not 21, got "
            + orjson.dumps(too_many).decode()[:77]
            + "...",
        ),
        (
            {"tags": ["ok", "x" * 65]},
            f'tags.1: string should have at most 64 characters, got "{"x" * 65}"',
        ),
        ({"tags": [""]}, 'tags.0: string should have at least 1 character, got ""'),
    ]
    for body, detail in refusals:
        for response in (
            await http.post("/threads", json=body),
            await http.patch(f"/threads/{thread_id}", json=body),
        ):
            assert response.status_code == 422
            assert response.json() == {"detail": detail, "code": "validation_error"}
    assert (await http.post("/threads/count", json={})).json() == 1


async def test_run_tags_are_added_to_the_thread(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = (await client.http.post("/threads", json={"tags": ["base"]}))["thread_id"]
    await client.runs.wait(thread_id, "chat", input=HI, config={"tags": ["cfg", "base"]})
    assert json_of(await client.threads.get(thread_id))["tags"] == ["base", "cfg"]
    body = {"assistant_id": "chat", "input": HI, "config": {"tags": ["cfg"]}, "tags": ["top"]}
    response = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert response.status_code == 200
    assert json_of(await client.threads.get(thread_id))["tags"] == ["base", "cfg", "top"]

    fresh = "7a0c8a1e-5a41-4a0e-9a55-4a4f0c3b1d01"
    body = {"assistant_id": "chat", "input": HI, "tags": ["new"], "if_not_exists": "create"}
    assert (await http.post(f"/threads/{fresh}/runs/wait", json=body)).status_code == 200
    assert json_of(await client.threads.get(fresh))["tags"] == ["new"]


async def test_run_tags_are_checked(http: httpx.AsyncClient) -> None:
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    cases: list[tuple[dict[str, Any], str, str]] = [
        ({"config": {"tags": "solo"}}, "config.tags: must be a list of strings", "invalid_request"),
        (
            {"config": {"tags": ["x" * 65]}},
            "config.tags: each tag must be 1 to 64 characters",
            "invalid_request",
        ),
        (
            {"tags": ["x" * 65]},
            f'tags.0: string should have at most 64 characters, got "{"x" * 65}"',
            "validation_error",
        ),
    ]
    for extra, detail, code in cases:
        body = {"assistant_id": "chat", "input": HI, **extra}
        response = await http.post(f"/threads/{thread_id}/runs", json=body)
        assert response.status_code == 422
        assert response.json() == {"detail": detail, "code": code}
    assert (await http.get(f"/threads/{thread_id}")).json()["run_count"] == 0


async def test_runs_never_push_a_thread_past_20_tags(http: httpx.AsyncClient) -> None:
    tags = [f"t{i}" for i in range(20)]
    thread_id = (await http.post("/threads", json={"tags": tags})).json()["thread_id"]
    body = {"assistant_id": "chat", "input": HI, "tags": ["one-too-many"]}
    await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    thread = (await http.get(f"/threads/{thread_id}")).json()
    assert len(thread["tags"]) <= 20, thread["tags"]


# Search filters and sorts


async def test_search_and_count_filter_by_tags_name_and_lifecycle(client: LangGraphClient) -> None:
    async def make(name: str | None, tags: list[str]) -> str:
        body: dict[str, Any] = {"tags": tags} if name is None else {"name": name, "tags": tags}
        found: str = (await client.http.post("/threads", json=body))["thread_id"]
        return found

    report = await make("Weekly Report", ["work", "urgent"])
    plans = await make("weekend plans", ["home"])
    unnamed = await make(None, ["work"])
    await set_lifecycle(client, unnamed, "locked")
    await set_lifecycle(client, plans, "archived")

    cases: list[tuple[dict[str, Any], list[str]]] = [
        ({"tags": ["work"]}, [unnamed, report]),
        ({"tags": ["work", "urgent"]}, [report]),
        ({"tags": ["urgent", "work"]}, [report]),
        ({"tags": ["work", "home"]}, []),
        ({"tags": ["wor"]}, []),
        ({"name": "WEEK"}, [plans, report]),
        ({"name": "report"}, [report]),
        ({"name": "end pl"}, [plans]),
        ({"name": "nothing like it"}, []),
        ({"lifecycle": "open"}, [report]),
        ({"lifecycle": "locked"}, [unnamed]),
        ({"lifecycle": "archived"}, [plans]),
        ({"tags": ["work"], "lifecycle": "locked"}, [unnamed]),
        ({"tags": ["work"], "name": "weekly"}, [report]),
    ]
    for body, expected in cases:
        found = await client.http.post("/threads/search", json=body)
        assert sorted(ids(found)) == sorted(expected), body
        assert await client.http.post("/threads/count", json=body) == len(expected), body


async def test_search_sorts_by_tokens_runs_and_last_run(client: LangGraphClient) -> None:
    async def tagged() -> str:
        found: str = (await client.http.post("/threads", json={"tags": ["sorted"]}))["thread_id"]
        return found

    busy, quiet, idle = await tagged(), await tagged(), await tagged()
    for text in ("hello there", "and again"):
        turn: dict[str, Any] = {"messages": [{"role": "user", "content": text}]}
        await client.runs.wait(busy, "chat", input=turn)
    await client.runs.wait(quiet, "chat", input=HI)

    async def order(sort_by: str, sort_order: str) -> list[str]:
        body = {"tags": ["sorted"], "sort_by": sort_by, "sort_order": sort_order}
        return ids(await client.http.post("/threads/search", json=body))

    assert await order("total_tokens", "desc") == [busy, quiet, idle]
    assert await order("total_tokens", "asc") == [idle, quiet, busy]
    assert await order("run_count", "desc") == [busy, quiet, idle]
    assert await order("run_count", "asc") == [idle, quiet, busy]
    # A thread that never ran has no last run: it sorts last either way.
    assert await order("last_run_at", "desc") == [quiet, busy, idle]
    assert await order("last_run_at", "asc") == [busy, quiet, idle]

    threads = {t["thread_id"]: t for t in await client.threads.search()}
    assert json_of(threads[busy])["run_count"] == 2
    assert json_of(threads[idle])["usage"] is None


# OpenAPI


async def openapi(http: httpx.AsyncClient) -> dict[str, Any]:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def properties(document: dict[str, Any], schema: str) -> set[str]:
    return set(document["components"]["schemas"][schema]["properties"])


async def test_openapi_lists_thread_fields(http: httpx.AsyncClient) -> None:
    document = await openapi(http)
    thread = document["components"]["schemas"]["Thread"]["properties"]
    assert set(NEW_FIELDS) <= set(thread)
    assert thread["lifecycle"]["enum"] == ["open", "locked", "archived"]
    assert thread["usage"]["anyOf"][0] == {"$ref": "#/components/schemas/Usage"}
    assert {"name", "tags", "visible"} <= properties(document, "ThreadCreate")
    assert {"lifecycle", "name", "tags", "visible"} <= properties(document, "ThreadUpdate")
    for schema in ("ThreadSearch", "ThreadCount"):
        assert {"tags", "name", "lifecycle", "visible"} <= properties(document, schema)
    sort_by = document["components"]["schemas"]["ThreadSearch"]["properties"]["sort_by"]
    assert {"total_tokens", "cost_usd", "run_count", "last_run_at"} <= set(sort_by["enum"])
    assert "tags" in properties(document, "RunCreate")
    assert "usage" in properties(document, "Run")
    usage = {"input_tokens", "output_tokens", "total_tokens", "cost_usd"}
    assert properties(document, "Usage") == {*usage, "by_model"}
    assert properties(document, "ModelUsage") == usage


async def test_openapi_lists_tool_call_route_and_shape(http: httpx.AsyncClient) -> None:
    document = await openapi(http)
    operation = document["paths"]["/threads/{thread_id}/tool-calls"]["get"]
    success = operation["responses"]["200"]["content"]["application/json"]["schema"]
    assert success == {"type": "array", "items": {"$ref": "#/components/schemas/ToolCall"}}
    assert properties(document, "ToolCall") == {
        "id", "name", "args", "status", "result", "error", "run_id", "checkpoint_id",
        "started_at", "duration_ms",
    }  # fmt: skip
    status = document["components"]["schemas"]["ToolCall"]["properties"]["status"]
    assert status["enum"] == ["success", "error"]


async def test_openapi_lists_tool_call_filters(http: httpx.AsyncClient) -> None:
    operation = (await openapi(http))["paths"]["/threads/{thread_id}/tool-calls"]["get"]
    query = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    assert query == {"run_id", "name", "limit", "offset"}


async def test_openapi_describes_prune(http: httpx.AsyncClient) -> None:
    document = await openapi(http)
    operation = document["paths"]["/threads/prune"]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    assert body == {"$ref": "#/components/schemas/ThreadPrune"}
    prune = document["components"]["schemas"]["ThreadPrune"]
    assert prune["required"] == ["thread_ids"]
    assert prune["properties"]["strategy"]["enum"] == ["delete", "keep_latest"]
    answer = operation["responses"]["200"]["content"]["application/json"]["schema"]
    if "$ref" in answer:
        answer = document["components"]["schemas"][answer["$ref"].rsplit("/", 1)[1]]
    assert {"pruned_count", "skipped"} <= set(answer.get("properties", {}))


@pytest.mark.parametrize("lifecycle", ["locked", "archived"])
async def test_read_only_thread_refuses_run_deletion(
    client: LangGraphClient, http: httpx.AsyncClient, lifecycle: str
) -> None:
    thread_id, run_id = await thread_with_run(client)
    await set_lifecycle(client, thread_id, lifecycle)
    response = await http.delete(f"/threads/{thread_id}/runs/{run_id}")
    assert response.status_code == 409
    assert response.json() == read_only(thread_id, lifecycle, "have its runs deleted")
    assert (await client.runs.get(thread_id, run_id))["run_id"] == run_id


async def test_a_run_restarts_the_thread_ttl(client: LangGraphClient, server: Any) -> None:
    # Our API takes fractional minutes; the SDK types `ttl` as whole minutes.
    thread = await client.threads.create(ttl=0.02)  # type: ignore[arg-type]  # 1.2 s
    await asyncio.sleep(0.8)
    await client.runs.wait(thread["thread_id"], "chat", input=HI)
    await asyncio.sleep(0.6)
    # 1.4 s after creation but 0.6 s after the run: not expired yet.
    assert await server.services().storage.sweep_expired_threads() == 0
    await asyncio.sleep(0.8)
    assert await server.services().storage.sweep_expired_threads() == 1


async def test_search_text_matches_name_or_first_message(http: httpx.AsyncClient) -> None:
    async def thread(name: str | None, first: str | None) -> str:
        made = (await http.post("/threads", json={"name": name} if name else {})).json()
        if first is not None:
            body = {"messages": [{"role": "user", "content": first}], "assistant_id": "chat"}
            added = await http.post(f"/threads/{made['thread_id']}/messages", json=body)
            assert added.status_code == 200, added.text
            later = {"messages": [{"role": "user", "content": "Refund later"}]}
            await http.post(f"/threads/{made['thread_id']}/messages", json=later)
        return str(made["thread_id"])

    by_name = await thread("REFUND for Ada", None)
    by_message = await thread(None, "I want a refund, please")
    await thread("other", "hello")  # its second message says refund: only the first counts
    await thread(None, None)

    found = await http.post("/threads/search", json={"text": "Refund", "select": ["thread_id"]})
    counted = await http.post("/threads/count", json={"text": "refund"})
    assert {t["thread_id"] for t in found.json()} == {by_name, by_message}
    assert counted.json() == 2
    empty = await http.post("/threads/search", json={"text": ""})
    assert empty.status_code == 422
    assert "text" in empty.json()["detail"]
