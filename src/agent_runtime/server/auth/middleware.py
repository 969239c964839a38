"""Authentication for every request, streams included, before a route reads the body: the
`@auth.authenticate` handler of the auth file, or the shared `AGENT_RUNTIME_API_KEY`. The
user lands in the ASGI scope (`request.user`, `request.state.auth_user`); refusals answer
with our error body. Which action a route is and what the user may do is `guard.py`'s."""

from __future__ import annotations

import hmac
import inspect
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from starlette.authentication import AuthCredentials
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.config import AuthCacheConfig
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.server.auth.authorize import AuthError, from_handler_exception
from agent_runtime.server.auth.cache import AuthCache
from agent_runtime.server.inspector import is_ui_path
from agent_runtime.server.routing import error_body, json_response
from agent_runtime.user import AuthUser, UserShapeError, make_user, studio_user

logger = logging.getLogger("agent_runtime")

PUBLIC_PATHS = frozenset({"/ok", "/info", "/docs", "/openapi.json"})
"""Answered to anyone (GET and HEAD), as LangGraph leaves its meta routes unauthenticated:
health checks and clients probe them before they hold credentials."""
ANONYMOUS = AuthUser({"identity": "", "is_authenticated": False, "permissions": []})
"""The user of a request when no authenticate handler names one."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthSettings:
    """What the middleware checks: built once per app from the config."""

    auth: Auth | None = None
    api_key: str | None = None
    """`AGENT_RUNTIME_API_KEY`, checked only when there is no auth file."""
    trust_studio: bool = False
    max_body_bytes: int = 10 * 1024 * 1024
    routes: Sequence[BaseRoute] = ()
    """Our API's routes, for the `path_params` a handler may ask for."""
    is_custom: Callable[[Scope], bool] = lambda scope: False
    """Whether a request goes to the custom app's routes (`http.app`)."""
    custom_route_auth: bool = False
    cache: AuthCacheConfig | None = None
    """`auth.cache`: remember the handler's answers per credentials."""

    @property
    def active(self) -> bool:
        return self.auth is not None or bool(self.api_key)


class AuthMiddleware:
    """Authenticates each HTTP request, or answers it with 401 (or the status an
    `Auth.exceptions.HTTPException` gives) before any route, and any stream, starts."""

    def __init__(self, app: ASGIApp, *, settings: AuthSettings) -> None:
        self.app = app
        self.settings = settings
        handler = settings.auth._authenticate_handler if settings.auth is not None else None
        self._handler = handler
        self._wants = (
            frozenset(inspect.signature(handler).parameters) if handler is not None else frozenset()
        )
        self.cache = AuthCache(settings.cache) if settings.cache is not None else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self._needs_auth(scope):
            await self.app(scope, receive, send)
            return
        try:
            user, receive = await self._authenticate(scope, receive)
        except AuthError as exc:
            answer = json_response(
                error_body(exc.detail, exc.code), status=exc.status, headers=exc.headers
            )
            await answer(scope, receive, send)
            return
        except AgentRuntimeError as exc:  # a body over the size limit, read for the handler
            answer = json_response(error_body(exc.detail, exc.code), status=exc.status_code)
            await answer(scope, receive, send)
            return
        scope["user"] = user
        scope["auth"] = AuthCredentials(list(user.permissions))
        scope.setdefault("state", {})["auth_user"] = user
        await self.app(scope, receive, send)

    def _needs_auth(self, scope: Scope) -> bool:
        settings = self.settings
        if not settings.active or scope["method"] == "OPTIONS":
            # Preflights carry no credentials by design; OriginMiddleware answers them.
            return False
        if scope["method"] in ("GET", "HEAD") and (
            scope["path"] in PUBLIC_PATHS
            # The inspector's files are a static shell, public like /docs: every API call the
            # page makes carries the user's credentials and is authenticated as any other.
            or (is_ui_path(scope["path"]) and not settings.is_custom(scope))
        ):
            return False
        return settings.custom_route_auth or not settings.is_custom(scope)

    async def _authenticate(self, scope: Scope, receive: Receive) -> tuple[AuthUser, Receive]:
        settings = self.settings
        headers = Headers(scope=scope)
        if settings.auth is None:
            given = headers.get("x-api-key", "")
            expected = settings.api_key or ""
            if not hmac.compare_digest(given.encode(), expected.encode()):
                raise AuthError(
                    "Missing or wrong x-api-key header; send the key the server was started "
                    "with (AGENT_RUNTIME_API_KEY), as the SDKs do from their api_key"
                    if given
                    else "Missing x-api-key header; this server needs its AGENT_RUNTIME_API_KEY"
                )
            return ANONYMOUS, receive
        if settings.trust_studio and headers.get("x-auth-scheme") == "langsmith":
            return studio_user(), receive
        if self._handler is None:
            return ANONYMOUS, receive
        key = self.cache.key(headers) if self.cache is not None else None
        if key is not None and self.cache is not None:
            cached = self.cache.get(key)
            if cached is not None:
                return cached, receive
        user, receive = await self._call_handler(scope, receive, headers)
        if key is not None and self.cache is not None:
            self.cache.put(key, user)
        return user, receive

    async def _call_handler(
        self, scope: Scope, receive: Receive, headers: Headers
    ) -> tuple[AuthUser, Receive]:
        assert self._handler is not None
        settings = self.settings
        body = b""
        handler_receive = receive
        if "body" in self._wants or "request" in self._wants:
            body = await _read_body(receive, settings.max_body_bytes)
            # One copy for the handler's Request, one for the route.
            handler_receive, receive = _replay(body, receive), _replay(body, receive)
        arguments = self._arguments(scope, handler_receive, headers, body)
        try:
            result = await self._handler(**arguments)
            return make_user(result), receive
        except AuthHTTPException as exc:
            raise from_handler_exception(exc) from None
        except UserShapeError as exc:
            logger.error("Authentication failed: %s", exc)
            raise AuthError("Unauthorized: the request could not be authenticated") from None
        except Exception as exc:
            # Whatever the handler raised (a bad token failing to decode, say), the request is
            # not authenticated: a 401, never a 500.
            logger.warning(
                "The authenticate handler raised %s: %s", type(exc).__name__, exc, exc_info=True
            )
            raise AuthError("Unauthorized: the request could not be authenticated") from None

    def _arguments(
        self, scope: Scope, receive: Receive, headers: Headers, body: bytes
    ) -> dict[str, Any]:
        wants = self._wants
        values: dict[str, Callable[[], Any]] = {
            "request": lambda: Request(scope, receive),
            "body": lambda: body,
            "authorization": lambda: headers.get("authorization"),
            "headers": lambda: dict(scope["headers"]),
            "path": lambda: scope["path"],
            "method": lambda: scope["method"],
            "query_params": lambda: dict(Request(scope).query_params),
            "path_params": lambda: self._path_params(scope),
            "scopes": lambda: [],
            "scope": lambda: scope,
        }
        return {name: make() for name, make in values.items() if name in wants}

    def _path_params(self, scope: Scope) -> Mapping[str, Any]:
        for route in self.settings.routes:
            match, child = route.matches(scope)
            if match is Match.FULL:
                return dict(child.get("path_params", {}))
        return {}


async def _read_body(receive: Receive, limit: int) -> bytes:
    from agent_runtime.errors import PayloadTooLargeError

    chunks: list[bytes] = []
    size = 0
    more = True
    while more:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise PayloadTooLargeError(
                f"The request body is over {limit} bytes (agent_runtime.max_body_bytes)"
            )
        chunks.append(chunk)
        more = message.get("more_body", False)
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands out `body` once, then waits on the real one (a disconnect)."""
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
