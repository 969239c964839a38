"""Declares API operations (method, path, request and response shapes) once; request validation
and `/openapi.json` are both built from these declarations. Holds no business logic."""

from __future__ import annotations

import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_runtime.encoding import dumps
from agent_runtime.server.validation import read_json, validate

Handler = Callable[[Request, Any], Awaitable[Any]]
SSE = "text/event-stream"


@dataclass(frozen=True, slots=True, kw_only=True)
class Operation:
    """One method on one path: what it takes, what it answers."""

    method: str
    path: str
    handler: Handler
    tag: str
    body: Any | None
    """A TypedDict the JSON body must match; the handler receives the validated dict."""
    query: Any | None
    """A TypedDict the query parameters must match; the handler receives the validated dict,
    or, when there is a body too, finds it in `request.state.query`."""
    response: Any | None
    status: int
    media_type: str = "application/json"
    """What a success answers with: `text/event-stream` for the streaming routes."""
    more_statuses: Mapping[int, Any] = field(default_factory=dict)
    """Other success statuses the handler may answer with, and their shapes (None: no body)."""
    selects: bool = False
    """The response honours a `select` field list, so no field of it is sure to be there."""

    @property
    def summary(self) -> str:
        doc = inspect.getdoc(self.handler) or self.handler.__name__.replace("_", " ")
        return doc.splitlines()[0]

    @property
    def description(self) -> str:
        doc = inspect.getdoc(self.handler) or ""
        return "\n".join(doc.splitlines()[1:]).strip()

    def route(self) -> Route:
        async def endpoint(request: Request) -> Response:
            argument: Any = None
            if self.query is not None:
                argument = validate(self.query, query_dict(request), where="query")
                request.state.query = argument
            if self.body is not None:
                limit = request.app.state.services.config.http.max_body_bytes
                argument = validate(self.body, await read_json(request, limit), where="body")
            guard = request.app.state.guard
            if guard is not None:
                await guard.check(request, self.handler.__name__, argument)
            result = await self.handler(request, argument)
            if isinstance(result, Response):
                return result
            return json_response(result, status=self.status)

        return Route(self.path, endpoint, methods=[self.method], name=self.handler.__name__)


class Router:
    """Collects the operations of one resource."""

    def __init__(self, tag: str) -> None:
        self.tag = tag
        self.operations: list[Operation] = []

    def get(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("PUT", path, **kwargs)

    def patch(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("PATCH", path, **kwargs)

    def delete(self, path: str, **kwargs: Any) -> Callable[[Handler], Handler]:
        return self._add("DELETE", path, **kwargs)

    def _add(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        query: Any = None,
        response: Any = None,
        status: int = 200,
        media_type: str = "application/json",
        more_statuses: Mapping[int, Any] | None = None,
        selects: bool = False,
    ) -> Callable[[Handler], Handler]:
        def register(handler: Handler) -> Handler:
            self.operations.append(
                Operation(
                    method=method,
                    path=path,
                    handler=handler,
                    tag=self.tag,
                    body=body,
                    query=query,
                    response=response,
                    status=status,
                    media_type=media_type,
                    more_statuses=more_statuses or {},
                    selects=selects,
                )
            )
            return handler

        return register


def error_body(detail: str, code: str) -> dict[str, Any]:
    """The one shape of every error response."""
    return {"detail": detail, "code": code}


def json_response(
    data: Any, *, status: int = 200, headers: Mapping[str, str] | None = None
) -> Response:
    if status == 204:
        return Response(status_code=204, headers=headers)
    return Response(dumps(data), status_code=status, media_type="application/json", headers=headers)


def query_dict(request: Request) -> dict[str, Any]:
    """Query parameters; a name given more than once becomes a list."""
    result: dict[str, Any] = {}
    for key in request.query_params:
        values = request.query_params.getlist(key)
        result[key] = values if len(values) > 1 else values[0]
    return result
