"""Finding the route a request goes to without trying every route in turn: Starlette's router
matches each route's pattern against the path, in order, which for `/threads/{id}/runs/stream`
was 40 regular expressions (47 us of every run's request). This router tries only the routes
that could match a path of that shape, in the same order, so it picks the same route."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from starlette._utils import get_route_path
from starlette.datastructures import URL
from starlette.responses import RedirectResponse
from starlette.routing import BaseRoute, Match, Route, Router
from starlette.types import Receive, Scope, Send

_Shape = tuple[str, int]
"""A path's first segment and its number of segments: `/threads/t1/runs` is ("threads", 3)."""


def _shape(path: str) -> _Shape:
    segments = path.split("/")
    return segments[1] if len(segments) > 1 else "", len(segments) - 1


class RouteIndex:
    """The routes by the shape of the paths they can match. A `Route` whose pattern has no
    `:path` parameter matches only paths of its own number of segments, and, when its first
    segment is literal, only that first segment; any other route (a mount, the custom app's
    routes, a route with a `:path` parameter) may match any path and is tried for all."""

    def __init__(self, routes: Sequence[BaseRoute]) -> None:
        self._routes = list(routes)
        self._by_shape: dict[_Shape, list[int]] = {}
        self._by_count: dict[int, list[int]] = {}
        self._anywhere: list[int] = []
        for position, route in enumerate(self._routes):
            if not isinstance(route, Route) or ":path}" in route.path:
                self._anywhere.append(position)
                continue
            first, count = _shape(route.path)
            if "{" in first:
                self._by_count.setdefault(count, []).append(position)
            else:
                self._by_shape.setdefault((first, count), []).append(position)
        self._candidates: dict[_Shape, list[BaseRoute]] = {}

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes that may match `path`, in their order in the list given."""
        shape = _shape(path)
        found = self._candidates.get(shape)
        if found is None:
            positions = sorted(
                [
                    *self._by_shape.get(shape, ()),
                    *self._by_count.get(shape[1], ()),
                    *self._anywhere,
                ]
            )
            found = [self._routes[position] for position in positions]
            if len(self._candidates) < _MAX_SHAPES:
                # Shapes come from clients: a path of a new first segment each must not grow it.
                self._candidates[shape] = found
        return found


_MAX_SHAPES = 1024


class IndexedRouter(Router):
    """Starlette's `Router`, each request matched against `RouteIndex.candidates` only: the
    same route, the same 405 for a path served under another method, the same redirect for a
    path that matches with or without its trailing slash."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._index = RouteIndex(self.routes)
        self._indexed = len(self.routes)

    def candidates(self, path: str) -> list[BaseRoute]:
        """The routes a request for `path` is matched against, in order."""
        if self._indexed != len(self.routes):  # routes added since (`add_route`)
            self._index = RouteIndex(self.routes)
            self._indexed = len(self.routes)
        return self._index.candidates(path)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await super().app(scope, receive, send)
            return
        if "router" not in scope:
            scope["router"] = self
        route_path = get_route_path(scope)
        partial: tuple[BaseRoute, Scope] | None = None
        for route in self.candidates(route_path):
            match, child_scope = route.matches(scope)
            if match is Match.FULL:
                scope["route"] = route
                scope.update(child_scope)
                await route.handle(scope, receive, send)
                return
            if match is Match.PARTIAL and partial is None:
                partial = (route, child_scope)
        if partial is not None:
            # Served under another method: the route answers 405.
            route, child_scope = partial
            scope["route"] = route
            scope.update(child_scope)
            await route.handle(scope, receive, send)
            return
        if self.redirect_slashes and route_path != "/":
            other = dict(scope)
            if route_path.endswith("/"):
                other["path"] = other["path"].rstrip("/")
            else:
                other["path"] = other["path"] + "/"
            for route in self.candidates(get_route_path(other)):
                if route.matches(other)[0] is not Match.NONE:
                    await RedirectResponse(url=str(URL(scope=other)))(scope, receive, send)
                    return
        await self.default(scope, receive, send)
