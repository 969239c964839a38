"""Thread routes: create, read, update metadata, delete, search, count and copy. State, history
and runs of a thread have their own modules."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any, Literal, Required

from pydantic import Field
from pydantic.json_schema import SkipJsonSchema
from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.errors import InvalidRequestError
from agent_runtime.limits import check_metadata_size
from agent_runtime.schema import Json, Lifecycle, OnConflict, SortOrder, Thread, ThreadStatus
from agent_runtime.server.auth.authorize import request_filter
from agent_runtime.server.routing import Router, json_response
from agent_runtime.server.services import services
from agent_runtime.server.validation import (
    ContainmentFilter,
    Metadata,
    Offset,
    TtlMinutes,
    UuidStr,
    closed,
    parse_uuid,
)
from agent_runtime.storage.records import (
    NewThread,
    PruneStrategy,
    ThreadPatch,
    ThreadQuery,
    ThreadSortBy,
)

router = Router("threads")

Limit = Annotated[int, Field(ge=1, le=1000)]
ThreadField = Literal[
    "thread_id", "created_at", "updated_at", "metadata", "config", "context", "status",
    "values", "interrupts", "ttl", "lifecycle", "visible", "name", "tags", "usage",
    "run_count", "message_count", "first_run_at", "last_run_at",
]  # fmt: skip
Name = Annotated[str, Field(max_length=200)]
SearchText = Annotated[str, Field(min_length=1, max_length=200)]
Tags = Annotated[list[Annotated[str, Field(min_length=1, max_length=64)]], Field(max_length=20)]
_EXTRACT_PATH = re.compile(r"^[A-Za-z_][\w-]*(\.[A-Za-z_][\w-]*|\[-?\d+\])*$")


@closed
class ThreadTTL(TypedDict, total=False):
    strategy: PruneStrategy
    """What happens when the TTL runs out: `delete` (default) deletes the thread and its
    checkpoints; `keep_latest` keeps the thread, trimmed to each namespace's latest checkpoint
    (threads with a DeltaChannel are left whole)."""
    ttl: TtlMinutes
    """Minutes of inactivity (no update, run or state edit) until the thread expires."""


@closed
class ThreadCreate(TypedDict, total=False):
    thread_id: UuidStr
    """A UUID; one is generated when absent."""
    metadata: Metadata
    if_exists: OnConflict
    ttl: ThreadTTL
    supersteps: SkipJsonSchema[list[Json]]
    """Not supported yet: state updates at creation. Sending it is a 422."""
    name: Name
    tags: Tags
    """At most 20 tags of at most 64 characters each."""
    visible: bool
    """False makes a hidden thread: reachable by id, left out of search and count."""


@closed
class ThreadUpdate(TypedDict, total=False):
    metadata: Metadata
    """Merged into the current metadata."""
    ttl: ThreadTTL
    lifecycle: Lifecycle
    """open <-> locked, open -> archived, locked -> archived; locked and archived threads are
    read-only."""
    name: Name
    tags: Tags
    """Replaces the thread's tags."""
    visible: bool


@closed
class ThreadSearch(TypedDict, total=False):
    metadata: ContainmentFilter
    values: ContainmentFilter
    ids: list[UuidStr]
    status: ThreadStatus
    limit: Limit
    offset: Offset
    sort_by: ThreadSortBy
    sort_order: SortOrder
    tags: list[str]
    """Threads carrying every one of these tags."""
    name: str
    """Case-insensitive substring of the thread's name."""
    text: SearchText
    """Case-insensitive substring of the thread's name or of its first message's content."""
    lifecycle: Lifecycle
    visible: bool
    """Hidden threads are left out unless this is false, which lists hidden threads only."""
    select: list[ThreadField]
    extract: Annotated[dict[str, str], Field(max_length=10)]
    """Alias -> path into the thread (`values.messages[-1]`); results land in `extracted`."""


@closed
class ThreadCount(TypedDict, total=False):
    metadata: ContainmentFilter
    values: ContainmentFilter
    status: ThreadStatus
    tags: list[str]
    name: str
    text: SearchText
    """Case-insensitive substring of the thread's name or of its first message's content."""
    lifecycle: Lifecycle
    visible: bool


@closed
class ThreadGetQuery(TypedDict, total=False):
    include: str
    """Comma-separated extra fields; every field is always included, so this is accepted as is."""


@closed
class ThreadPrune(TypedDict, total=False):
    thread_ids: Required[Annotated[list[UuidStr], Field(min_length=1, max_length=1000)]]
    strategy: PruneStrategy
    """`delete` (default) removes the threads; `keep_latest` keeps each one's latest
    checkpoint only."""


def thread_id_of(request: Request) -> str:
    return parse_uuid(request.path_params["thread_id"], field="thread_id")


@router.post("/threads", body=ThreadCreate, response=Thread)
async def create_thread(request: Request, body: ThreadCreate) -> Thread:
    """Create a thread, optionally with a chosen id, metadata and a TTL."""
    if body.get("supersteps"):
        raise InvalidRequestError(
            "supersteps is not supported yet: create the thread, then update its state",
            code="unsupported_field",
        )
    raw_id = body.get("thread_id")
    thread_id = parse_uuid(raw_id, field="thread_id") if raw_id is not None else str(uuid.uuid4())
    svc = services(request)
    metadata = body.get("metadata") or {}
    check_metadata_size(metadata, limit=svc.config.limits.max_metadata_bytes)
    new = NewThread(
        thread_id=thread_id,
        metadata=metadata,
        ttl=_ttl(body.get("ttl")) or svc.config.default_thread_ttl,
        name=body.get("name"),
        tags=body.get("tags") or (),
        visible=body.get("visible", True),
    )
    return await svc.storage.create_thread(new, if_exists=body.get("if_exists", "raise"))


@router.post("/threads/search", body=ThreadSearch, response=list[Thread], selects=True)
async def search_threads(request: Request, body: ThreadSearch) -> Any:
    """List threads matching every filter given, newest first by default."""
    ids = [parse_uuid(value, field="ids[]") for value in body.get("ids") or []] or None
    query = ThreadQuery(
        ids=ids,
        metadata=body.get("metadata"),
        values=body.get("values"),
        status=body.get("status"),
        tags=body.get("tags"),
        name=body.get("name"),
        text=body.get("text"),
        lifecycle=body.get("lifecycle"),
        visible=body.get("visible", True),
        auth=request_filter(request),
        limit=body.get("limit", 10),
        offset=body.get("offset", 0),
        sort_by=body.get("sort_by", "created_at"),
        sort_order=body.get("sort_order", "desc"),
    )
    extract = body.get("extract") or {}
    for alias, path in extract.items():
        if not _EXTRACT_PATH.match(path):
            raise InvalidRequestError(
                f'extract.{alias}: "{path}" is not a path like "values.messages[-1]"'
            )
    found = await services(request).storage.search_threads(query)
    items: list[Json] = []
    for thread in found:
        item: Json = dict(thread)
        select = body.get("select")
        if select:
            item = {key: item.get(key) for key in select}
        if extract:
            item["extracted"] = {alias: extract_path(thread, p) for alias, p in extract.items()}
        items.append(item)
    headers = {}
    if len(found) == query.limit:
        headers["X-Pagination-Next"] = str(query.offset + query.limit)
    return json_response(items, headers=headers)


class PruneSkip(TypedDict):
    thread_id: str
    reason: str


class ThreadPruneResult(TypedDict):
    pruned_count: int
    skipped: list[PruneSkip]
    """Threads left alone, with why (locked, busy, unknown, or delta channels under
    keep_latest)."""


@router.post("/threads/prune", body=ThreadPrune, response=ThreadPruneResult)
async def prune_threads(request: Request, body: ThreadPrune) -> Json:
    """Delete threads, or trim each to its latest checkpoint. Locked and busy threads are
    skipped (and listed with the reason), as LangGraph's prune does with what it cannot touch."""
    thread_ids = [parse_uuid(value, field="thread_ids[]") for value in body["thread_ids"]]
    result = await services(request).storage.prune_threads(
        thread_ids, strategy=body.get("strategy", "delete")
    )
    return {
        "pruned_count": len(result.pruned),
        "skipped": [{"thread_id": k, "reason": v} for k, v in result.skipped.items()],
    }


@router.post("/threads/count", body=ThreadCount, response=int)
async def count_threads(request: Request, body: ThreadCount) -> int:
    """Count threads matching every filter given."""
    query = ThreadQuery(
        metadata=body.get("metadata"),
        values=body.get("values"),
        status=body.get("status"),
        tags=body.get("tags"),
        name=body.get("name"),
        text=body.get("text"),
        lifecycle=body.get("lifecycle"),
        visible=body.get("visible", True),
        auth=request_filter(request),
    )
    return await services(request).storage.count_threads(query)


@router.get("/threads/{thread_id}", query=ThreadGetQuery, response=Thread)
async def get_thread(request: Request, _: ThreadGetQuery) -> Thread:
    """Get a thread with its status and the values of its latest checkpoint."""
    return await services(request).storage.get_thread(thread_id_of(request))


@router.patch("/threads/{thread_id}", body=ThreadUpdate, response=Thread, more_statuses={204: None})
async def update_thread(request: Request, body: ThreadUpdate) -> Any:
    """Merge metadata into a thread; change its TTL, name, tags, visibility or lifecycle."""
    svc = services(request)
    thread_id = thread_id_of(request)
    if body.get("metadata"):
        current = await svc.storage.get_thread(thread_id, values=False)
        check_metadata_size(
            {**current["metadata"], **body["metadata"]},
            limit=svc.config.limits.max_metadata_bytes,
        )
    patch = ThreadPatch(
        metadata=body.get("metadata"),
        ttl=_ttl(body.get("ttl")),
        name=body.get("name"),
        tags=body.get("tags"),
        visible=body.get("visible"),
        lifecycle=body.get("lifecycle"),
    )
    thread = await svc.storage.update_thread(thread_id, patch)
    if request.headers.get("prefer") == "return=minimal":
        return json_response(None, status=204)
    return thread


@router.delete("/threads/{thread_id}", status=204)
async def delete_thread(request: Request, _: None) -> None:
    """Delete a thread with its runs and its whole checkpoint history."""
    await services(request).storage.delete_thread(thread_id_of(request))


@router.post("/threads/{thread_id}/copy", response=Thread)
async def copy_thread(request: Request, _: None) -> Thread:
    """Copy a thread, with its whole checkpoint history, under a new id."""
    storage = services(request).storage
    copy = await storage.copy_thread(thread_id_of(request), str(uuid.uuid4()))
    stamps = getattr(request.state, "auth_copy_metadata", None)
    if stamps and any(copy["metadata"].get(k, _ABSENT) != v for k, v in stamps.items()):
        # What the create handler stamps on a new thread goes on the copy, which is one.
        copy = await storage.update_thread(copy["thread_id"], ThreadPatch(metadata=stamps))
    return copy


_ABSENT = object()


def _ttl(ttl: ThreadTTL | None) -> Json | None:
    if ttl is None:
        return None
    if "ttl" not in ttl:
        raise InvalidRequestError('ttl: the field "ttl" (minutes) is required')
    return {"strategy": ttl.get("strategy", "delete"), "ttl": ttl["ttl"]}


def extract_path(document: Any, path: str) -> Any:
    """The value at a dotted path with [index] steps (negative from the end); None if absent."""
    current = document
    for name, index in re.findall(r"([A-Za-z_][\w-]*)|\[(-?\d+)\]", path):
        if name:
            current = current.get(name) if isinstance(current, dict) else None
        elif isinstance(current, list) and -len(current) <= int(index) < len(current):
            current = current[int(index)]
        else:
            current = None
        if current is None:
            return None
    return current
