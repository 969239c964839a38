"""Thread state and history routes: the state at the latest or any past checkpoint, paginated
history, and state updates (which fork when they name a past checkpoint). Each parses the
request, calls `state/`, and answers what it returns."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import ConfigDict, Field, with_config
from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.schema import Json
from agent_runtime.server.routing import Router
from agent_runtime.server.services import services
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import PathFilter, closed
from agent_runtime.state import get_history, get_state, update_state

router = Router("thread state")


@closed
class CheckpointRef(TypedDict, total=False):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    checkpoint_map: Json | None


@closed
class StateQuery(TypedDict, total=False):
    subgraphs: bool
    select: list[str] | str


@closed
class StateAtCheckpoint(TypedDict, total=False):
    checkpoint: CheckpointRef
    subgraphs: bool
    select: list[str]


@closed
class StateUpdate(TypedDict, total=False):
    values: Any
    """The update, as if `as_node` had returned it; a list of updates applies them in order."""
    as_node: str
    """The node the update is attributed to; `__copy__` copies the checkpoint unchanged."""
    checkpoint: CheckpointRef
    checkpoint_id: str
    """Update a past checkpoint instead of the latest: the result forks the history there."""


@closed
class HistoryQuery(TypedDict, total=False):
    limit: Annotated[int, Field(ge=1, le=1000)]
    before: str


@with_config(ConfigDict(extra="ignore"))
class BeforeConfigurable(TypedDict, total=False):
    thread_id: str
    checkpoint_ns: str
    checkpoint_id: str | None
    checkpoint_map: Json | None


@with_config(ConfigDict(extra="ignore"))
class BeforeConfig(TypedDict):
    """A RunnableConfig naming a checkpoint, as LangGraph's `before=` takes it. Left open: a
    config copied from a snapshot or a run may carry keys (tags, callbacks' settings, ...) that
    say nothing about where to page from."""

    configurable: BeforeConfigurable


@closed
class HistorySearch(TypedDict, total=False):
    limit: Annotated[int, Field(ge=1, le=1000)]
    before: str | CheckpointRef | BeforeConfig
    """Only checkpoints older than this one: its id, a checkpoint object, or a RunnableConfig
    (`{"configurable": {"checkpoint_id": ...}}`)."""
    metadata: PathFilter
    """Only checkpoints whose metadata has these values at these keys (`a.b` for nested)."""
    checkpoint: CheckpointRef
    """Whose history: `checkpoint_ns` picks a subgraph's."""
    select: list[str]


def _select(value: list[str] | str | None) -> list[str] | None:
    if isinstance(value, str):
        return [part for part in value.split(",") if part]
    return value


@router.get("/threads/{thread_id}/state", query=StateQuery)
async def get_thread_state(request: Request, query: StateQuery) -> Json:
    """The thread's state at its latest checkpoint; `subgraphs=true` nests subgraph states."""
    svc = services(request)
    return await get_state(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        subgraphs=query.get("subgraphs", False),
        select=_select(query.get("select")),
    )


@router.get("/threads/{thread_id}/state/{checkpoint_id}", query=StateQuery)
async def get_thread_state_at_checkpoint(request: Request, query: StateQuery) -> Json:
    """The thread's state at a past checkpoint, by id."""
    svc = services(request)
    return await get_state(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        checkpoint_id=request.path_params["checkpoint_id"],
        subgraphs=query.get("subgraphs", False),
        select=_select(query.get("select")),
    )


@router.post("/threads/{thread_id}/state/checkpoint", body=StateAtCheckpoint)
async def post_thread_state_at_checkpoint(request: Request, body: StateAtCheckpoint) -> Json:
    """The thread's state at a checkpoint given as an object (namespace and id)."""
    svc = services(request)
    return await get_state(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        checkpoint=dict(body.get("checkpoint") or {}),
        subgraphs=body.get("subgraphs", False),
        select=body.get("select"),
    )


@router.post("/threads/{thread_id}/state", body=StateUpdate)
async def update_thread_state(request: Request, body: StateUpdate) -> Json:
    """Write values into the thread's state as a node would; on a past checkpoint, this forks."""
    svc = services(request)
    checkpoint = await update_state(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        values=body.get("values"),
        as_node=body.get("as_node"),
        checkpoint=dict(body.get("checkpoint") or {}),
        checkpoint_id=body.get("checkpoint_id"),
    )
    return {"checkpoint": checkpoint}


@router.get("/threads/{thread_id}/history", query=HistoryQuery)
async def get_thread_history(request: Request, query: HistoryQuery) -> list[Json]:
    """The thread's checkpoints, newest first (`limit` default 10, at most 1000)."""
    svc = services(request)
    return await get_history(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        limit=query.get("limit", 10),
        before=query.get("before"),
    )


@router.post("/threads/{thread_id}/history", body=HistorySearch)
async def search_thread_history(request: Request, body: HistorySearch) -> list[Json]:
    """The thread's checkpoints, newest first, filtered by metadata, before a checkpoint, or
    in a subgraph's namespace."""
    svc = services(request)
    return await get_history(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        limit=body.get("limit", 10),
        before=_before_ref(body.get("before")),
        metadata=body.get("metadata"),
        checkpoint=dict(body["checkpoint"]) if body.get("checkpoint") else None,
        select=body.get("select"),
    )


def _before_ref(before: str | CheckpointRef | BeforeConfig | None) -> str | Json | None:
    if before is None or isinstance(before, str):
        return before
    if "configurable" in before:
        return dict(before["configurable"])  # type: ignore[typeddict-item]
    return dict(before)
