"""The storage protocol every backend implements: assistants, threads, and the handles to
LangGraph's checkpointer and store. Routes and the run manager only ever see this protocol."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal, Protocol

from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.store.base import BaseStore

from agent_runtime.schema import (
    Assistant,
    AssistantVersion,
    Json,
    OnConflict,
    SortOrder,
    Thread,
    ThreadStatus,
)

AssistantSortBy = Literal["assistant_id", "graph_id", "name", "created_at", "updated_at"]
ThreadSortBy = Literal["thread_id", "status", "created_at", "updated_at", "state_updated_at"]


@dataclass(frozen=True, slots=True, kw_only=True)
class AssistantQuery:
    """Filters for searching and counting assistants; every filter must hold."""

    graph_id: str | None = None
    name: str | None = None
    """Case-insensitive substring of the assistant's name."""
    metadata: Json | None = None
    """JSON containment: the assistant's metadata holds every key with an equal value."""
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
    limit: int = 10
    offset: int = 0
    sort_by: ThreadSortBy = "created_at"
    sort_order: SortOrder = "desc"


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


class Storage(Protocol):
    """What the runtime stores outside LangGraph's checkpointer, plus handles to it.

    Every method raises `NotFoundError` for unknown ids, `ConflictError` for duplicates and
    `StorageError` when the backend itself fails.
    """

    @property
    def checkpointer(self) -> BaseCheckpointSaver[str]: ...

    @property
    def store(self) -> BaseStore: ...

    async def setup(self) -> None:
        """Open connections and create or migrate tables; idempotent."""

    async def close(self) -> None:
        """Release connections; the storage cannot be used afterwards."""

    # Assistants

    async def create_assistant(self, new: NewAssistant, *, if_exists: OnConflict) -> Assistant: ...

    async def get_assistant(self, assistant_id: str) -> Assistant: ...

    async def update_assistant(self, assistant_id: str, patch: AssistantPatch) -> Assistant: ...

    async def delete_assistant(self, assistant_id: str, *, delete_threads: bool = False) -> None:
        """Delete the assistant and its versions; with `delete_threads`, also every thread
        whose metadata names it as `assistant_id`."""

    async def search_assistants(self, query: AssistantQuery) -> list[Assistant]: ...

    async def count_assistants(self, query: AssistantQuery) -> int: ...

    async def list_assistant_versions(
        self, assistant_id: str, *, metadata: Json | None, limit: int, offset: int
    ) -> list[AssistantVersion]: ...

    async def set_latest_assistant_version(self, assistant_id: str, version: int) -> Assistant: ...

    # Threads

    async def create_thread(
        self, thread_id: str, *, metadata: Json, ttl: Json | None, if_exists: OnConflict
    ) -> Thread: ...

    async def get_thread(self, thread_id: str) -> Thread: ...

    async def update_thread(
        self, thread_id: str, *, metadata: Json | None, ttl: Json | None
    ) -> Thread: ...

    async def delete_thread(self, thread_id: str) -> None:
        """Delete the thread, its runs and every checkpoint it has."""

    async def search_threads(self, query: ThreadQuery) -> list[Thread]: ...

    async def count_threads(self, query: ThreadQuery) -> int: ...

    async def copy_thread(self, thread_id: str, new_thread_id: str) -> Thread:
        """Copy the thread's row and its whole checkpoint history under a new id."""

    async def sweep_expired_threads(self) -> int:
        """Delete every idle thread whose TTL has run out; returns how many were deleted."""
