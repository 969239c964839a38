"""The body of every run-creating request, as the API documents and validates it; what it
becomes is decided in `runs/create.py` and `runs/options.py`."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Required

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from typing_extensions import TypedDict

from agent_runtime.runs.shaping import ApiStreamMode
from agent_runtime.schema import Json, MultitaskStrategy
from agent_runtime.server.validation import AfterSeconds, Metadata, UuidStr, closed


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
class LangSmithTracing(TypedDict, total=False):
    """Where LangSmith files the run's trace; honoured when the server traces to LangSmith
    (`LANGSMITH_TRACING=true`), else a 422."""

    project_name: Annotated[str, Field(min_length=1, max_length=256)]
    """The LangSmith project to trace to, instead of the server's `LANGSMITH_PROJECT`."""
    example_id: UuidStr
    """The dataset example the run's trace belongs to."""


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
    langsmith_tracer: LangSmithTracing
    """LangSmith project and dataset example of the run's trace (the SDK's
    `langsmith_tracing`); a 422 unless the server traces to LangSmith."""
    strict_resume: bool
    """With `command.resume`: refuse (409) unless the thread is interrupted."""
    tags: list[Annotated[str, Field(min_length=1, max_length=64)]]
    """Added to the thread's tags, with the run's `config.tags`."""
