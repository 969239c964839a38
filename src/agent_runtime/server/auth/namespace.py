"""Store authorization: the store handlers see the namespace as a tuple (LangGraph's
`StorePut`, `StoreGet`, ...) and may rewrite it, typically to put the user's identity first,
or any other field of the operation (a search's `filter`, a put's `value`); what the handler
leaves in the value is what the route then reads and writes."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from starlette.requests import Request

from agent_runtime.server.validation import parse_namespace
from agent_runtime.user import AuthUser

logger = logging.getLogger("agent_runtime")

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
        value[key] = argument.get(key, _DEFAULTS.get((action, key)))
        if key == "suffix" and value[key] is not None:
            value[key] = tuple(value[key])
    condition = await guard.authorize(user, "store", action, value)
    if condition:
        _warn_store_filter(guard, action)
    # The value is LangGraph's mutable operation: what the handler changed is what runs.
    rewritten = value.get("namespace")
    if rewritten is not None:
        labels = [str(label) for label in rewritten]
        argument[field] = ".".join(labels) if action == "get" else labels
    for key in _STORE_FIELDS[action]:
        changed = value.get(key)
        if changed is None and key not in argument:
            continue
        argument[key] = list(changed) if isinstance(changed, tuple) else changed


def _warn_store_filter(guard: Guard, action: str) -> None:
    # LangGraph applies no filter to store items (a global `@auth.on` owner handler returns
    # one for every resource, the store included); say so once, not on every request.
    if action in guard.warned_store_filters:
        return
    guard.warned_store_filters.add(action)
    logger.warning(
        "The authorization handler for store.%s returned a filter; LangGraph applies no "
        "filter to store items, so it is ignored: scope the store by rewriting "
        'value["namespace"] (for example, put the user\'s identity first)',
        action,
    )


_STORE_NAMESPACE = {
    "put": "namespace",
    "get": "namespace",
    "delete": "namespace",
    "search": "namespace_prefix",
    "list_namespaces": "prefix",
}
_DEFAULTS = {
    ("search", "limit"): 10,
    ("search", "offset"): 0,
    ("list_namespaces", "limit"): 100,
    ("list_namespaces", "offset"): 0,
}
"""The route's defaults, so that a handler reads the limits the operation will use."""
_STORE_FIELDS: dict[str, tuple[str, ...]] = {
    "put": ("key", "value", "index"),
    "get": ("key",),
    "delete": ("key",),
    "search": ("filter", "limit", "offset", "query"),
    "list_namespaces": ("suffix", "max_depth", "limit", "offset"),
}
