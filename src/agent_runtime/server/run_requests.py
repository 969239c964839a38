"""The body of every run-creating request, and turning it into a queued run: validation of
the fields the runtime must honour, defaults, and the run's stored kwargs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Annotated, Any, Literal, Required

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from agent_runtime.clock import utc_now
from agent_runtime.errors import InvalidRequestError
from agent_runtime.runs.options import RunOptions
from agent_runtime.runs.shaping import ApiStreamMode
from agent_runtime.runs.webhook import check_webhook_url
from agent_runtime.schema import Assistant, Json, MultitaskStrategy
from agent_runtime.server.assistants import resolve_assistant_id
from agent_runtime.server.limits import check_metadata_size
from agent_runtime.server.services import Services
from agent_runtime.server.validation import AfterSeconds, Metadata, closed
from agent_runtime.storage.base import NewRun


@closed
class CommandBody(TypedDict, total=False):
    resume: Any
    """The value for a pending interrupt, or a map of interrupt id to value."""
    update: Any
    goto: Any


@closed
class CheckpointBody(TypedDict, total=False):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str
    checkpoint_map: Json | None


@closed
class RunCreate(TypedDict, total=False):
    assistant_id: Required[Annotated[str, Field(min_length=1)]]
    """An assistant id, or a graph name for that graph's default assistant."""
    input: Any
    command: CommandBody
    config: Json
    context: Json
    metadata: Metadata
    checkpoint: CheckpointBody
    checkpoint_id: str
    """Start from this past checkpoint: the run forks the thread's history there."""
    checkpoint_during: bool
    """Deprecated form of `durability`: true is "async", false is "exit"."""
    interrupt_before: Literal["*"] | list[str]
    interrupt_after: Literal["*"] | list[str]
    stream_mode: ApiStreamMode | list[ApiStreamMode]
    stream_subgraphs: bool
    stream_resumable: bool
    """Accepted for compatibility: every run's events can be resumed with Last-Event-ID."""
    on_disconnect: Literal["cancel", "continue"]
    multitask_strategy: MultitaskStrategy
    if_not_exists: Literal["create", "reject"]
    after_seconds: AfterSeconds
    on_completion: Literal["delete", "keep"]
    durability: Literal["sync", "async", "exit"]
    webhook: Annotated[str, Field(min_length=1)]
    # Refused (a 422 saying why), so left out of /openapi.json.
    feedback_keys: SkipJsonSchema[list[str]]
    """Not supported (LangSmith feedback); sending it is a 422."""
    langsmith_tracer: SkipJsonSchema[Json]
    """Not supported (LangSmith tracing); sending it is a 422."""
    strict_resume: bool
    """With `command.resume`: refuse (409) unless the thread is interrupted."""
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]]
    """Added to the thread's tags, with the run's `config.tags`."""


_UNSUPPORTED = {
    "feedback_keys": "LangSmith feedback is not supported by agent-runtime",
    "langsmith_tracer": "LangSmith tracing is not supported by agent-runtime",
}


async def new_run(
    svc: Services, body: RunCreate, *, thread_id: str, stateless: bool = False
) -> tuple[NewRun, Assistant]:
    """Check what the run asks for and describe the run to queue.

    Raises:
        InvalidRequestError: a field cannot be honoured.
        NotFoundError: the assistant does not exist.
        PayloadTooLargeError: the run's metadata is over `limits.max_metadata_bytes`.
    """
    for field, reason in _UNSUPPORTED.items():
        if field in body:
            raise InvalidRequestError(f"{field}: {reason}", code="unsupported_field")
    limit = svc.config.limits.max_metadata_bytes
    check_metadata_size(body.get("metadata") or {}, limit=limit, owner="run")
    command = body.get("command") or {}
    if "resume" in command and command["resume"] is None:
        # LangGraph itself fails on Command(resume=None) with an internal error.
        raise InvalidRequestError(
            "command.resume: null cannot resume an interrupt; send a value (or omit resume)",
            code="invalid_resume",
        )
    assistant = await svc.storage.get_assistant(resolve_assistant_id(svc, body["assistant_id"]))
    graph_id = assistant["graph_id"]
    if graph_id not in svc.registry:
        raise InvalidRequestError(
            f'Assistant "{assistant["assistant_id"]}" runs graph "{graph_id}", which this server '
            f"does not serve; known graphs: {', '.join(svc.registry.graph_ids)}",
            code="graph_not_found",
        )
    if "webhook" in body:
        await check_webhook_url(body["webhook"], allow_private=svc.config.webhooks_allow_private)
    await _check_nodes(svc, graph_id, body)
    options = RunOptions.from_request(body, stateless=stateless)
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
        not_before=utc_now() + timedelta(seconds=after) if after else None,
        tags=_thread_tags(body),
        # A kept stateless run leaves its thread behind, hidden from search.
        thread_visible=not stateless,
        thread_ttl=svc.config.default_thread_ttl,
        max_pending=svc.config.limits.max_pending_runs_per_thread,
    )
    return new, assistant


def _thread_tags(body: RunCreate) -> list[str]:
    config_tags = (body.get("config") or {}).get("tags") or []
    if not isinstance(config_tags, list) or not all(isinstance(t, str) for t in config_tags):
        raise InvalidRequestError("config.tags: must be a list of strings")
    tags = list(dict.fromkeys([*config_tags, *(body.get("tags") or [])]))
    if any(len(tag) > 64 or not tag for tag in tags):
        raise InvalidRequestError("config.tags: each tag must be 1 to 64 characters")
    return tags


async def _check_nodes(svc: Services, graph_id: str, body: RunCreate) -> None:
    wanted: list[tuple[str, list[str]]] = []
    for field in ("interrupt_before", "interrupt_after"):
        names = body.get(field)
        if isinstance(names, list):
            wanted.append((field, names))
    if not wanted:
        return
    graph = await svc.registry.get_graph(graph_id)
    known = [name for name in graph.nodes if not name.startswith("__")]
    for field, names in wanted:
        for name in names:
            if name not in graph.nodes:
                raise InvalidRequestError(
                    f'{field}: graph "{graph_id}" has no node "{name}"; its nodes are '
                    f"{', '.join(known)}",
                    code="unknown_node",
                )
