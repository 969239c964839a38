"""`/openapi.json` tells the truth (issue 11): what it declares is what the server does."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest

from agent_runtime.server import openapi

Json = dict[str, Any]


async def spec_of(http: httpx.AsyncClient) -> Json:
    response = await http.get("/openapi.json")
    assert response.status_code == 200
    spec: Json = response.json()
    return spec


def resolve(spec: Json, schema: Json) -> Json:
    if "$ref" in schema:
        found: Json = spec["components"]["schemas"][schema["$ref"].rsplit("/", 1)[-1]]
        return found
    return schema


def body_schema(spec: Json, path: str, method: str) -> Json:
    op = spec["paths"][path][method]
    return resolve(spec, op["requestBody"]["content"]["application/json"]["schema"])


async def test_ids_are_declared_uuids(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    for path, methods in spec["paths"].items():
        for op in methods.values():
            for parameter in op.get("parameters", []):
                if parameter["name"] in ("thread_id", "run_id", "checkpoint_id"):
                    assert parameter["schema"]["format"] == "uuid", (path, parameter)
    assistant = spec["paths"]["/assistants/{assistant_id}"]["get"]["parameters"][0]
    assert "format" not in assistant["schema"]  # a graph name names its default assistant
    assert body_schema(spec, "/threads", "post")["properties"]["thread_id"]["format"] == "uuid"
    assert body_schema(spec, "/assistants", "post")["properties"]["assistant_id"]["format"] == (
        "uuid"
    )
    ids = body_schema(spec, "/threads/search", "post")["properties"]["ids"]
    assert ids["items"]["format"] == "uuid"


@pytest.mark.parametrize(
    "spelling",
    [
        "{3f2b8a9e-4c1d-4e5f-9a6b-7c8d9e0f1a2b}",
        "urn:uuid:3f2b8a9e-4c1d-4e5f-9a6b-7c8d9e0f1a2b",
        "3f2b8a9e4c1d4e5f9a6b7c8d9e0f1a2b",
        "",
    ],
)
async def test_non_canonical_uuids_are_refused(http: httpx.AsyncClient, spelling: str) -> None:
    response = await http.post("/threads", json={"thread_id": spelling})
    assert response.status_code == 422
    assert response.json() == {
        "detail": f'thread_id must be a UUID, got "{spelling}"',
        "code": "invalid_id",
    }
    response = await http.post("/assistants", json={"graph_id": "chat", "assistant_id": spelling})
    assert response.status_code == 422
    assert (await http.post("/threads/count", json={})).json() == 0
    if spelling:
        assert (await http.get(f"/threads/{spelling}")).status_code == 422


async def test_upper_case_uuids_read_back_lower_case(http: httpx.AsyncClient) -> None:
    thread_id = str(uuid.uuid4())
    created = await http.post("/threads", json={"thread_id": thread_id.upper()})
    assert created.json()["thread_id"] == thread_id
    assert (await http.get(f"/threads/{thread_id.upper()}")).json()["thread_id"] == thread_id


async def test_streams_are_declared_event_streams(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    streams = {
        ("/threads/{thread_id}/runs/stream", "post"),
        ("/runs/stream", "post"),
        ("/threads/{thread_id}/runs/{run_id}/stream", "get"),
        ("/threads/{thread_id}/stream", "get"),
    }
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            content = op["responses"]["200"].get("content", {}) if "200" in op["responses"] else {}
            if (path, method) in streams:
                assert list(content) == ["text/event-stream"], path
            elif path != "/docs":
                assert "text/event-stream" not in content, path
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    # The thread stream stays open for the runs to come: read its headers only.
    async with http.stream("GET", f"/threads/{thread_id}/stream") as response:
        assert response.headers["content-type"].startswith("text/event-stream")


async def test_cancel_documents_202_and_200(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    responses = spec["paths"]["/threads/{thread_id}/runs/{run_id}/cancel"]["post"]["responses"]
    assert "202" in responses
    run = responses["200"]["content"]["application/json"]["schema"]
    assert resolve(spec, run)["title"] == "Run"


async def test_select_responses_require_no_field(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    for path, method in (
        ("/threads/search", "post"),
        ("/assistants/search", "post"),
        ("/threads/{thread_id}/runs", "get"),
    ):
        schema = spec["paths"][path][method]["responses"]["200"]["content"]["application/json"]
        items = resolve(spec, schema["schema"]["items"])
        assert "required" not in items, path
        assert "thread_id" in items["properties"] or "assistant_id" in items["properties"]
    # The full shapes still require their fields where no select applies.
    assert "thread_id" in spec["components"]["schemas"]["Thread"]["required"]
    thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    found = await http.post("/threads/search", json={"select": ["thread_id"]})
    assert found.json() == [{"thread_id": thread_id}]


async def test_store_timestamps_carry_a_time_zone(http: httpx.AsyncClient) -> None:
    put = await http.put("/store/items", json={"namespace": ["a"], "key": "k", "value": {}})
    assert put.status_code == 204
    item = (await http.get("/store/items", params={"namespace": "a", "key": "k"})).json()
    zoned = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?\+00:00$")
    assert zoned.match(item["created_at"]), item
    assert zoned.match(item["updated_at"]), item
    found = (await http.post("/store/items/search", json={"namespace_prefix": ["a"]})).json()
    assert zoned.match(found["items"][0]["created_at"])


async def test_refused_fields_are_not_advertised(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    run = body_schema(spec, "/threads/{thread_id}/runs", "post")["properties"]
    assert "feedback_keys" not in run
    # Accepted when the server traces to LangSmith (a 422 otherwise), so documented.
    tracer = resolve(spec, run["langsmith_tracer"])
    assert set(tracer["properties"]) == {"project_name", "example_id"}
    assert "supersteps" not in body_schema(spec, "/threads", "post")["properties"]
    response = await http.post("/runs", json={"assistant_id": "chat", "feedback_keys": ["x"]})
    assert response.status_code == 422
    assert response.json()["code"] == "unsupported_field"


async def test_required_bodies_are_marked(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    assert spec["paths"]["/assistants"]["post"]["requestBody"]["required"] is True
    assert spec["paths"]["/threads/{thread_id}/runs"]["post"]["requestBody"]["required"] is True
    assert spec["paths"]["/store/items"]["put"]["requestBody"]["required"] is True
    assert spec["paths"]["/runs/batch"]["post"]["requestBody"]["required"] is True
    assert spec["paths"]["/threads"]["post"]["requestBody"]["required"] is False
    assert spec["paths"]["/threads/search"]["post"]["requestBody"]["required"] is False
    assert (await http.post("/assistants")).status_code == 422
    assert (await http.post("/threads")).status_code == 200


async def test_bounds_are_declared(http: httpx.AsyncClient) -> None:
    spec = await spec_of(http)
    run = body_schema(spec, "/threads/{thread_id}/runs", "post")["properties"]
    assert run["after_seconds"]["maximum"] == 31536000
    search = body_schema(spec, "/threads/search", "post")["properties"]
    offset = search["offset"]
    assert (offset["type"], offset["minimum"], offset["maximum"]) == ("integer", 0, 2**63 - 1)


async def test_json_bodies_are_typed_strictly(http: httpx.AsyncClient) -> None:
    response = await http.post("/threads/count", json={"visible": 0})
    assert response.status_code == 422
    assert response.json()["detail"] == "visible: value should be a valid boolean, got 0"
    response = await http.post("/threads", content=b"\n")
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_json"


async def test_the_documents_first_build_leaves_the_event_loop_free(
    http: httpx.AsyncClient,
) -> None:
    # Built on first use, on a worker thread: a ticker on the server's loop (this test's)
    # keeps ticking while it is built (some 0.2 s or more), where on the loop it would tick
    # once, after the whole build.
    openapi._built.clear()
    loop = asyncio.get_running_loop()
    gaps: list[float] = []
    done = asyncio.Event()

    async def tick() -> None:
        last = loop.time()
        while not done.is_set():
            await asyncio.sleep(0.005)
            now = loop.time()
            gaps.append(now - last)
            last = now

    ticker = asyncio.create_task(tick())
    started = loop.time()
    response = await http.get("/openapi.json")
    took = loop.time() - started
    done.set()
    await ticker
    assert response.status_code == 200
    assert response.json()["paths"]
    assert len(gaps) >= 5, (gaps, took)
