"""The router tries only the routes a path's shape can match (`server.dispatch`), and picks
what Starlette's router, trying every route in order, picks: for every route of the app under
every method, for paths of no route, and with or without a trailing slash."""

from __future__ import annotations

import re
from collections.abc import Iterable
from pathlib import Path

import httpx
import pytest
from starlette.routing import BaseRoute, Match, Mount, Route
from starlette.types import Scope

from agent_runtime.config import load_config
from agent_runtime.server.app import create_app
from agent_runtime.server.dispatch import IndexedRouter, RouteIndex

ROOT = Path(__file__).resolve().parents[2]
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")
ODD_PATHS = (
    "/",
    "/nope",
    "/threads/",
    "/threads//runs",
    "//threads",
    "/threads/t1/runs/r1/extra/more",
    "/ui/assets/deep/file.js",
    "/assets/a/b",
)


def _choice(routes: Iterable[BaseRoute], scope: Scope) -> BaseRoute | None:
    # Starlette's `Router.app` choice among `routes`: the first full match, else the first
    # partial one (a path served under another method).
    partial = None
    for route in routes:
        match, _ = route.matches(scope)
        if match is Match.FULL:
            return route
        if match is Match.PARTIAL and partial is None:
            partial = route
    return partial


def _example(path: str) -> str:
    # A path the template matches: each parameter given a value of its converter's kind.
    path = re.sub(r"\{[^}:]+:path\}", "a/b/c", path)
    path = re.sub(r"\{[^}:]+:int\}", "7", path)
    return re.sub(r"\{[^}]+\}", "v1", path)


def _paths(routes: list[BaseRoute]) -> list[str]:
    paths = [_example(route.path) for route in routes if isinstance(route, Route | Mount)]
    paths += [path + "/" for path in paths if not path.endswith("/")]
    return [*paths, *ODD_PATHS]


def _scope(method: str, path: str) -> Scope:
    return {"type": "http", "method": method, "path": path, "root_path": "", "headers": []}


@pytest.mark.parametrize("disable_ui", [False, True], ids=["ui", "no-ui"])
def test_every_path_goes_where_trying_every_route_sends_it(
    tmp_path: Path, disable_ui: bool
) -> None:
    config = load_config(ROOT / "langgraph.json", database=tmp_path / "db.sqlite", environ={})
    if disable_ui:
        from agent_runtime.cli import without_ui

        config = without_ui(config)
    router = create_app(config).router
    assert isinstance(router, IndexedRouter)
    routes = list(router.routes)
    checked = 0
    for path in _paths(routes):
        for method in METHODS:
            scope = _scope(method, path)
            chosen = _choice(router.candidates(path), scope)
            assert chosen is _choice(routes, scope), (method, path)
            checked += 1
    assert checked > 500


def test_routes_of_any_shape_are_tried_for_every_path() -> None:
    async def endpoint(scope: Scope) -> None:
        raise AssertionError("not called")

    routes: list[BaseRoute] = [
        Route("/files/{rest:path}", endpoint),
        Route("/{tenant}/threads", endpoint),
        Mount("/static", routes=[]),
        Route("/threads/{thread_id}", endpoint),
    ]
    index = RouteIndex(routes)
    assert index.candidates("/threads/t1") == routes  # a parameter first: by the count alone
    assert index.candidates("/acme/threads") == [routes[0], routes[1], routes[2]]
    assert index.candidates("/files/a/b/c") == [routes[0], routes[2]]


async def test_a_trailing_slash_redirects_and_a_wrong_method_is_405(
    http: httpx.AsyncClient,
) -> None:
    response = await http.get("/ok/")
    assert response.status_code == 307
    assert response.headers["location"].endswith("/ok")
    response = await http.post("/ok")
    assert response.status_code == 405
    response = await http.get("/threads/t1/runs/r1/nope")
    assert response.status_code == 404
