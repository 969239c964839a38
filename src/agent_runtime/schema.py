"""Wire shapes: the JSON objects the LangGraph Server API sends and `langgraph_sdk` expects.

Only shapes live here, no behaviour. Storage backends return these; routes send them as they are.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from typing_extensions import TypedDict

Json = dict[str, Any]

ThreadStatus = Literal["idle", "busy", "interrupted", "error"]
RunStatus = Literal["pending", "running", "error", "success", "timeout", "interrupted"]
MultitaskStrategy = Literal["reject", "interrupt", "rollback", "enqueue"]
CancelAction = Literal["interrupt", "rollback"]
Lifecycle = Literal["open", "locked", "archived"]


class ModelUsage(TypedDict):
    """Tokens one model used, and what they cost."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    """None when langgraph.json has no price for this model: never a guess."""


class Usage(TypedDict):
    """Tokens and cost of a run, or summed over a thread's runs."""

    input_tokens: int
    output_tokens: int
    total_tokens: int
    cost_usd: float | None
    """The sum over models, or None if any model used has no price."""
    by_model: dict[str, ModelUsage]
    """Keyed by the model name the chat model reports."""


OnConflict = Literal["raise", "do_nothing"]
SortOrder = Literal["asc", "desc"]


class Assistant(TypedDict):
    """One assistant at its current (latest) version."""

    assistant_id: str
    graph_id: str
    config: Json
    """The RunnableConfig merged into every run of this assistant."""
    context: Json
    """Static runtime context merged into every run's context."""
    metadata: Json
    """Free-form; `created_by: "system"` marks the default assistant of a graph."""
    name: str
    description: str | None
    version: int
    """The version that is current; `POST /assistants/{id}/latest` can move it."""
    created_at: datetime
    updated_at: datetime


class AssistantVersion(TypedDict):
    """One stored version of an assistant; versions are immutable."""

    assistant_id: str
    graph_id: str
    config: Json
    context: Json
    metadata: Json
    name: str
    description: str | None
    version: int
    created_at: datetime


class Interrupt(TypedDict):
    """A pending `interrupt()` waiting for a `Command(resume=...)`."""

    value: Any
    id: str


class Thread(TypedDict):
    """A conversation: its metadata, status and the values of its latest checkpoint."""

    thread_id: str
    created_at: datetime
    updated_at: datetime
    metadata: Json
    status: ThreadStatus
    values: Json | None
    """The state values of the latest checkpoint, as JSON; None before the first run."""
    interrupts: dict[str, list[Interrupt]]
    """Pending interrupts keyed by the id of the task that raised them."""
    config: Json
    ttl: Json | None
    """`{"strategy": "delete" | "keep_latest", "ttl": minutes}` when the thread expires, else
    None."""
    lifecycle: Lifecycle
    """`open` takes writes; `locked` is read-only until reopened; `archived` is read-only for
    good."""
    visible: bool
    """False for hidden threads: reachable by id, left out of search unless asked for."""
    name: str | None
    tags: list[str]
    usage: Usage | None
    """The sum of the thread's runs' usage; None before any run reported some."""
    run_count: int
    message_count: int
    """Messages in the `messages` channel after the latest run or edit."""
    first_run_at: datetime | None
    last_run_at: datetime | None


class Run(TypedDict):
    """One execution of an assistant on a thread."""

    run_id: str
    thread_id: str
    assistant_id: str
    created_at: datetime
    updated_at: datetime
    status: RunStatus
    metadata: Json
    multitask_strategy: MultitaskStrategy
    kwargs: Json
    """What the run was asked to do: input, command, config, context, stream modes and the
    other run options, as accepted from the request."""
    attempt: int
    """1 for the first execution; a run resumed after a crash counts up."""
    error: str | None
    """Why the run ended `error` (or was interrupted by a cancel), else None."""
    usage: Usage | None
    """Tokens and cost of the run's chat model calls; None until it ends."""


OnRunCompleted = Literal["delete", "keep"]


class Cron(TypedDict):
    """A schedule on which an assistant runs, on one thread or on a new thread each time."""

    cron_id: str
    assistant_id: str
    thread_id: str | None
    """The thread every run goes to; None for a stateless cron (a new thread per run)."""
    on_run_completed: OnRunCompleted | None
    """A stateless cron's threads after their run: `delete` (the default) or `keep`; None
    for a cron on a thread."""
    end_time: datetime | None
    """No run is scheduled after this moment; None runs for ever."""
    schedule: str
    """A cron expression: 5 fields (minute hour day month weekday), or 6 with seconds last."""
    timezone: str | None
    """The IANA zone the schedule is read in; None is UTC."""
    created_at: datetime
    updated_at: datetime
    payload: Json
    """The run each firing creates, as a run-creating request body."""
    user_id: str | None
    """The authenticated user who created the cron; its runs run as that user."""
    next_run_date: datetime | None
    """When the cron fires next; None once it has ended or has no time left to fire."""
    metadata: Json
    enabled: bool
    """A disabled cron keeps its schedule and never fires."""


class ToolCall(TypedDict):
    """One tool call of a run, recorded as the tool ran."""

    id: str
    """The tool call id the model gave."""
    name: str
    args: Json
    status: Literal["success", "error"]
    result: Any
    """The tool's output when it succeeded, else None."""
    error: str | None
    run_id: str
    checkpoint_id: str | None
    """The checkpoint the call ran from: rewind there to run it again."""
    started_at: datetime
    duration_ms: float


class StoreItem(TypedDict):
    """A document in the long-term store."""

    namespace: list[str]
    key: str
    value: Json
    created_at: datetime
    updated_at: datetime


class SearchItem(StoreItem, total=False):
    score: float | None
    """Similarity score when the search had a query and the store an index; else absent."""
