"""The ASGI middleware that observes every HTTP request: its span (continuing the caller's
`traceparent`), and its count and duration by route template and status. The route is the
template (`/threads/{thread_id}/runs`), never the path: ids in paths would make a series per
request. It never changes a request or a response."""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.observability.metrics import UNMATCHED_ROUTE, Metrics

if TYPE_CHECKING:
    from agent_runtime.observability.otel import Tracing


class RequestObserver:
    """Outermost middleware: sees every answer, including the auth and origin refusals."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        metrics: Metrics | None,
        tracing: Tracing | None,
        routes: Sequence[BaseRoute],
    ) -> None:
        self.app = app
        self._metrics = metrics
        self._tracing = tracing
        self._routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        status = 500  # what the client gets if the app raises before it answers

        async def observed(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        span_context: contextlib.AbstractContextManager[Any] = (
            contextlib.nullcontext()
            if self._tracing is None
            else self._tracing.request(method, scope["path"], _headers(scope))
        )
        with span_context as span:
            try:
                await self.app(scope, receive, observed)
            finally:
                route = self._route(scope)
                if span is not None and self._tracing is not None:
                    self._tracing.finish_request(span, method, route, status)
                if self._metrics is not None:
                    seconds = time.perf_counter() - started
                    self._metrics.http_request(method, route, status, seconds)

    def _route(self, scope: Scope) -> str:
        # Set by Starlette's router on the scope it was given, which is this one.
        route = scope.get("route")
        path = getattr(route, "path", None)
        if isinstance(path, str):
            return path
        # Refused before routing (authentication, origin checks): match it here.
        for candidate in self._routes:
            match, _ = candidate.matches(scope)
            if match is not Match.NONE:
                found = getattr(candidate, "path", None)
                if isinstance(found, str):
                    return found
        return UNMATCHED_ROUTE


def _headers(scope: Scope) -> dict[str, str]:
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}
