"""Time-travel routes beyond LangGraph: the checkpoint tree of a thread and the diff between two
checkpoints. Each parses the request and calls `state/`."""

from __future__ import annotations

from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.schema import Json
from agent_runtime.server.routing import Router
from agent_runtime.server.services import services
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import closed
from agent_runtime.state import diff_checkpoints, get_tree

router = Router("thread state")


# `from` is a Python keyword, hence the functional form.
_DiffQuery = TypedDict("_DiffQuery", {"from": str, "to": str, "checkpoint_ns": str}, total=False)
DiffQuery = closed(_DiffQuery)


class TreeNode(TypedDict):
    checkpoint_id: str
    parent_checkpoint_id: str | None
    checkpoint_ns: str
    step: int | None
    source: str | None
    run_id: str | None
    created_at: str | None
    next: list[str]
    """Nodes the checkpoint's channel updates trigger (tasks sent with `Send` are not listed)."""


@router.get("/threads/{thread_id}/tree", response=list[TreeNode])
async def get_thread_tree(request: Request, _: None) -> list[Json]:
    """Every checkpoint of the thread, oldest first, with its parent and no values: enough to
    draw each branch of a long thread in one cheap call."""
    svc = services(request)
    return await get_tree(svc.storage, svc.registry, thread_id_of(request))


@router.get("/threads/{thread_id}/history/diff", query=DiffQuery)
async def diff_thread_checkpoints(request: Request, query: Json) -> Json:
    """What changed between two checkpoints: channels added, removed and changed, and for
    message lists the messages added, removed and changed, by id. `to` defaults to the latest
    checkpoint and `from` to `to`'s parent.

    Both sides are the checkpoints' state values as `GET /threads/{id}/state/{checkpoint_id}`
    shows them, so channels that store deltas (LangGraph's `DeltaChannel`) compare as the
    whole lists they stand for. A thread whose graph is not registered has no state to show,
    and no differences either."""
    svc = services(request)
    return await diff_checkpoints(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        from_id=query.get("from"),
        to_id=query.get("to"),
        namespace=query.get("checkpoint_ns", ""),
    )
