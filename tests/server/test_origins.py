"""Browser origins over real HTTP: CORS preflights with Private Network Access, CORS headers on
answers, and the 403 for state-changing requests from an origin that is not allowed."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import httpx
import pytest

from agent_runtime.cli import dev_defaults
from agent_runtime.config import CorsConfig, HttpConfig, RuntimeConfig
from agent_runtime.server.origins import OriginPolicy, server_origin
from tests.conftest import RunningServer, example_config, raw_client

EVIL = "https://evil.example"
UI = "http://localhost:3000"
STUDIO = "https://smith.langchain.com"


def _refusal(origin: str) -> dict[str, str]:
    return {
        "detail": f"Requests from origin {origin} are not allowed; to allow it, add it to "
        "http.cors.allow_origins in langgraph.json (which replaces the development default of "
        "localhost pages and LangGraph Studio)",
        "code": "origin_not_allowed",
    }


def _preflight(origin: str, method: str = "POST", **extra: str) -> dict[str, str]:
    return {
        "Origin": origin,
        "Access-Control-Request-Method": method,
        "Access-Control-Request-Headers": "content-type,x-api-key",
        **extra,
    }


async def _serving(config: RuntimeConfig) -> AsyncIterator[httpx.AsyncClient]:
    running = await RunningServer(config).start()
    try:
        async with raw_client(running) as http:
            yield http
    finally:
        await running.stop()


@pytest.fixture
async def dev(database: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _serving(dev_defaults(example_config(database))):
        yield http


@pytest.fixture
async def serve(database: Path) -> AsyncIterator[httpx.AsyncClient]:
    async for http in _serving(example_config(database)):
        yield http


@pytest.mark.parametrize(
    "origin",
    [UI, STUDIO, "http://127.0.0.1:5173", "https://localhost", "http://[::1]:8080"],
)
async def test_dev_answers_preflights_from_local_pages_and_studio(
    dev: httpx.AsyncClient, origin: str
) -> None:
    response = await dev.options(
        "/threads/search",
        headers=_preflight(origin, **{"Access-Control-Request-Private-Network": "true"}),
    )

    assert response.status_code == 204
    assert response.headers["access-control-allow-origin"] == origin
    assert response.headers["access-control-allow-private-network"] == "true"
    assert response.headers["access-control-allow-methods"] == (
        "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
    )
    assert response.headers["access-control-allow-headers"] == "content-type, x-api-key"
    assert response.headers["access-control-max-age"] == "600"
    assert response.headers["vary"] == "Origin"
    assert "access-control-allow-credentials" not in response.headers


async def test_preflight_without_private_network_question_gets_no_such_answer(
    dev: httpx.AsyncClient,
) -> None:
    response = await dev.options("/threads", headers=_preflight(UI))

    assert response.status_code == 204
    assert "access-control-allow-private-network" not in response.headers


@pytest.mark.parametrize(
    "origin",
    [EVIL, "http://localhost.evil.example", "http://evil.example/http://localhost", "null"],
)
async def test_dev_refuses_preflights_from_other_origins(
    dev: httpx.AsyncClient, origin: str
) -> None:
    response = await dev.options("/threads", headers=_preflight(origin))

    assert response.status_code == 403
    assert response.json() == _refusal(origin)
    assert "access-control-allow-origin" not in response.headers


async def test_allowed_origin_gets_cors_headers_on_streamed_answers(dev: httpx.AsyncClient) -> None:
    thread = (await dev.post("/threads", json={}, headers={"Origin": UI})).json()

    async with dev.stream(
        "POST",
        f"/threads/{thread['thread_id']}/runs/stream",
        json={"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}},
        headers={"Origin": UI},
    ) as response:
        body = (await response.aread()).decode()

    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == UI
    assert response.headers["access-control-expose-headers"] == "Content-Location, Location"
    assert response.headers["vary"] == "Origin"
    assert body.startswith("event: metadata\n")
    assert "event: error" not in body


async def test_simple_cross_site_post_is_refused_before_the_run(dev: httpx.AsyncClient) -> None:
    thread_id = (await dev.post("/threads", json={})).json()["thread_id"]
    body = '{"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}}'

    for path in (f"/threads/{thread_id}/runs/wait", "/runs/wait", "/threads"):
        response = await dev.post(
            path, content=body, headers={"Origin": EVIL, "Content-Type": "text/plain"}
        )
        assert response.status_code == 403, path
        assert response.json() == _refusal(EVIL)
        assert "access-control-allow-origin" not in response.headers

    assert (await dev.get(f"/threads/{thread_id}/runs")).json() == []
    assert (await dev.post("/threads/count", json={})).json() == 1


async def test_json_sent_as_text_plain_by_an_allowed_origin_is_read(
    dev: httpx.AsyncClient,
) -> None:
    headers = {"Origin": STUDIO, "Content-Type": "text/plain;charset=UTF-8"}

    thread = await dev.post("/threads", content='{"metadata": {"from": "studio"}}', headers=headers)
    thread_id = thread.json()["thread_id"]
    run = await dev.post(
        f"/threads/{thread_id}/runs/wait",
        content='{"assistant_id": "chat", "input": {"messages": [{"role": "user", '
        '"content": "hi"}]}}',
        headers=headers,
    )
    broken = await dev.post("/threads", content="{not json", headers=headers)

    assert thread.status_code == 200
    assert thread.json()["metadata"] == {"from": "studio"}
    assert run.status_code == 200
    assert [m["type"] for m in run.json()["messages"]] == ["human", "ai"]
    assert broken.status_code == 422
    assert broken.json()["code"] == "invalid_json"


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE"])
async def test_every_state_changing_method_is_refused_from_other_origins(
    dev: httpx.AsyncClient, method: str
) -> None:
    thread_id = (await dev.post("/threads", json={})).json()["thread_id"]

    response = await dev.request(
        method, f"/threads/{thread_id}", json={"metadata": {"x": 1}}, headers={"Origin": "null"}
    )

    assert response.status_code == 403
    assert response.json() == _refusal("null")
    assert (await dev.get(f"/threads/{thread_id}")).json()["metadata"] == {}


async def test_reads_from_other_origins_get_no_cors_headers(dev: httpx.AsyncClient) -> None:
    response = await dev.get("/ok", headers={"Origin": EVIL})

    assert response.status_code == 200
    assert "access-control-allow-origin" not in response.headers


async def test_requests_without_origin_and_from_the_same_origin_pass(
    serve: httpx.AsyncClient,
) -> None:
    own = str(serve.base_url).rstrip("/")

    plain = await serve.post("/threads", json={})
    same = await serve.post("/threads", json={}, headers={"Origin": own})

    assert plain.status_code == 200
    assert same.status_code == 200
    assert same.headers["access-control-allow-origin"] == own


async def test_serve_allows_no_other_origin_by_default(serve: httpx.AsyncClient) -> None:
    preflight = await serve.options("/threads", headers=_preflight(UI))
    post = await serve.post("/threads", json={}, headers={"Origin": UI})

    assert preflight.status_code == 403
    assert post.status_code == 403
    assert post.json() == _refusal(UI)
    assert (await serve.post("/threads/count", json={})).json() == 0


async def test_configured_cors_replaces_the_dev_default(database: Path) -> None:
    app = "https://app.example.com"
    cors = CorsConfig(
        allow_origins=(app,),
        allow_methods=("GET", "POST"),
        allow_headers=("Content-Type",),
        allow_credentials=True,
        max_age=60,
    )
    config = replace(example_config(database), http=HttpConfig(cors=cors))

    async for http in _serving(dev_defaults(config)):
        local = await http.post("/threads", json={}, headers={"Origin": UI})
        allowed = await http.options(
            "/threads",
            headers={
                "Origin": app,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "Content-Type",
            },
        )
        put = await http.options(
            "/threads", headers={"Origin": app, "Access-Control-Request-Method": "PUT"}
        )
        header = await http.options("/threads", headers=_preflight(app))
        created = await http.post("/threads", json={}, headers={"Origin": app})

    assert local.status_code == 403
    assert allowed.status_code == 204
    assert allowed.headers["access-control-allow-methods"] == "GET, POST"
    assert allowed.headers["access-control-allow-credentials"] == "true"
    assert allowed.headers["access-control-max-age"] == "60"
    assert put.status_code == 403
    assert put.json() == {
        "detail": "Method PUT is not in http.cors.allow_methods in langgraph.json; "
        "add it there to allow it from browsers",
        "code": "cors_method_not_allowed",
    }
    assert header.status_code == 403
    assert header.json() == {
        "detail": "Header x-api-key is not in http.cors.allow_headers in langgraph.json; "
        "add it there to allow it from browsers",
        "code": "cors_header_not_allowed",
    }
    assert created.status_code == 200
    assert created.headers["access-control-allow-credentials"] == "true"


def test_origin_policy_matches_whole_origins() -> None:
    dev = OriginPolicy(dev_defaults(example_config(Path("x.sqlite"))).http.cors or CorsConfig())
    anyone = OriginPolicy(CorsConfig(allow_origins=("*",)))
    none = OriginPolicy(CorsConfig())

    assert dev.allows("http://localhost:3000")
    assert dev.allows("https://[::1]")
    assert dev.allows("http://127.0.0.1:2024")
    assert not dev.allows("http://127.0.0.2:3000")
    assert not dev.allows("http://localhost:3000.evil.example")
    assert not dev.allows("https://smith.langchain.com.evil.example")
    assert not dev.allows("ftp://localhost")
    assert anyone.allows(EVIL)
    assert not anyone.allows("null")
    assert none.allows("http://127.0.0.1:2024", own="http://127.0.0.1:2024")
    assert not none.allows("http://127.0.0.1:2025", own="http://127.0.0.1:2024")


@pytest.mark.parametrize(
    ("scheme", "host", "origin"),
    [
        ("http", "example.com:80", "http://example.com"),
        ("https", "Example.com", "https://example.com"),
        ("https", "example.com:443", "https://example.com"),
        ("http", "[::1]:2024", "http://[::1]:2024"),
        ("http", "[::1]", "http://[::1]"),
    ],
)
async def testserver_origin_leaves_out_default_ports(scheme: str, host: str, origin: str) -> None:
    scope = {"type": "http", "scheme": scheme, "headers": [(b"host", host.encode())]}

    assert server_origin(scope) == origin
