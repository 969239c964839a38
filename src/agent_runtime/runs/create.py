"""Run creation, in one place: a validated run-creating request body (on a thread, or stateless)
becomes the run to queue and its assistant, after every check the runtime must make first. It
takes its collaborators explicitly and never sees an HTTP request."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from agent_runtime.clock import Clock
from agent_runtime.config import RuntimeConfig
from agent_runtime.encoding import to_jsonable
from agent_runtime.errors import ConflictError, InvalidRequestError, NotFoundError
from agent_runtime.limits import check_metadata_size
from agent_runtime.observability.langsmith import langsmith_tracing_enabled
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.options import RunOptions
from agent_runtime.runs.webhook import check_webhook_url
from agent_runtime.schema import Assistant
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import AssistantStamp, NewRun

CACHED_ASSISTANTS = 1024
"""Assistants an `AssistantCache` keeps, the oldest read dropped first."""


class AssistantCache:
    """The assistants runs were last made with, so making a run need not read its assistant
    again (a trip to the database on every run). A cached assistant goes with a stamp
    (`NewRun.assistant_seen`) that the transaction queueing the run checks against the
    stored one: a run is never made with an assistant changed meanwhile, here or by another
    process (the caller catches `AssistantChangedError`, calls `forget` and makes the run
    again). One per process. Each run gets copies of the assistant's JSON (config, context,
    metadata), as it did reading them from the database: a graph that changes its config in
    place changes no other run's."""

    def __init__(self, max_entries: int = CACHED_ASSISTANTS) -> None:
        self._max_entries = max_entries
        self._assistants: dict[str, Assistant] = {}

    async def get(
        self, storage: Storage, assistant_id: str
    ) -> tuple[Assistant, AssistantStamp | None]:
        """The assistant and, when it comes from the cache, the stamp to check it by.

        Raises:
            NotFoundError: the assistant does not exist.
        """
        cached = self._assistants.get(assistant_id)
        if cached is not None:
            return _copied(cached), AssistantStamp(cached["version"], cached["updated_at"])
        assistant = await storage.get_assistant(assistant_id)
        if len(self._assistants) >= self._max_entries:
            del self._assistants[next(iter(self._assistants))]
        # Kept as read; the caller has the read itself, the next run a copy.
        self._assistants[assistant_id] = _copied(assistant)
        return assistant, None

    def forget(self, assistant_id: str) -> None:
        self._assistants.pop(assistant_id, None)


def _copied(assistant: Assistant) -> Assistant:
    return {
        **assistant,
        "config": to_jsonable(assistant["config"]),
        "context": to_jsonable(assistant["context"]),
        "metadata": to_jsonable(assistant["metadata"]),
    }


_UNSUPPORTED = {
    "feedback_keys": "LangSmith feedback is not supported by agent-runtime",
}


async def new_run(
    body: Mapping[str, Any],
    *,
    thread_id: str,
    stateless: bool,
    storage: Storage,
    registry: GraphRegistry,
    config: RuntimeConfig,
    clock: Clock,
    assistants: AssistantCache | None = None,
) -> tuple[NewRun, Assistant]:
    """Check what the run asks for and describe the run to queue on `thread_id` (a new
    thread when `stateless`); `clock` is the runtime's, on which `after_seconds` counts.
    With `assistants`, the assistant may come from that cache, and then the run is stamped
    with it (see `AssistantCache`).

    Raises:
        ConflictError: `strict_resume` is set and the thread is not interrupted.
        InvalidRequestError: a field cannot be honoured.
        NotFoundError: the assistant (or, without `if_not_exists: create`, the thread) does
            not exist.
        PayloadTooLargeError: the run's metadata is over `limits.max_metadata_bytes`.
    """
    await _check_strict_resume(storage, body, thread_id=thread_id, stateless=stateless)
    for name, reason in _UNSUPPORTED.items():
        if name in body:
            raise InvalidRequestError(f"{name}: {reason}", code="unsupported_field")
    if "langsmith_tracer" in body:
        _check_langsmith_tracer(body["langsmith_tracer"])
    limit = config.limits.max_metadata_bytes
    check_metadata_size(body.get("metadata") or {}, limit=limit, owner="run")
    command = body.get("command") or {}
    if "resume" in command and command["resume"] is None:
        # LangGraph itself fails on Command(resume=None) with an internal error.
        raise InvalidRequestError(
            "command.resume: null cannot resume an interrupt; send a value (or omit resume)",
            code="invalid_resume",
        )
    assistant_id = registry.resolve_assistant_id(body["assistant_id"])
    seen = None
    if assistants is None:
        assistant = await storage.get_assistant(assistant_id)
    else:
        assistant, seen = await assistants.get(storage, assistant_id)
    registry.require_served(assistant)
    graph_id = assistant["graph_id"]
    options = RunOptions.from_request(body, stateless=stateless)
    if options.webhook is not None:
        await check_webhook_url(options.webhook, allow_private=config.webhooks_allow_private)
    await _check_nodes(registry, graph_id, options)
    after = options.after_seconds
    new = NewRun(
        run_id=str(uuid.uuid4()),
        thread_id=thread_id,
        assistant_id=assistant["assistant_id"],
        graph_id=graph_id,
        metadata=body.get("metadata") or {},
        options=options,
        multitask_strategy=options.multitask_strategy,
        if_not_exists="create" if stateless else options.if_not_exists,
        thread_metadata={},
        not_before=clock.now() + timedelta(seconds=after) if after else None,
        tags=_thread_tags(body),
        # A kept stateless run leaves its thread behind, hidden from search.
        thread_visible=not stateless,
        thread_ttl=config.default_thread_ttl,
        max_pending=config.limits.max_pending_runs_per_thread,
        assistant_seen=seen,
    )
    return new, assistant


def _check_langsmith_tracer(settings: Mapping[str, Any]) -> None:
    if not langsmith_tracing_enabled():
        raise InvalidRequestError(
            "langsmith_tracer: this server does not trace to LangSmith; set LANGSMITH_TRACING="
            "true and LANGSMITH_API_KEY in its environment, or drop langsmith_tracing",
            code="unsupported_field",
        )
    example = settings.get("example_id")
    if example is not None:
        try:
            uuid.UUID(str(example))
        except ValueError:
            raise InvalidRequestError(
                f'langsmith_tracer.example_id: "{example}" is not a UUID; send the id of a '
                "LangSmith dataset example"
            ) from None


async def _check_strict_resume(
    storage: Storage, body: Mapping[str, Any], *, thread_id: str, stateless: bool
) -> None:
    if not (body.get("strict_resume") and "resume" in (body.get("command") or {})):
        return
    if stateless:
        raise ConflictError(
            "A stateless run starts on a new thread, so there is nothing to resume "
            "(strict_resume is set)",
            code="nothing_to_resume",
        )
    try:
        thread = await storage.get_thread(thread_id, values=False)
    except NotFoundError:
        if body.get("if_not_exists") != "create":
            raise
        raise ConflictError(
            f'Thread "{thread_id}" does not exist yet, so there is nothing to resume '
            "(strict_resume is set)",
            code="nothing_to_resume",
        ) from None
    if thread["status"] != "interrupted":
        raise ConflictError(
            f'Thread "{thread_id}" is {thread["status"]}, not interrupted, so there is '
            "nothing to resume (strict_resume is set)",
            code="nothing_to_resume",
        )


def _thread_tags(body: Mapping[str, Any]) -> list[str]:
    config_tags = (body.get("config") or {}).get("tags") or []
    if not isinstance(config_tags, list) or not all(isinstance(t, str) for t in config_tags):
        raise InvalidRequestError("config.tags: must be a list of strings")
    tags = list(dict.fromkeys([*config_tags, *(body.get("tags") or [])]))
    if any(len(tag) > 64 or not tag for tag in tags):
        raise InvalidRequestError("config.tags: each tag must be 1 to 64 characters")
    return tags


async def _check_nodes(registry: GraphRegistry, graph_id: str, options: RunOptions) -> None:
    wanted = [
        (name, nodes)
        for name, nodes in (
            ("interrupt_before", options.interrupt_before),
            ("interrupt_after", options.interrupt_after),
        )
        if isinstance(nodes, tuple)
    ]
    if not wanted:
        return
    graph = await registry.get_graph(graph_id)
    known = [name for name in graph.nodes if not name.startswith("__")]
    for field, nodes in wanted:
        for node in nodes:
            if node not in graph.nodes:
                raise InvalidRequestError(
                    f'{field}: graph "{graph_id}" has no node "{node}"; its nodes are '
                    f"{', '.join(known)}",
                    code="unknown_node",
                )
