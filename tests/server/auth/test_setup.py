"""The rest of issue 14 that needs no storage change: the operation table is complete, auth
files fail to load with one message each, the shared API key, custom apps and middleware,
and `http.disable_*`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import Auth, get_client

from agent_runtime.config import load_config
from agent_runtime.server.app import operations
from agent_runtime.server.auth import (
    OPERATION_ACTIONS,
    PUBLIC,
    RESOURCE_ACTIONS,
    AuthLoadError,
    Authorizer,
    load_auth,
    matches_filter,
)
from agent_runtime.user import AuthUser
from tests.conftest import ROOT, RunningServer

FIXTURE = ROOT / "tests" / "fixtures" / "auth"


def test_every_operation_is_a_langgraph_resource_and_action() -> None:
    names = {op.handler.__name__ for op in operations()}

    assert names == set(OPERATION_ACTIONS)
    for rule in OPERATION_ACTIONS.values():
        if not isinstance(rule, str):
            resource, action = rule
            assert action in RESOURCE_ACTIONS[resource]
        else:
            assert rule == PUBLIC


async def test_the_most_specific_handler_wins() -> None:
    auth = Auth()
    called: list[str] = []

    @auth.on
    async def everything(ctx: Auth.types.AuthContext, value: Any) -> bool:
        called.append("global")
        return False

    @auth.on.threads
    async def threads(ctx: Auth.types.AuthContext, value: Any) -> None:
        called.append("threads")

    @auth.on.threads.read
    async def read(ctx: Auth.types.AuthContext, value: Any) -> dict[str, str]:
        called.append(f"read by {ctx.user.identity} as {ctx.resource}.{ctx.action}")
        return {"owner": ctx.user.identity}

    @auth.on(actions="search")
    async def searches(ctx: Auth.types.AuthContext, value: Any) -> None:
        called.append("any search")

    authorizer = Authorizer(auth)
    user = AuthUser({"identity": "ann", "permissions": ["p"]})

    assert await authorizer.authorize(user, "threads", "read", {}) == {"owner": "ann"}
    assert await authorizer.authorize(user, "threads", "update", {}) is None
    assert await authorizer.authorize(user, "assistants", "search", {}) is None
    with pytest.raises(Exception) as refused:
        await authorizer.authorize(user, "crons", "create", {})
    assert called == ["read by ann as threads.read", "threads", "any search", "global"]
    assert getattr(refused.value, "status", None) == 403


async def test_default_deny_refuses_actions_without_handlers() -> None:
    auth = Auth()

    @auth.on.threads.read
    async def read(ctx: Auth.types.AuthContext, value: Any) -> None:
        return None

    authorizer = Authorizer(auth, default="deny")
    user = AuthUser({"identity": "ann"})

    assert await authorizer.authorize(user, "threads", "read", {}) is None
    with pytest.raises(Exception) as refused:
        await authorizer.authorize(user, "threads", "delete", {})
    assert getattr(refused.value, "status", None) == 403


def test_filters_match_as_langgraph_documents() -> None:
    metadata = {"owner": "ann", "members": ["ann", "bo"], "n": 1}

    assert matches_filter(metadata, {"owner": "ann"})
    assert matches_filter(metadata, {"owner": {"$eq": "ann"}})
    assert matches_filter(metadata, {"members": {"$contains": "bo"}})
    assert matches_filter(metadata, {"members": {"$contains": ["ann", "bo"]}})
    assert not matches_filter(metadata, {"members": {"$contains": ["ann", "cy"]}})
    assert not matches_filter(metadata, {"owner": {"$contains": "ann"}})
    assert not matches_filter(metadata, {"owner": "bo"})
    assert not matches_filter(metadata, {"missing": "x"})
    assert matches_filter(metadata, None)


def _project(tmp_path: Path, auth_source: str, **data: Any) -> Path:
    (tmp_path / "graph.py").write_text((FIXTURE / "graph.py").read_text())
    (tmp_path / "auth.py").write_text(auth_source)
    (tmp_path / "app.py").write_text((FIXTURE / "app.py").read_text())
    spec = {"graphs": {"whoami": "./graph.py:graph"}, **data}
    (tmp_path / "langgraph.json").write_text(json.dumps(spec))
    return tmp_path / "langgraph.json"


@pytest.mark.parametrize(
    ("source", "spec", "message"),
    [
        (
            "raise ValueError('boom')\n",
            "./auth.py:auth",
            "auth.path: ./auth.py:auth failed to import: ValueError: boom",
        ),
        ("my_auth = 1\n", "./auth.py:auth", 'auth.path: ./auth.py has no attribute "auth"'),
        ("auth = 1\n", "./auth.py:auth", "auth.path: ./auth.py:auth is an int, not a "),
        (
            "from langgraph_sdk import Auth\nauth = Auth()\n@auth.authenticate\n"
            "async def who(token):\n    return 'x'\n",
            "./auth.py:auth",
            'the authenticate handler who asks for "token", which no request provides',
        ),
        (
            "from langgraph_sdk import Auth\nauth = Auth()\n@auth.authenticate\n"
            "def who(authorization):\n    return 'x'\n",
            "./auth.py:auth",
            "the authenticate handler who must be an async function",
        ),
    ],
)
def test_an_auth_file_that_cannot_be_used_is_one_message(
    tmp_path: Path, source: str, spec: str, message: str
) -> None:
    config = load_config(_project(tmp_path, source, auth={"path": spec}), environ={})

    with pytest.raises(AuthLoadError) as caught:
        load_auth(config)

    assert message in caught.value.detail


async def test_a_shared_api_key_guards_the_server_without_an_auth_file(tmp_path: Path) -> None:
    path = _project(tmp_path, "")
    config = load_config(path, environ={"AGENT_RUNTIME_API_KEY": "k-123"})
    server = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            missing = await raw.post("/threads", json={})
            wrong = await raw.post("/threads", json={}, headers={"x-api-key": "k-12"})
            health = await raw.get("/ok")
            spec = (await raw.get("/openapi.json")).json()
        sdk = get_client(url=server.url, api_key="k-123")
        try:
            thread = await sdk.threads.create()
        finally:
            await sdk.http.client.aclose()
    finally:
        await server.stop()

    assert missing.status_code == 401
    assert missing.json()["code"] == "unauthorized"
    assert wrong.status_code == 401
    assert health.status_code == 200
    assert spec["security"] == [{"apiKeyAuth": []}]
    assert thread["thread_id"]


async def _serve(path: Path, tmp_path: Path) -> RunningServer:
    config = load_config(path, environ={}, database=tmp_path / "db.sqlite")
    return await RunningServer(config).start()


@pytest.mark.parametrize("custom_route_auth", [False, True])
async def test_a_custom_app_is_served_beside_the_api(
    tmp_path: Path, custom_route_auth: bool
) -> None:
    auth = (FIXTURE / "auth.py").read_text()
    http = {"app": "./app.py:app", "enable_custom_route_auth": custom_route_auth}
    server = await _serve(
        _project(tmp_path, auth, auth={"path": "./auth.py:auth"}, http=http), tmp_path
    )
    try:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            anonymous = await raw.get("/hello")
            signed = await raw.get("/hello", headers={"Authorization": "Bearer user-a"})
            info = await raw.get("/info")
            ours = await raw.post("/threads", json={}, headers={"Authorization": "Bearer user-a"})
    finally:
        await server.stop()

    if custom_route_auth:
        assert anonymous.status_code == 401
        assert signed.json() == {"hello": "world", "user": "alice"}
    else:
        assert anonymous.json() == {"hello": "world", "user": None}
    assert info.json() == {"custom": True}  # the custom app's route wins, as on LangGraph
    assert ours.status_code == 200
    assert ours.headers["x-custom-middleware"] == "yes"  # its middleware wraps our routes too


async def test_disabled_route_groups_are_gone(tmp_path: Path) -> None:
    http = {"disable_runs": True, "disable_store": True, "disable_meta": True}
    server = await _serve(_project(tmp_path, "", http=http), tmp_path)
    try:
        async with httpx.AsyncClient(base_url=server.url) as raw:
            runs = await raw.post("/runs/wait", json={"assistant_id": "whoami", "input": {}})
            store = await raw.post("/store/namespaces", json={})
            info = await raw.get("/info")
            health = await raw.get("/ok")
            threads = await raw.post("/threads", json={})
    finally:
        await server.stop()

    assert (runs.status_code, store.status_code, info.status_code) == (404, 404, 404)
    assert runs.json()["code"] == "route_not_found"
    assert health.status_code == 200
    assert threads.status_code == 200
