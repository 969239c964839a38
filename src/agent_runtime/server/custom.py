"""The custom app of `http.app` beside the API: its routes win over ours (LangGraph lets a
custom app override built-in routes), its middleware wraps every route, its lifespan runs
inside ours. Which routes exist at all (`http.disable_*`) is decided here too."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.middleware.exceptions import ExceptionMiddleware
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Receive, Scope, Send

from agent_runtime.config import RouteConfig
from agent_runtime.server.routing import Operation

_META = frozenset({"/info", "/docs", "/openapi.json"})


def route_group(op: Operation) -> str:
    """Which `http.disable_*` key removes an operation: assistants, threads, runs, store or
    meta (`/ok` stays: load balancers need it)."""
    path = op.path
    if path in _META:
        return "meta"
    if path == "/ok":
        return "health"
    if path.startswith("/assistants"):
        return "assistants"
    if path.startswith("/store"):
        return "store"
    if path.startswith("/runs") or "/runs" in path or path == "/threads/{thread_id}/stream":
        return "runs"
    return "threads"


def enabled(operations: Iterable[Operation], routes: RouteConfig) -> list[Operation]:
    """The operations `http.disable_*` leaves."""
    return [op for op in operations if route_group(op) not in routes.disabled]


class CustomRoutes(BaseRoute):
    """The custom app's routes as one route of ours, listed first: a request one of them
    matches goes to the custom app (through its own exception handlers)."""

    def __init__(self, app: Starlette) -> None:
        self.routes: Sequence[BaseRoute] = app.router.routes
        self.app: ASGIApp = ExceptionMiddleware(
            app.router, handlers=dict(app.exception_handlers), debug=app.debug
        )

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        partial: tuple[Match, Scope] | None = None
        for route in self.routes:
            match, _ = route.matches(scope)
            if match is Match.FULL:
                return Match.FULL, {}
            if match is Match.PARTIAL and partial is None:
                partial = (Match.PARTIAL, {})
        return partial or (Match.NONE, {})

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.app(scope, receive, send)

    def owns(self, scope: Scope) -> bool:
        """Whether a request goes to the custom app (a full match of one of its routes)."""
        return scope["type"] == "http" and self.matches(scope)[0] is Match.FULL


def custom_middleware(app: Starlette) -> list[Middleware]:
    """The middleware the custom app declares (`app.add_middleware`), outermost first."""
    return list(app.user_middleware)
