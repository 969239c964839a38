"""Store authorization: the store handlers see the namespace as a tuple (LangGraph's
`StorePut`, `StoreGet`, ...) and may rewrite it, typically to put the user's identity first;
the rewritten namespace is what the route then reads and writes."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from agent_runtime.server.validation import parse_namespace
from agent_runtime.user import AuthUser

if TYPE_CHECKING:
    from agent_runtime.server.auth.guard import Guard


async def authorize_store(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, argument: Any
) -> None:
    field = _STORE_NAMESPACE[action]
    written = argument.get(field)
    if action == "get":
        namespace: tuple[str, ...] | None = parse_namespace(written or "", field="namespace")
    else:
        namespace = tuple(written) if written is not None else None
    value: dict[str, Any] = {"namespace": namespace}
    for key in _STORE_FIELDS[action]:
        if key in argument:
            value[key] = argument[key]
    value.setdefault("key", argument.get("key"))
    # A filter from a store handler has nothing to apply to: namespaces are the store's scope.
    await guard.authorize(user, "store", action, value)
    rewritten = value.get("namespace")
    if rewritten is None:
        return
    labels = [str(label) for label in rewritten]
    argument[field] = ".".join(labels) if action == "get" else labels


_STORE_NAMESPACE = {
    "put": "namespace",
    "get": "namespace",
    "delete": "namespace",
    "search": "namespace_prefix",
    "list_namespaces": "prefix",
}
_STORE_FIELDS = {
    "put": ("key", "value", "index"),
    "get": ("key",),
    "delete": ("key",),
    "search": ("filter", "limit", "offset", "query"),
    "list_namespaces": ("suffix", "max_depth", "limit", "offset"),
}
