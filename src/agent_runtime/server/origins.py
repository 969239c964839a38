"""Which browser origins may call the server, decided in one place for CORS preflights (with
Private Network Access) and for refusing state-changing requests from any other origin.

A browser sends a "simple" cross-site POST (`Content-Type: text/plain`) without a preflight, so
CORS headers alone would only hide the answer from the page, after the run had already happened:
this middleware refuses such a request before it reaches a route. No route logic lives here.
"""

from __future__ import annotations

import re
from typing import Final

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.config import CorsConfig
from agent_runtime.server.routing import json_response

SAFE_METHODS: Final = frozenset({"GET", "HEAD", "OPTIONS"})
"""Methods a disallowed origin may still send: the browser withholds the answer from its page."""
_ALL_METHODS: Final = "DELETE, GET, HEAD, OPTIONS, PATCH, POST, PUT"
_DEFAULT_PORTS: Final = {"http": "80", "https": "443", "ws": "80", "wss": "443"}


class OriginPolicy:
    """The origins of `http.cors`: exact ones, `"*"` for any, and `allow_origin_regex`."""

    def __init__(self, cors: CorsConfig) -> None:
        self.cors = cors
        self._any = "*" in cors.allow_origins
        self._exact = frozenset(origin.rstrip("/") for origin in cors.allow_origins)
        self._pattern = re.compile(cors.allow_origin_regex) if cors.allow_origin_regex else None

    def allows(self, origin: str, *, own: str | None = None) -> bool:
        """Whether a request carrying this `Origin` header may act on the server.

        The server's own origin (`own`, from the request's Host) always may. `null` (sandboxed
        frames, `file:` pages) only when listed as such: `"*"` does not cover it.
        """
        if origin == "null":
            return "null" in self._exact
        if origin == own:
            return True
        if self._any or origin in self._exact:
            return True
        return self._pattern is not None and self._pattern.fullmatch(origin) is not None


class OriginMiddleware:
    """Answers preflights, adds CORS headers for allowed origins, and turns away POST, PUT,
    PATCH and DELETE from any other origin with a 403 `origin_not_allowed`."""

    def __init__(self, app: ASGIApp, *, cors: CorsConfig) -> None:
        self.app = app
        self.policy = OriginPolicy(cors)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # Looked up in the raw list: `Headers.get` raises and catches a KeyError for a missing
        # header, which on every request of a client that sends none cost more than the rest
        # of this middleware.
        origin = next((v for k, v in scope["headers"] if k == b"origin"), None)
        if origin is None:
            # Not a browser acting for a page (curl, the SDKs, a server-side client).
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        origin = headers["origin"]
        allowed = self.policy.allows(origin, own=server_origin(scope))
        method = scope["method"]
        if method == "OPTIONS" and "access-control-request-method" in headers:
            await self._preflight(origin, allowed, headers)(scope, receive, send)
        elif allowed:
            await self.app(scope, receive, self._with_cors_headers(origin, send))
        elif method in SAFE_METHODS:
            await self.app(scope, receive, send)
        else:
            await _refusal(origin)(scope, receive, send)

    def _preflight(self, origin: str, allowed: bool, headers: Headers) -> ASGIApp:
        if not allowed:
            return _refusal(origin)
        cors = self.cors
        method = headers["access-control-request-method"]
        if "*" not in cors.allow_methods and method not in cors.allow_methods:
            return _forbidden(
                f"Method {method} is not in http.cors.allow_methods in langgraph.json; "
                "add it there to allow it from browsers",
                "cors_method_not_allowed",
            )
        requested = _tokens(headers.get("access-control-request-headers", ""))
        listed = {name.lower() for name in cors.allow_headers}
        if "*" not in listed:
            missing = sorted(set(requested) - listed)
            if missing:
                return _forbidden(
                    f"Header {', '.join(missing)} is not in http.cors.allow_headers in "
                    "langgraph.json; add it there to allow it from browsers",
                    "cors_header_not_allowed",
                )
        answer = {
            **self._origin_headers(origin),
            "Access-Control-Allow-Methods": (
                _ALL_METHODS if "*" in cors.allow_methods else ", ".join(cors.allow_methods)
            ),
            "Access-Control-Max-Age": str(cors.max_age),
        }
        if requested:
            # Echoed rather than `*`, which browsers take literally on credentialed requests.
            answer["Access-Control-Allow-Headers"] = ", ".join(requested)
        if headers.get("access-control-request-private-network") == "true":
            # Chrome asks before a public page (LangGraph Studio) reaches a local server.
            answer["Access-Control-Allow-Private-Network"] = "true"
        return json_response(None, status=204, headers=answer)

    def _with_cors_headers(self, origin: str, send: Send) -> Send:
        added = self._origin_headers(origin)
        if self.cors.expose_headers:
            added["Access-Control-Expose-Headers"] = ", ".join(self.cors.expose_headers)

        async def send_with_cors(message: Message) -> None:
            if message["type"] == "http.response.start":
                response_headers = MutableHeaders(scope=message)
                for name, value in added.items():
                    if name == "Vary":
                        response_headers.add_vary_header(value)
                    else:
                        response_headers[name] = value
            await send(message)

        return send_with_cors

    def _origin_headers(self, origin: str) -> dict[str, str]:
        # The origin itself, never `*`: the answer is then right with or without credentials.
        headers = {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}
        if self.cors.allow_credentials:
            headers["Access-Control-Allow-Credentials"] = "true"
        return headers

    @property
    def cors(self) -> CorsConfig:
        return self.policy.cors


def server_origin(scope: Scope) -> str | None:
    """The origin a request was sent to (scheme and `Host`), as a browser would write it."""
    # Browsers leave the default port out of `Origin`; some clients put it in `Host`.
    host = Headers(scope=scope).get("host")
    if not host:
        return None
    scheme = scope.get("scheme", "http")
    name, _, port = host.rpartition(":") if not host.endswith("]") else (host, "", "")
    if not name or not port.isdigit():
        name, port = host, ""
    if port == _DEFAULT_PORTS.get(scheme):
        port = ""
    return f"{scheme}://{name.lower()}{':' + port if port else ''}"


def _tokens(header: str) -> list[str]:
    return [token.strip().lower() for token in header.split(",") if token.strip()]


def _refusal(origin: str) -> ASGIApp:
    return _forbidden(
        f"Requests from origin {origin} are not allowed; to allow it, add it to "
        "http.cors.allow_origins in langgraph.json (which replaces the development default of "
        "localhost pages and LangGraph Studio)",
        "origin_not_allowed",
    )


def _forbidden(detail: str, code: str) -> ASGIApp:
    return json_response({"detail": detail, "code": code}, status=403)
