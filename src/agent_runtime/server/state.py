"""Thread state and history routes: the state at the latest or any past checkpoint, paginated
history, and state updates (which fork when they name a past checkpoint). Reads go through the
storage's read checkpointer so they never hold up a running graph's writes."""

from __future__ import annotations

from typing import Annotated, Any

from langchain_core.runnables import RunnableConfig
from langgraph.errors import InvalidUpdateError
from pydantic import ConfigDict, Field, with_config
from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.errors import ConflictError, InvalidRequestError, NotFoundError
from agent_runtime.lifecycle import require_editable
from agent_runtime.runs.executor import AnyGraph, state_outcome
from agent_runtime.schema import Json, Thread
from agent_runtime.server.routing import Router
from agent_runtime.server.services import Services, services
from agent_runtime.server.snapshots import (
    check_checkpoint_id,
    checkpoint_json,
    empty_snapshot,
    select_fields,
    snapshot_json,
)
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import PathFilter, closed

router = Router("thread state")
SPECIAL_NODES = ("__copy__", "__input__", "__start__", "__end__")


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


async def _thread(svc: Services, request: Request) -> Thread:
    return await svc.storage.get_thread(thread_id_of(request), values=False)


async def thread_graph(svc: Services, thread: Thread, *, for_reads: bool) -> AnyGraph | None:
    """The graph a thread runs (from the `graph_id` its runs stamp), or None if unknown."""
    graph_id = thread["metadata"].get("graph_id")
    if not isinstance(graph_id, str) or graph_id not in svc.registry:
        return None
    graph = await svc.registry.get_graph(graph_id)
    if for_reads:
        return graph.copy(update={"checkpointer": svc.storage.read_checkpointer})
    return graph


def _config(thread_id: str, ref: Json | None = None, checkpoint_id: str | None = None) -> Json:
    configurable: Json = {"thread_id": thread_id, "checkpoint_ns": ""}
    if ref:
        configurable["checkpoint_ns"] = ref.get("checkpoint_ns") or ""
        if ref.get("checkpoint_id"):
            configurable["checkpoint_id"] = check_checkpoint_id(
                ref["checkpoint_id"], field="checkpoint.checkpoint_id"
            )
        if ref.get("checkpoint_map"):
            configurable["checkpoint_map"] = ref["checkpoint_map"]
    if checkpoint_id:
        configurable["checkpoint_id"] = checkpoint_id
    return {"configurable": configurable}


async def _require_checkpoint(svc: Services, config: Json) -> None:
    configurable = config["configurable"]
    if not configurable.get("checkpoint_id"):
        return
    found = await svc.storage.read_checkpointer.aget_tuple(config)  # type: ignore[arg-type]
    if found is None:
        raise NotFoundError(
            f'Checkpoint "{configurable["checkpoint_id"]}" not found on thread '
            f'"{configurable["thread_id"]}"'
            + (
                f' in namespace "{configurable["checkpoint_ns"]}"'
                if configurable["checkpoint_ns"]
                else ""
            ),
            code="checkpoint_not_found",
        )


async def _state(
    svc: Services, thread: Thread, config: Json, *, subgraphs: bool, select: list[str] | None
) -> Json:
    await _require_checkpoint(svc, config)
    graph = await thread_graph(svc, thread, for_reads=True)
    if graph is None:
        return select_fields(empty_snapshot(thread["thread_id"]), select)
    snapshot = await graph.aget_state(config, subgraphs=subgraphs)  # type: ignore[arg-type]
    if snapshot.created_at is None and not snapshot.values:
        return select_fields(empty_snapshot(thread["thread_id"]), select)
    return select_fields(snapshot_json(snapshot), select)


def _select(value: list[str] | str | None) -> list[str] | None:
    if isinstance(value, str):
        return [part for part in value.split(",") if part]
    return value


@router.get("/threads/{thread_id}/state", query=StateQuery)
async def get_thread_state(request: Request, query: StateQuery) -> Json:
    """The thread's state at its latest checkpoint; `subgraphs=true` nests subgraph states."""
    svc = services(request)
    thread = await _thread(svc, request)
    return await _state(
        svc,
        thread,
        _config(thread["thread_id"]),
        subgraphs=query.get("subgraphs", False),
        select=_select(query.get("select")),
    )


@router.get("/threads/{thread_id}/state/{checkpoint_id}", query=StateQuery)
async def get_thread_state_at_checkpoint(request: Request, query: StateQuery) -> Json:
    """The thread's state at a past checkpoint, by id."""
    svc = services(request)
    thread = await _thread(svc, request)
    checkpoint_id = check_checkpoint_id(request.path_params["checkpoint_id"], field="checkpoint_id")
    return await _state(
        svc,
        thread,
        _config(thread["thread_id"], checkpoint_id=checkpoint_id),
        subgraphs=query.get("subgraphs", False),
        select=_select(query.get("select")),
    )


@router.post("/threads/{thread_id}/state/checkpoint", body=StateAtCheckpoint)
async def post_thread_state_at_checkpoint(request: Request, body: StateAtCheckpoint) -> Json:
    """The thread's state at a checkpoint given as an object (namespace and id)."""
    svc = services(request)
    thread = await _thread(svc, request)
    return await _state(
        svc,
        thread,
        _config(thread["thread_id"], dict(body.get("checkpoint") or {})),
        subgraphs=body.get("subgraphs", False),
        select=body.get("select"),
    )


@router.post("/threads/{thread_id}/state", body=StateUpdate)
async def update_thread_state(request: Request, body: StateUpdate) -> Json:
    """Write values into the thread's state as a node would; on a past checkpoint, this forks."""
    svc = services(request)
    thread = await _thread(svc, request)
    thread_id = thread["thread_id"]
    require_editable(thread, doing="updating its state", action="have its state updated")
    graph = await thread_graph(svc, thread, for_reads=False)
    if graph is None:
        raise ConflictError(
            f'Thread "{thread_id}" has never run and names no graph, so its state has no shape '
            'yet; run it first, or create it with metadata {"graph_id": ...}',
            code="thread_has_no_graph",
        )
    checkpoint_id = body.get("checkpoint_id")
    if checkpoint_id is not None:
        checkpoint_id = check_checkpoint_id(checkpoint_id, field="checkpoint_id")
    config = _config(thread_id, dict(body.get("checkpoint") or {}), checkpoint_id)
    await _require_checkpoint(svc, config)
    as_node = body.get("as_node")
    if as_node is not None and as_node not in graph.nodes and as_node not in SPECIAL_NODES:
        known = ", ".join(n for n in graph.nodes if not n.startswith("__"))
        raise InvalidRequestError(
            f'as_node: graph "{thread["metadata"]["graph_id"]}" has no node "{as_node}"; its '
            f"nodes are {known} (or __copy__ to copy the checkpoint unchanged)",
            code="unknown_node",
        )
    try:
        updated: RunnableConfig = await graph.aupdate_state(
            config,  # type: ignore[arg-type]
            body.get("values"),
            as_node=as_node,
        )
    except (InvalidUpdateError, ValueError) as exc:
        # ValueError: the channel's reducer refused the values (say, removing an unknown id).
        raise InvalidRequestError(
            f"The update cannot be applied: {exc}", code="invalid_update"
        ) from exc
    await svc.storage.settle_thread(thread_id, await state_outcome(graph, thread_id))
    return {"checkpoint": checkpoint_json(updated)}


@router.get("/threads/{thread_id}/history", query=HistoryQuery)
async def get_thread_history(request: Request, query: HistoryQuery) -> list[Json]:
    """The thread's checkpoints, newest first (`limit` default 10, at most 1000)."""
    return await _history(
        request, limit=query.get("limit", 10), before=query.get("before"), metadata=None,
        checkpoint=None, select=None,
    )  # fmt: skip


@router.post("/threads/{thread_id}/history", body=HistorySearch)
async def search_thread_history(request: Request, body: HistorySearch) -> list[Json]:
    """The thread's checkpoints, newest first, filtered by metadata, before a checkpoint, or
    in a subgraph's namespace."""
    before = body.get("before")
    return await _history(
        request,
        limit=body.get("limit", 10),
        before=_before_ref(before),
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


async def _history(
    request: Request,
    *,
    limit: int,
    before: str | Json | None,
    metadata: Json | None,
    checkpoint: Json | None,
    select: list[str] | None,
) -> list[Json]:
    svc = services(request)
    thread = await _thread(svc, request)
    thread_id = thread["thread_id"]
    config = _config(thread_id, checkpoint)
    config["configurable"].pop("checkpoint_id", None)
    before_config = None
    if before is not None:
        before_id = before if isinstance(before, str) else before.get("checkpoint_id")
        before_id = check_checkpoint_id(before_id, field="before")
        before_config = _config(thread_id, {**(checkpoint or {}), "checkpoint_id": before_id})
        await _require_checkpoint(svc, before_config)
    graph = await thread_graph(svc, thread, for_reads=True)
    if graph is None:
        return []
    states = graph.aget_state_history(
        config,  # type: ignore[arg-type]
        filter=metadata or None,
        before=before_config,  # type: ignore[arg-type]
        limit=limit,
    )
    return [select_fields(snapshot_json(s), select) async for s in states]
