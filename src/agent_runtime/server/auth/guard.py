"""Authorization at the route layer: each API operation is one LangGraph resource and action
(`OPERATION_ACTIONS`); before the route runs, the guard calls the handler with the value
LangGraph's types describe, writes what the handler changed back into the request, and, for a
route on one thread or assistant, answers 404 when the stored metadata fails the handler's
filter. Search and count keep the filter on `request.state.auth_filter` for storage to apply."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from starlette.requests import Request

from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.server.auth.authorize import (
    AuthError,
    Authorizer,
    Filter,
    equalities,
    keep_filter,
    matches_filter,
)
from agent_runtime.server.auth.namespace import authorize_store
from agent_runtime.server.services import services
from agent_runtime.user import AuthUser

PUBLIC = "public"
OPERATION_ACTIONS: Mapping[str, tuple[str, str] | str] = {
    "ok": PUBLIC,
    "info": PUBLIC,
    "get_openapi": PUBLIC,
    "docs": PUBLIC,
    "create_assistant": ("assistants", "create"),
    "search_assistants": ("assistants", "search"),
    "count_assistants": ("assistants", "search"),
    "get_assistant": ("assistants", "read"),
    "update_assistant": ("assistants", "update"),
    "delete_assistant": ("assistants", "delete"),
    "list_assistant_versions": ("assistants", "read"),
    "set_latest_assistant_version": ("assistants", "update"),
    "get_assistant_graph": ("assistants", "read"),
    "get_assistant_schemas": ("assistants", "read"),
    "get_assistant_subgraphs": ("assistants", "read"),
    "get_assistant_subgraphs_in_namespace": ("assistants", "read"),
    "create_thread": ("threads", "create"),
    "search_threads": ("threads", "search"),
    "count_threads": ("threads", "search"),
    "prune_threads": ("threads", "delete"),
    "get_thread": ("threads", "read"),
    "update_thread": ("threads", "update"),
    "delete_thread": ("threads", "delete"),
    "copy_thread": ("threads", "read"),
    "list_tool_calls": ("threads", "read"),
    "get_thread_state": ("threads", "read"),
    "get_thread_state_at_checkpoint": ("threads", "read"),
    "post_thread_state_at_checkpoint": ("threads", "read"),
    "update_thread_state": ("threads", "update"),
    "get_thread_history": ("threads", "read"),
    "search_thread_history": ("threads", "read"),
    "list_thread_messages": ("threads", "read"),
    "create_thread_messages": ("threads", "update"),
    "get_thread_message": ("threads", "read"),
    "update_thread_message": ("threads", "update"),
    "delete_thread_message": ("threads", "update"),
    "get_thread_tree": ("threads", "read"),
    "diff_thread_checkpoints": ("threads", "read"),
    "create_run": ("threads", "create_run"),
    "stream_run": ("threads", "create_run"),
    "wait_run": ("threads", "create_run"),
    "list_runs": ("threads", "read"),
    "get_run": ("threads", "read"),
    "delete_run": ("threads", "delete"),
    "join_run": ("threads", "read"),
    "join_run_stream": ("threads", "read"),
    "cancel_run": ("threads", "update"),
    "join_thread_stream": ("threads", "read"),
    "create_stateless_run": ("threads", "create_run"),
    "stream_stateless_run": ("threads", "create_run"),
    "wait_stateless_run": ("threads", "create_run"),
    "create_stateless_run_batch": ("threads", "create_run"),
    "cancel_runs": ("threads", "update"),
    "create_cron": ("crons", "create"),
    "create_thread_cron": ("crons", "create"),
    "search_crons": ("crons", "search"),
    "count_crons": ("crons", "search"),
    "update_cron": ("crons", "update"),
    "delete_cron": ("crons", "delete"),
    "put_item": ("store", "put"),
    "get_item": ("store", "get"),
    "delete_item": ("store", "delete"),
    "search_items": ("store", "search"),
    "list_namespaces": ("store", "list_namespaces"),
}
"""Every operation of the API (by operation id) -> the LangGraph resource and action it is,
or PUBLIC. A test keeps it complete."""

Check = Callable[["Guard", Request, AuthUser, str, str, Any], Awaitable[None]]


class Guard:
    """Runs the authorization of one request before its route."""

    def __init__(self, authorizer: Authorizer) -> None:
        self.authorizer = authorizer
        self.warned_store_filters: set[str] = set()

    async def check(self, request: Request, operation: str, argument: Any) -> None:
        """Authorize `operation` for the request's user; may rewrite `argument` in place.

        Raises:
            AuthError: the handler refused (403, or its own status).
            NotFoundError: the thread or assistant the route names is outside the filter.
        """
        rule = OPERATION_ACTIONS[operation]
        if isinstance(rule, str):  # PUBLIC
            return
        user = getattr(request.state, "auth_user", None)
        if not isinstance(user, AuthUser):
            # Routes of a public path reached without authentication have no user; every
            # other route went through AuthMiddleware.
            raise AuthError("Unauthorized: the request was not authenticated")
        resource, action = rule
        check = _CHECKS.get(operation) or _CHECKS_BY_RESOURCE[resource]
        await check(self, request, user, resource, action, argument)

    async def authorize(
        self, user: AuthUser, resource: str, action: str, value: dict[str, Any]
    ) -> Filter | None:
        return await self.authorizer.authorize(user, resource, action, value)


async def _thread_metadata(request: Request, thread_id: str) -> Mapping[str, Any] | None:
    try:
        thread = await services(request).storage.get_thread(thread_id, values=False)
    except NotFoundError:
        return None
    return thread["metadata"]


def _not_found_thread(thread_id: str) -> NotFoundError:
    # The words of the storage layer's own 404: a thread outside the filter is not there.
    return NotFoundError(f'Thread "{thread_id}" not found', code="thread_not_found")


async def require_thread(request: Request, thread_id: str, condition: Filter | None) -> None:
    """404 unless the thread is absent (the route answers that) or passes `condition`."""
    if not condition:
        return
    metadata = await _thread_metadata(request, thread_id)
    if metadata is not None and not matches_filter(metadata, condition):
        raise _not_found_thread(thread_id)


def _path_uuid(request: Request, name: str) -> str | None:
    value = request.path_params.get(name)
    if value is None:
        return None
    try:
        return str(uuid.UUID(value)) if str(uuid.UUID(value)) == value.lower() else value
    except ValueError:
        return str(value)  # the route refuses it with its own 422


async def _thread_route(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, argument: Any
) -> None:
    thread_id = _path_uuid(request, "thread_id") or ""
    value: dict[str, Any] = {"thread_id": thread_id}
    run_id = _path_uuid(request, "run_id")
    if run_id is not None:
        value["run_id"] = run_id
    if action == "update":
        if isinstance(argument, dict) and "metadata" in argument:
            value["metadata"] = argument["metadata"]
        if request.url.path.endswith("/cancel"):
            value["action"] = request.query_params.get("action", "interrupt")
    condition = await guard.authorize(user, resource, action, value)
    if isinstance(argument, dict) and "metadata" in value and "metadata" in argument:
        argument["metadata"] = value["metadata"]
    await require_thread(request, thread_id, condition)


async def _copy_thread(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, argument: Any
) -> None:
    await _thread_route(guard, request, user, "threads", "read", argument)
    # The copy is a new thread: its creation is the user's to be allowed too, and it carries
    # what the create handler stamps (and what puts it inside that handler's filter).
    value: dict[str, Any] = {"thread_id": None, "metadata": {}, "if_exists": "raise"}
    condition = await guard.authorize(user, "threads", "create", value)
    stamped = value.get("metadata") if isinstance(value.get("metadata"), dict) else {}
    request.state.auth_copy_metadata = {**(stamped or {}), **equalities(condition)}


async def _create_thread(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    await guard.authorize(user, "threads", "create", body)
    thread_id = body.get("thread_id")
    if thread_id and body.get("if_exists") == "do_nothing":
        # Answering with an existing thread would hand it to whoever guessed its id.
        read = await guard.authorize(user, "threads", "read", {"thread_id": thread_id})
        metadata = await _thread_metadata(request, str(thread_id))
        if metadata is not None and not matches_filter(metadata, read):
            raise ConflictError(f'Thread "{thread_id}" already exists', code="thread_exists")


async def _search(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    value = body if isinstance(body, dict) else {}
    keep_filter(request, await guard.authorize(user, resource, action, value))


async def _prune_threads(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    for thread_id in body.get("thread_ids") or []:
        condition = await guard.authorize(user, "threads", "delete", {"thread_id": thread_id})
        await require_thread(request, str(thread_id).lower(), condition)


async def _create_run(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    thread_id = _path_uuid(request, "thread_id")
    items = body if isinstance(body, list) else [body]
    for item in items:
        value = _run_value(item, thread_id)
        condition = await guard.authorize(user, "threads", "create_run", value)
        _write_back_run(item, value)
        if thread_id is not None:
            await require_thread(request, thread_id, condition)
        # A thread the run creates (if_not_exists, stateless) gets what puts it inside the
        # filter, so its creator can reach it.
        stamps = getattr(request.state, "auth_thread_metadata", None) or {}
        stamps[id(item)] = {**(item.get("metadata") or {}), **equalities(condition)}
        request.state.auth_thread_metadata = stamps


def _run_value(body: dict[str, Any], thread_id: str | None) -> dict[str, Any]:
    metadata = body.get("metadata")
    if metadata is None:
        metadata = body["metadata"] = {}
    kwargs = {k: v for k, v in body.items() if k not in _RUN_TOP_LEVEL}
    return {
        "thread_id": thread_id,
        "assistant_id": body.get("assistant_id"),
        "run_id": None,
        "status": "pending",
        "metadata": metadata,
        "prevent_insert_if_inflight": True,
        "multitask_strategy": body.get("multitask_strategy", "enqueue"),
        "if_not_exists": body.get("if_not_exists", "reject"),
        "after_seconds": body.get("after_seconds", 0),
        "kwargs": kwargs,
        "action": None,
    }


_RUN_TOP_LEVEL = frozenset(
    {"assistant_id", "metadata", "multitask_strategy", "if_not_exists", "after_seconds"}
)
_RUN_WRITABLE = frozenset({"input", "command", "config", "context", "metadata", "assistant_id"})


def _write_back_run(body: dict[str, Any], value: dict[str, Any]) -> None:
    if isinstance(value.get("metadata"), dict):
        body["metadata"] = value["metadata"]
    if isinstance(value.get("assistant_id"), str):
        body["assistant_id"] = value["assistant_id"]
    for key, item in (value.get("kwargs") or {}).items():
        if key in _RUN_WRITABLE:
            body[key] = item


async def _cancel_runs(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    value = {
        "thread_id": body.get("thread_id"),
        "run_ids": body.get("run_ids"),
        "action": request.query_params.get("action", "interrupt"),
    }
    condition = await guard.authorize(user, "threads", "update", value)
    # By status across threads, only runs on threads inside the filter are cancelled.
    keep_filter(request, condition)
    if not condition:
        return
    storage = services(request).storage
    threads: set[str] = set()
    if body.get("thread_id"):
        threads.add(str(body["thread_id"]).lower())
    for run_id in body.get("run_ids") or []:
        with contextlib.suppress(NotFoundError):  # the route answers 404 for it
            threads.add((await storage.find_run(str(run_id).lower()))["thread_id"])
    for thread_id in threads:
        await require_thread(request, thread_id, condition)


async def _assistant_route(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, argument: Any
) -> None:
    svc = services(request)
    raw = request.path_params.get("assistant_id", "")
    try:
        assistant_id = svc.registry.resolve_assistant_id(raw)
    except NotFoundError:
        assistant_id = raw
    value: dict[str, Any] = {"assistant_id": assistant_id}
    if action == "update" and isinstance(argument, dict):
        value.update(argument)
    condition = await guard.authorize(user, resource, action, value)
    if action == "delete" and isinstance(argument, dict) and argument.get("delete_threads"):
        # The threads that go with the assistant are deletions of threads: only those the
        # user may delete go.
        thread_value = {"thread_id": None, "assistant_id": assistant_id}
        keep_filter(request, await guard.authorize(user, "threads", "delete", thread_value))
    if action == "update" and isinstance(argument, dict):
        for key in ("metadata", "config", "context", "name", "graph_id", "description"):
            if key in value and key in argument:
                argument[key] = value[key]
        if "metadata" in value and "metadata" not in argument and value["metadata"]:
            argument["metadata"] = value["metadata"]
    if not condition:
        return
    try:
        assistant = await svc.storage.get_assistant(assistant_id)
    except NotFoundError:
        return
    if not matches_filter(assistant["metadata"], condition):
        raise NotFoundError(f'Assistant "{raw}" not found', code="assistant_not_found")


async def _create_assistant(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    await guard.authorize(user, "assistants", "create", body)
    assistant_id = body.get("assistant_id")
    if assistant_id and body.get("if_exists") == "do_nothing":
        read = await guard.authorize(user, "assistants", "read", {"assistant_id": assistant_id})
        if not read:
            return
        try:
            found = await services(request).storage.get_assistant(str(assistant_id).lower())
        except NotFoundError:
            return
        if not matches_filter(found["metadata"], read):
            raise ConflictError(
                f'Assistant "{assistant_id}" already exists', code="assistant_exists"
            )


async def _create_cron(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, body: Any
) -> None:
    thread_id = _path_uuid(request, "thread_id")
    if thread_id is not None:
        # Its fires are runs on the thread: the user must be allowed to start those.
        run = _run_value(dict(body, metadata=dict(body.get("metadata") or {})), thread_id)
        await require_thread(
            request, thread_id, await guard.authorize(user, "threads", "create_run", run)
        )
    value: dict[str, Any] = {
        "payload": body,
        "schedule": body.get("schedule"),
        "cron_id": None,
        "thread_id": thread_id,
        "user_id": user.identity,
        "end_time": body.get("end_time"),
    }
    condition = await guard.authorize(user, "crons", "create", value)
    # A cron made under a filter carries what puts it inside, so its creator can reach it.
    stamps = equalities(condition)
    if stamps:
        body["metadata"] = {**(body.get("metadata") or {}), **stamps}


async def _cron_route(
    guard: Guard, request: Request, user: AuthUser, resource: str, action: str, argument: Any
) -> None:
    cron_id = _path_uuid(request, "cron_id") or ""
    value: dict[str, Any] = {"cron_id": cron_id}
    if action == "update" and isinstance(argument, dict):
        value.update(payload=argument, schedule=argument.get("schedule"))
    condition = await guard.authorize(user, resource, action, value)
    if not condition:
        return
    try:
        cron = await services(request).storage.get_cron(cron_id)
    except NotFoundError:
        return  # the route answers 404
    if not matches_filter(cron["metadata"], condition):
        raise NotFoundError(f'Cron "{cron_id}" not found', code="cron_not_found")


_CHECKS: Mapping[str, Check] = {
    "create_thread": _create_thread,
    "search_threads": _search,
    "count_threads": _search,
    "prune_threads": _prune_threads,
    "copy_thread": _copy_thread,
    "create_run": _create_run,
    "stream_run": _create_run,
    "wait_run": _create_run,
    "create_stateless_run": _create_run,
    "stream_stateless_run": _create_run,
    "wait_stateless_run": _create_run,
    "create_stateless_run_batch": _create_run,
    "cancel_runs": _cancel_runs,
    "create_assistant": _create_assistant,
    "search_assistants": _search,
    "count_assistants": _search,
    "create_cron": _create_cron,
    "create_thread_cron": _create_cron,
    "search_crons": _search,
    "count_crons": _search,
}
_CHECKS_BY_RESOURCE: Mapping[str, Check] = {
    "threads": _thread_route,
    "assistants": _assistant_route,
    "store": authorize_store,
    "crons": _cron_route,
}
