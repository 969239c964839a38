"""Health, info, the OpenAPI document and the generic error shapes."""

from __future__ import annotations

import httpx

from agent_runtime import __version__
from agent_runtime.server.app import operations


async def test_ok(http: httpx.AsyncClient) -> None:
    response = await http.get("/ok")
    assert response.status_code == 200
    assert response.json() == {"ok": True}


async def test_info(http: httpx.AsyncClient) -> None:
    body = (await http.get("/info")).json()
    assert body["version"] == __version__
    assert body["graphs"] == ["chat", "agent", "approval"]
    assert body["flags"]["assistants"] is True


async def test_openapi_describes_every_route(http: httpx.AsyncClient) -> None:
    spec = (await http.get("/openapi.json")).json()
    assert spec["openapi"] == "3.1.0"
    declared = {(op.method.lower(), op.path) for op in operations()}
    described = {(method, path) for path, ops in spec["paths"].items() for method in ops}
    assert described == declared
    create = spec["paths"]["/assistants"]["post"]
    body_schema = create["requestBody"]["content"]["application/json"]["schema"]
    assert "$ref" in body_schema or "properties" in body_schema
    assert create["summary"].startswith("Create an assistant")


async def test_docs_page(http: httpx.AsyncClient) -> None:
    response = await http.get("/docs")
    assert response.status_code == 200
    assert "/threads/search" in response.text


async def test_unknown_route_and_method(http: httpx.AsyncClient) -> None:
    response = await http.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"detail": "No route matches GET /nope", "code": "route_not_found"}
    response = await http.put("/ok")
    assert response.status_code == 405
    assert response.json() == {
        "detail": "PUT is not allowed on /ok",
        "code": "method_not_allowed",
    }


async def test_body_over_limit_is_413(http: httpx.AsyncClient) -> None:
    huge = {"metadata": {"blob": "x" * (11 * 1024 * 1024)}}
    response = await http.post("/threads", json=huge)
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"
    assert response.json()["detail"].endswith(
        "over the limit of 10485760 bytes (agent_runtime.max_body_bytes in langgraph.json)"
    )
