"""Refusing requests sent to a name the server does not answer to (the `Host` header), against
DNS rebinding: a page on a name its owner points at 127.0.0.1 is, to the browser, same-origin
with a server on this machine, and could read and drive it. Which names, and which servers
check: `config.hosts` and the CLI. No route logic lives here."""

from __future__ import annotations

from collections.abc import Sequence

from starlette.types import ASGIApp, Receive, Scope, Send

from agent_runtime.config.hosts import is_loopback
from agent_runtime.server.routing import json_response

# Names of this machine a browser can be sent to that no other page can share an origin with.
_UNSPECIFIED = frozenset({"0.0.0.0", "[::]"})


class HostCheck:
    """Answers a request whose `Host` is neither this machine's (loopback names and addresses,
    `0.0.0.0`) nor one of `allowed` (exact, or `*.example.com` for its subdomains) with a 403
    `host_not_allowed`. A request without a `Host` (HTTP/1.0) passes: browsers always send one."""

    def __init__(self, app: ASGIApp, *, allowed: Sequence[str]) -> None:
        self.app = app
        self._exact = frozenset(name for name in allowed if not name.startswith("*."))
        self._suffixes = tuple(name[1:] for name in allowed if name.startswith("*."))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        # The raw list, as `OriginMiddleware` reads it: no `Headers` built for every request.
        raw = next((value for key, value in scope["headers"] if key == b"host"), None)
        if raw is None or self._allows(_name(raw.decode("latin-1"))):
            await self.app(scope, receive, send)
            return
        await self._refusal(raw.decode("latin-1"))(scope, receive, send)

    def _allows(self, name: str) -> bool:
        return (
            is_loopback(name)
            or name in _UNSPECIFIED
            or name in self._exact
            or name.endswith(self._suffixes)
        )

    def _refusal(self, host: str) -> ASGIApp:
        names = ["localhost", "127.0.0.1", "[::1]", *sorted(self._exact)]
        names += [f"*{suffix}" for suffix in self._suffixes]
        return json_response(
            {
                "detail": f"Host {host!r} is not a name this server answers to "
                f"({', '.join(names)}): a page on another name pointed at this machine could "
                "use the server as its own (DNS rebinding). To allow the name, add it to "
                "agent_runtime.allowed_hosts in langgraph.json",
                "code": "host_not_allowed",
            },
            status=403,
        )


def _name(host: str) -> str:
    """A `Host` header's name, without its port, lower-cased; an IPv6 address keeps its
    brackets."""
    host = host.strip().lower()
    if host.startswith("["):
        end = host.find("]")
        return host[: end + 1] if end >= 0 else host
    return host.partition(":")[0]
