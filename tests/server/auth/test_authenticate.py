"""Authentication with the auth fixture: every request, streams included, is authenticated
before any route runs; handler exceptions give their status or a 401, never a 500; the graph
sees the user; permissions and the store namespace per user apply."""

from __future__ import annotations

from pathlib import Path

import pytest
from langgraph_sdk import get_client

from tests.conftest import RunningServer, json_of, served
from tests.server.auth.conftest import AUTH_CONFIG, TOKENS, as_user


async def test_public_routes_answer_without_credentials(auth_server: RunningServer) -> None:
    async with as_user(auth_server, None) as anonymous:
        for path in ("/ok", "/info", "/docs", "/openapi.json"):
            assert (await anonymous.get(path)).status_code == 200, path
        spec = (await anonymous.get("/openapi.json")).json()
        refused = await anonymous.post("/threads", json={})

    assert spec["components"]["securitySchemes"] == {"bearer": {"type": "http", "scheme": "bearer"}}
    assert spec["security"] == [{"bearer": []}]
    assert refused.status_code == 401
    assert refused.json() == {"detail": "Missing token", "code": "unauthorized"}


async def test_handler_exceptions_give_their_status_or_a_401(auth_server: RunningServer) -> None:
    async with as_user(auth_server, None) as raw:
        teapot = await raw.get("/threads/search", headers={"Authorization": "Bearer teapot"})
        crash = await raw.post(
            "/threads/search", json={}, headers={"Authorization": "Bearer crash"}
        )
        invalid = await raw.post("/threads", json={}, headers={"Authorization": "Bearer nope"})

    assert teapot.status_code == 418
    assert teapot.json() == {"detail": "I am a teapot", "code": "auth_error"}
    assert crash.status_code == 401
    assert crash.json()["code"] == "unauthorized"
    assert invalid.status_code == 401
    assert invalid.headers["www-authenticate"] == "Bearer"


@pytest.mark.timeout(30)
async def test_a_stream_is_refused_before_any_event(auth_server: RunningServer) -> None:
    async with as_user(auth_server, None) as raw:
        body = {"assistant_id": "whoami", "input": {}}
        async with raw.stream(
            "POST", "/runs/stream", json=body, headers={"Authorization": "Bearer crash"}
        ) as response:
            text = (await response.aread()).decode()

    assert response.status_code == 401
    assert response.headers["content-type"] == "application/json"
    assert "event:" not in text


async def test_the_graph_sees_the_user_and_not_what_the_client_claims(
    auth_server: RunningServer,
) -> None:
    sdk = get_client(url=auth_server.url, headers={"Authorization": TOKENS["a"]})
    try:
        thread = await sdk.threads.create()
        forged = {"langgraph_auth_user_id": "root", "langgraph_auth_permissions": ["admin"]}
        values = json_of(
            await sdk.runs.wait(
                thread["thread_id"],
                "whoami",
                input={"notes": []},
                config={"configurable": {**forged, "langgraph_auth_user": {"identity": "root"}}},
            )
        )
        stateless = json_of(await sdk.runs.wait(None, "whoami", input={"notes": []}))
    finally:
        await sdk.http.client.aclose()

    assert json_of(thread["metadata"])["owner"] == "alice"
    for answer in (values, stateless):
        assert answer["user_id"] == "alice"
        assert answer["user_identity"] == "alice"
        assert answer["user_org"] == "acme"
        assert answer["permissions"] == ["threads:write", "reader"]


async def test_a_resumed_run_keeps_its_user_across_a_restart(database: Path) -> None:
    async with served(AUTH_CONFIG, database) as first, as_user(first, "b") as bob:
        thread_id = (await bob.post("/threads", json={})).json()["thread_id"]
        run = await bob.post(
            f"/threads/{thread_id}/runs",
            json={"assistant_id": "whoami", "input": {}, "after_seconds": 1},
        )
        assert run.status_code == 200
    async with served(AUTH_CONFIG, database) as second, as_user(second, "b") as bob:
        joined = await bob.get(f"/threads/{thread_id}/runs/{run.json()['run_id']}/join")

    assert joined.json()["user_id"] == "bob"
    assert joined.json()["user_org"] == "globex"


async def test_permissions_decide_per_action(auth_server: RunningServer) -> None:
    async with as_user(auth_server, "reader") as rita, as_user(auth_server, "a") as alice:
        created = await rita.post("/threads", json={})
        thread_id = (await alice.post("/threads", json={})).json()["thread_id"]
        alices = await alice.delete(f"/threads/{thread_id}")
        other = (await alice.post("/threads", json={})).json()["thread_id"]
        ritas = await rita.delete(f"/threads/{other}")

    assert created.status_code == 403
    assert created.json() == {"detail": "Needs threads:write", "code": "forbidden"}
    assert alices.status_code == 204
    assert ritas.status_code == 403
    assert ritas.json()["code"] == "forbidden"


async def test_each_user_has_a_store_namespace_of_their_own(auth_server: RunningServer) -> None:
    async with as_user(auth_server, "a") as alice, as_user(auth_server, "b") as bob:
        put = await alice.put(
            "/store/items", json={"namespace": ["notes"], "key": "k", "value": {"v": "secret"}}
        )
        alices = await alice.get("/store/items", params={"namespace": "notes", "key": "k"})
        bobs = await bob.get("/store/items", params={"namespace": "notes", "key": "k"})
        bob_search = await bob.post("/store/items/search", json={"namespace_prefix": ["notes"]})
        spaces = await alice.post("/store/namespaces", json={})
        bob_deletes = await bob.request(
            "DELETE", "/store/items", json={"namespace": ["notes"], "key": "k"}
        )
        still = await alice.get("/store/items", params={"namespace": "notes", "key": "k"})

    assert put.status_code == 204
    assert alices.json()["namespace"] == ["alice", "notes"]
    assert bobs.status_code == 404
    assert bob_search.json() == {"items": []}
    assert spaces.json()["namespaces"] == [["alice", "notes"]]
    assert bob_deletes.status_code == 204
    assert still.json()["value"] == {"v": "secret"}


async def test_a_preflight_is_answered_without_credentials(database: Path) -> None:
    from dataclasses import replace

    from agent_runtime.config import CorsConfig, load_config

    config = load_config(AUTH_CONFIG, database=database, environ={})
    cors = CorsConfig(allow_origins=("https://app.example",))
    server = await RunningServer(replace(config, http=replace(config.http, cors=cors))).start()
    try:
        async with as_user(server, None) as raw:
            preflight = await raw.options(
                "/threads",
                headers={
                    "Origin": "https://app.example",
                    "Access-Control-Request-Method": "POST",
                    "Access-Control-Request-Headers": "authorization",
                },
            )
            refused = await raw.post("/threads", json={}, headers={"Origin": "https://app.example"})
    finally:
        await server.stop()

    assert preflight.status_code == 204
    assert preflight.headers["access-control-allow-headers"] == "authorization"
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == "https://app.example"
