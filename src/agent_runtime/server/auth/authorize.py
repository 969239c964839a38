"""Authorization: finds the `@auth.on...` handler for a resource and action (the most specific
wins), calls it with LangGraph's `AuthContext` and value, and reads its answer (allow, deny, or
a filter on metadata). Also the one filter matcher used on single resources. No routes here."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, Literal

from langgraph_sdk import Auth
from langgraph_sdk.auth.exceptions import HTTPException as AuthHTTPException
from langgraph_sdk.auth.types import AuthContext
from starlette.requests import Request

from agent_runtime.errors import AgentRuntimeError
from agent_runtime.storage.filters import AuthFilter
from agent_runtime.user import AuthUser

logger = logging.getLogger("agent_runtime")

Filter = dict[str, Any]
"""A metadata filter an authorization handler returned: `{"owner": "a"}`, `{"owner":
{"$eq": "a"}}`, `{"members": {"$contains": "a"}}`."""

RESOURCE_ACTIONS: Mapping[str, tuple[str, ...]] = {
    "threads": ("create", "read", "update", "delete", "search", "create_run"),
    "assistants": ("create", "read", "update", "delete", "search"),
    "crons": ("create", "read", "update", "delete", "search"),
    "store": ("put", "get", "search", "list_namespaces", "delete"),
}
"""Every resource and action `langgraph_sdk.Auth` lets a handler be registered for."""


class AuthError(AgentRuntimeError):
    """Authentication or authorization refused the request; carries the status a handler's
    `Auth.exceptions.HTTPException` chose (401 when none did) and its headers."""

    status_code = 401
    default_code = "unauthorized"

    def __init__(
        self,
        detail: str,
        *,
        status: int = 401,
        code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail, code=code)
        self.status = status
        self.headers = dict(headers or {})


def from_handler_exception(exc: AuthHTTPException) -> AuthError:
    """The error a handler's `Auth.exceptions.HTTPException` asks for."""
    status = exc.status_code
    code = {401: "unauthorized", 403: "forbidden", 404: "not_found"}.get(status, "auth_error")
    return AuthError(str(exc.detail), status=status, code=code, headers=exc.headers)


class Authorizer:
    """The `@auth.on` handlers of one `Auth` object, resolved per resource and action."""

    def __init__(self, auth: Auth, *, default: Literal["allow", "deny"] = "allow") -> None:
        self._auth = auth
        self._default = default

    def handler_for(self, resource: str, action: str) -> Any | None:
        """The handler LangGraph would call: `resource.action`, then `resource`, then
        `*.action` (`@auth.on(actions=...)`), then the global one."""
        handlers = self._auth._handlers
        for key in ((resource, action), (resource, "*"), ("*", action)):
            found = handlers.get(key)
            if found:
                return found[-1]
        globals_ = self._auth._global_handlers
        return globals_[-1] if globals_ else None

    async def authorize(
        self, user: AuthUser, resource: str, action: str, value: dict[str, Any]
    ) -> Filter | None:
        """Call the handler for `resource.action`; the filter it returned, or None for
        "allowed, unfiltered". The handler may change `value` in place.

        Raises:
            AuthError: the handler returned False (403), raised `HTTPException` (its status),
                raised anything else or returned something that is not an answer (403,
                logged), or no handler exists under `agent_runtime.auth.default: "deny"`.
        """
        handler = self.handler_for(resource, action)
        where = f"{resource}.{action}"
        if handler is None:
            if self._default == "deny":
                raise AuthError(
                    f"No authorization handler allows {where} "
                    '(agent_runtime.auth.default is "deny")',
                    status=403,
                    code="forbidden",
                )
            return None
        ctx = AuthContext(
            permissions=list(user.permissions),
            user=user,  # type: ignore[arg-type]  # AuthUser has every BaseUser member
            resource=resource,  # type: ignore[arg-type]
            action=action,  # type: ignore[arg-type]
        )
        try:
            result = await handler(ctx=ctx, value=value)
        except AuthHTTPException as exc:
            raise from_handler_exception(exc) from None
        except Exception:
            # Closed, not open: a broken handler must not let a request through.
            logger.exception("The authorization handler for %s raised", where)
            raise AuthError(
                f"The authorization handler for {where} failed; see the server log",
                status=403,
                code="forbidden",
            ) from None
        if result is None or result is True:
            return None
        if result is False:
            raise AuthError(
                f"Not allowed: the authorization handler for {where} refused the request",
                status=403,
                code="forbidden",
            )
        problem = filter_problem(result)
        if problem is not None:
            logger.error("The authorization handler for %s returned %s", where, problem)
            raise AuthError(
                f"The authorization handler for {where} returned an invalid answer; see the "
                "server log",
                status=403,
                code="forbidden",
            )
        return dict(result) if result else None


def filter_problem(result: Any) -> str | None:
    """Why `result` is not a filter LangGraph accepts; None when it is one."""
    if not isinstance(result, Mapping):
        return f"{type(result).__name__}, not None, a bool or a filter dict"
    for key, condition in result.items():
        if not isinstance(key, str):
            return f"a filter key that is not a string: {key!r}"
        if isinstance(condition, Mapping):
            operators = set(condition)
            if not operators or not operators <= {"$eq", "$contains"}:
                return f'a filter on "{key}" with operators other than $eq and $contains'
    return None


def matches_filter(metadata: Mapping[str, Any] | None, condition: Filter | None) -> bool:
    """Whether a resource's metadata passes a handler's filter, exactly as storage decides
    on search and count (`AuthFilter`)."""
    if not condition:
        return True
    return AuthFilter.parse(condition).matches(metadata)


def request_filter(request: Request) -> AuthFilter | None:
    """The filter the guard kept for the route to hand to storage (search, count, bulk
    operations); None when the user is unfiltered or there is no auth."""
    found = getattr(request.state, "auth_filter", None)
    return found if isinstance(found, AuthFilter) else None


def keep_filter(request: Request, condition: Filter | None) -> None:
    """Keep a handler's filter for the route (see `request_filter`)."""
    request.state.auth_filter = AuthFilter.parse(condition) if condition else None


def equalities(condition: Filter | None) -> dict[str, Any]:
    """The keys a filter pins to one value (plain or `$eq`): what a resource created under
    the filter is stamped with, so that its creator can reach it."""
    out: dict[str, Any] = {}
    for key, wanted in (condition or {}).items():
        if isinstance(wanted, Mapping):
            if "$eq" in wanted:
                out[key] = wanted["$eq"]
        else:
            out[key] = wanted
    return out
