"""The records storage takes and gives back beside the API's own shapes (`schema.py`): queries,
new rows and patches, how a run ended, retention and pruning. Plain frozen data; no IO."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, NamedTuple

from agent_runtime.encoding import dumps, loads
from agent_runtime.runs.options import RunOptions
from agent_runtime.schema import (
    Interrupt,
    Json,
    Lifecycle,
    MultitaskStrategy,
    Run,
    RunStatus,
    SortOrder,
    ThreadStatus,
    Usage,
)
from agent_runtime.storage.filters import AuthFilter

AssistantSortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]
ThreadSortBy = Literal[
    "thread_id", "status", "created_at", "updated_at", "state_updated_at",
    "total_tokens", "cost_usd", "run_count", "last_run_at",
]  # fmt: skip
NULLABLE_SORT_KEYS: frozenset[ThreadSortBy] = frozenset({"cost_usd", "last_run_at"})
"""The keys a thread may have no value for (no priced run, no run yet); every other one is NOT
NULL in both backends' tables."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantQuery:
    """Filters for searching and counting assistants; every filter must hold."""

    graph_id: str | None = None
    name: str | None = None
    """Case-insensitive substring of the assistant's name."""
    metadata: Json | None = None
    """JSON containment: the assistant's metadata holds every key with an equal value."""
    auth: AuthFilter | None = None
    """What the user's authorization handler allows: rows whose metadata fails it are not
    there (not returned, not counted)."""
    limit: int = 10
    offset: int = 0
    sort_by: AssistantSortBy = "created_at"
    sort_order: SortOrder = "desc"


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadQuery:
    """Filters for searching and counting threads; every filter must hold."""

    ids: Sequence[str] | None = None
    metadata: Json | None = None
    values: Json | None = None
    """JSON containment over the values of the thread's latest checkpoint."""
    status: ThreadStatus | None = None
    tags: Sequence[str] | None = None
    """Threads carrying every one of these tags."""
    name: str | None = None
    """Case-insensitive substring of the thread's name."""
    text: str | None = None
    """Case-insensitive substring of the thread's name or of its first message's content
    (`values.messages[0].content` of its latest state)."""
    lifecycle: Lifecycle | None = None
    visible: bool = True
    """True: visible threads only; False: hidden threads only."""
    auth: AuthFilter | None = None
    """What the user's authorization handler allows: rows whose metadata fails it are not
    there (not returned, not counted)."""
    limit: int = 10
    offset: int = 0
    sort_by: ThreadSortBy = "created_at"
    sort_order: SortOrder = "desc"


@dataclass(frozen=True, slots=True, kw_only=True)
class NewThread:
    """A thread to create; the id is already chosen by the caller."""

    thread_id: str
    metadata: Json = field(default_factory=dict)
    ttl: Json | None = None
    name: str | None = None
    tags: Sequence[str] = ()
    visible: bool = True


@dataclass(frozen=True, slots=True, kw_only=True)
class ThreadPatch:
    """Changes to a thread; None keeps the current value. `metadata` is merged."""

    metadata: Json | None = None
    ttl: Json | None = None
    name: str | None = None
    tags: Sequence[str] | None = None
    visible: bool | None = None
    lifecycle: Lifecycle | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class NewAssistant:
    """An assistant to create; `assistant_id` is already chosen by the caller."""

    assistant_id: str
    graph_id: str
    config: Json = field(default_factory=dict)
    context: Json = field(default_factory=dict)
    metadata: Json = field(default_factory=dict)
    name: str = "Untitled"
    description: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantPatch:
    """Changes for a new assistant version; None keeps the current value.

    `metadata` is merged into the current metadata; the others replace.
    """

    graph_id: str | None = None
    config: Json | None = None
    context: Json | None = None
    metadata: Json | None = None
    name: str | None = None
    description: str | None = None


class FinishedRun(NamedTuple):
    """What `Storage.finish_run` gives back: the run as it ended, and when its thread's next
    queued run falls due (`Storage.next_due_time`, read in the same transaction), so a worker
    need not ask again; None when nothing is queued."""

    run: Run
    next_due: datetime | None


class AssistantStamp(NamedTuple):
    """An assistant as an earlier read saw it (`runs.create.AssistantCache`): its version and
    when it last changed, which every update, version switch or re-creation moves."""

    version: int
    updated_at: datetime


class AssistantChangedError(Exception):
    """`Storage.create_run` refused a run whose `assistant_seen` is no longer the stored
    assistant (updated, moved to another version or deleted since, maybe by another process);
    nothing was written. The caller reads the assistant again and makes the run anew."""

    def __init__(self, assistant_id: str) -> None:
        super().__init__(f'Assistant "{assistant_id}" changed since it was read')
        self.assistant_id = assistant_id


@dataclass(frozen=True, slots=True, kw_only=True)
class NewRun:
    """A run to queue; ids are chosen by the caller."""

    run_id: str
    thread_id: str
    assistant_id: str
    graph_id: str
    metadata: Json = field(default_factory=dict)
    options: RunOptions = field(default_factory=RunOptions)
    """What the run was asked to do; stored as the run's `kwargs`."""
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    """What to do when the thread does not exist: create it in the same transaction, or 404."""
    thread_metadata: Json | None = None
    """Metadata for a thread created by `if_not_exists="create"`."""
    not_before: datetime | None = None
    """The run is not started before this time (from `after_seconds`)."""
    tags: Sequence[str] = ()
    """Added to the thread's tags (from the run's `config.tags` or `tags`)."""
    thread_visible: bool = True
    """Visibility of a thread created by `if_not_exists="create"`."""
    thread_ttl: Json | None = None
    """TTL of a thread created by `if_not_exists="create"` (the configured default)."""
    max_tags: int = 20
    """The thread may carry at most this many tags once the run's are added."""
    max_pending: int | None = None
    """With `enqueue`, refuse the run (429) when the thread already has this many runs
    pending; checked in the transaction that queues it, so concurrent creates cannot pass it."""
    assistant_seen: AssistantStamp | None = None
    """The assistant as a cached read saw it: the transaction that queues the run raises
    `AssistantChangedError` if the stored one differs. None: read just before, not checked."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Claim:
    """Who would claim a run at its creation (`Storage.create_run`), as `claim_next_run`
    claims: the process's owner id, holding it for `lease` from the creation."""

    owner: str
    lease: timedelta
    durable: bool = True
    """False where the client that creates the run attends it (a stream or a wait): then the
    creation's commit does not wait for the disk (SQLite's `synchronous=NORMAL`, Postgres's
    `synchronous_commit = off` for that transaction). A crash of the process loses nothing;
    a power cut or OS crash in the milliseconds before the run's next durable commit (its
    first checkpoint, its end, or any other commit after it) loses the run, whose client's
    connection dies with the server. Background runs are always created durably."""


class ThreadBrief(NamedTuple):
    """What a run reads of its thread as it starts, besides the state (`thread_brief`)."""

    message_count: int
    """Messages in the thread's values after its latest run or edit."""
    metadata: Json


class CreatedRun(NamedTuple):
    """What `Storage.create_run` made and found."""

    run: Run
    to_cancel: list[Run]
    """The active runs the caller must now cancel (`interrupt` and `rollback`)."""
    brief: ThreadBrief | None
    """The thread as the run starts, read in the same transaction, when the run was created
    claimed (its status `running`); None for a queued run, which reads it when it starts."""


def from_past(new: NewRun) -> bool:
    """Whether the run starts from a past checkpoint it names rather than the thread's latest."""
    options = new.options
    return bool(options.checkpoint_id or (options.checkpoint or {}).get("checkpoint_id"))


def claimed_from_past(run: Run) -> bool:
    """`from_past` for a claimed run, from its stored options: only a first attempt starts
    from the checkpoint it names (a retry continues from its own latest)."""
    kwargs = run["kwargs"]
    named = kwargs.get("checkpoint_id") or (kwargs.get("checkpoint") or {}).get("checkpoint_id")
    return bool(named) and run["attempt"] <= 1


def new_run_columns(
    claim: Claim | None, now: datetime
) -> tuple[RunStatus, int, str | None, datetime | None, int]:
    """`status`, `attempt`, `owner`, `lease_expires_at` and `progress_mark` of a new run:
    queued, or claimed with its creation as `claim_next_run` claims a first attempt (whose
    progress mark is 1: it cannot have written a checkpoint yet)."""
    if claim is None:
        return "pending", 0, None, None, 0
    return "running", 1, claim.owner, now + claim.lease, 1


def finish_guard(
    only_if_pending: bool, held_by: str | None, mark: str
) -> tuple[str, tuple[str, ...]]:
    """`finish_run`'s extra condition on the run's row (`mark`: the backend's parameter
    placeholder) and its parameters: still pending, or still running under `held_by`."""
    if only_if_pending:
        return " AND status = 'pending'", ()
    if held_by is not None:
        return f" AND status = 'running' AND owner = {mark}", (held_by,)
    return "", ()


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOutcome:
    """How a run ended and what its thread looks like afterwards."""

    status: RunStatus
    error: str | None = None
    thread_status: ThreadStatus = "idle"
    """The thread's status unless more runs are queued on it (then it stays busy)."""
    values: Json | None = None
    """The thread's latest state values as JSON; None (with `values_json` None) keeps what the
    thread had."""
    values_json: bytes | None = None
    """The same values already encoded, when whoever built the outcome had to encode them
    anyway (a run's last `values` event): storage and `wait` use these bytes as they are, so a
    run encodes its final state once. Given alone, `values` stays None."""
    values_json_stable: int = 0
    """How many leading bytes of `values_json` the thread's next values will likely start with
    too (its messages but the closing bracket); a guess storage may keep work on, never trust."""
    message_count: int | None = None
    """Messages in the values, counted on the graph's own objects; None counts them in
    `values` (and leaves the thread's count alone if there is no message list)."""
    interrupts: dict[str, list[Interrupt]] = field(default_factory=dict)
    usage: Usage | None = None
    """The run's token usage and cost; added to the thread's totals."""

    def encoded_values(self) -> bytes | None:
        """The values as JSON, encoded here only if nobody has yet; None keeps the thread's."""
        if self.values_json is not None:
            return self.values_json
        return None if self.values is None else dumps(self.values)

    def decoded_values(self) -> Json | None:
        """The values as a dict of JSON values, decoded here only if nobody has yet."""
        if self.values is not None or self.values_json is None:
            return self.values
        decoded: Json = loads(self.values_json)
        return decoded

    def count_messages(self) -> int | None:
        """How many messages the values hold; None when they hold no message list."""
        if self.message_count is not None:
            return self.message_count
        found = (self.values or {}).get("messages")
        return len(found) if isinstance(found, list) else None


PruneStrategy = Literal["delete", "keep_latest"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RetentionPolicy:
    """When idle threads expire, beyond each thread's own TTL (from `agent_runtime.limits`)."""

    inactivity: timedelta | None = None
    max_age: timedelta | None = None
    strategy: PruneStrategy = "delete"


@dataclass(frozen=True, slots=True, kw_only=True)
class PruneResult:
    pruned: list[str]
    skipped: dict[str, str]
    """Thread id -> why it was left alone (locked, busy, unknown, delta channels)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointSummary:
    """One checkpoint without its values: enough to draw a thread's branches."""

    checkpoint_ns: str
    checkpoint_id: str
    parent_checkpoint_id: str | None
    metadata: Json
    created_at: str | None
    channel_versions: Json
    versions_seen: dict[str, Json]
    channels_with_values: frozenset[str]
    """Channels holding a value at this checkpoint (what makes a trigger available)."""
