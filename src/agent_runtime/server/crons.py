"""Cron routes (`/runs/crons...`, `/threads/{id}/runs/crons`): create, search, count, update,
delete, as `langgraph_sdk`'s `client.crons` calls them. `crons/` decides what a request
becomes; these parse, hand over and shape the answer."""

from __future__ import annotations

from typing import Annotated, Any, Literal, Required

from pydantic import Field
from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.crons.define import cron_patch, new_cron, run_payload
from agent_runtime.errors import NotFoundError
from agent_runtime.runs.shaping import ApiStreamMode
from agent_runtime.schema import Cron, Json, MultitaskStrategy, SortOrder
from agent_runtime.server.auth.authorize import request_filter
from agent_runtime.server.routing import Router
from agent_runtime.server.runs import with_run_user
from agent_runtime.server.services import services
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import (
    ContainmentFilter,
    Metadata,
    Offset,
    UuidStr,
    closed,
    parse_uuid,
)
from agent_runtime.storage.cron_records import CronQuery, CronSortBy

router = Router("crons")

Schedule = Annotated[str, Field(min_length=1, max_length=256)]
"""A cron expression: 5 fields (minute hour day month weekday), or 6 with seconds last."""
TimeZone = Annotated[str, Field(min_length=1, max_length=64)]
"""An IANA time zone name, such as "America/New_York"; the schedule is read there."""
Moment = Annotated[str, Field(max_length=64, json_schema_extra={"format": "date-time"})]
"""An ISO 8601 date and time; UTC when it names no offset."""
CronField = Literal[
    "cron_id", "assistant_id", "thread_id", "end_time", "schedule", "timezone", "created_at",
    "updated_at", "user_id", "payload", "next_run_date", "metadata", "now", "on_run_completed",
    "enabled",
]  # fmt: skip


@closed
class ThreadCronCreate(TypedDict, total=False):
    schedule: Required[Schedule]
    assistant_id: Required[Annotated[str, Field(min_length=1)]]
    """An assistant id, or a graph name for that graph's default assistant."""
    input: Any
    metadata: Metadata
    """The cron's metadata, given to each run it makes."""
    config: Json
    context: Json
    checkpoint_during: bool
    """Deprecated form of `durability`: true is "async", false is "exit"."""
    interrupt_before: Literal["*"] | list[str]
    interrupt_after: Literal["*"] | list[str]
    webhook: Annotated[str, Field(min_length=1)]
    multitask_strategy: MultitaskStrategy
    """What a fire does when the thread is busy (as for a run request)."""
    end_time: Moment | None
    """No run is scheduled after this moment."""
    enabled: bool
    timezone: TimeZone
    stream_mode: ApiStreamMode | list[ApiStreamMode]
    stream_subgraphs: bool
    stream_resumable: bool
    durability: Literal["sync", "async", "exit"]


@closed
class CronCreate(ThreadCronCreate, total=False):
    on_run_completed: Literal["delete", "keep"]
    """The new thread of each fire after its run: deleted (the default) or kept."""


@closed
class CronUpdate(TypedDict, total=False):
    schedule: Schedule
    end_time: Moment | None
    """null clears the end: the cron runs for ever."""
    input: Any
    metadata: Metadata
    """Merged into the cron's metadata."""
    config: Json
    context: Json
    webhook: Annotated[str, Field(min_length=1)]
    interrupt_before: Literal["*"] | list[str]
    interrupt_after: Literal["*"] | list[str]
    on_run_completed: Literal["delete", "keep"]
    enabled: bool
    timezone: TimeZone
    stream_mode: ApiStreamMode | list[ApiStreamMode]
    stream_subgraphs: bool
    stream_resumable: bool
    durability: Literal["sync", "async", "exit"]


@closed
class CronSearch(TypedDict, total=False):
    assistant_id: Annotated[str, Field(min_length=1)]
    thread_id: UuidStr
    enabled: bool
    metadata: ContainmentFilter
    limit: Annotated[int, Field(ge=1, le=1000)]
    offset: Offset
    sort_by: CronSortBy
    sort_order: SortOrder
    select: list[CronField]


@closed
class CronCount(TypedDict, total=False):
    assistant_id: Annotated[str, Field(min_length=1)]
    thread_id: UuidStr
    metadata: ContainmentFilter


def cron_id_of(request: Request) -> str:
    return parse_uuid(request.path_params["cron_id"], field="cron_id")


async def _create(request: Request, body: ThreadCronCreate, thread_id: str | None) -> Cron:
    svc = services(request)
    user = getattr(request.state, "auth_user", None)
    payload = run_payload(with_run_user(body, user))  # type: ignore[arg-type]
    new = await new_cron(
        body,
        payload,
        thread_id=thread_id,
        user_id=None if user is None else user.identity,
        storage=svc.storage,
        registry=svc.registry,
        config=svc.config,
        clock=svc.clock,
    )
    cron = await svc.storage.create_cron(new)
    if svc.crons is not None:
        svc.crons.wake()
    return cron


@router.post("/runs/crons", body=CronCreate, response=Cron)
async def create_cron(request: Request, body: CronCreate) -> Cron:
    """Schedule an assistant: each fire runs it on a new thread.

    The thread is deleted after its run unless `on_run_completed` is `keep`."""
    return await _create(request, body, None)


@router.post("/threads/{thread_id}/runs/crons", body=ThreadCronCreate, response=Cron)
async def create_thread_cron(request: Request, body: ThreadCronCreate) -> Cron:
    """Schedule an assistant on a thread: each fire is a run on it, as a run request is
    (its `multitask_strategy` applies when the thread is busy)."""
    return await _create(request, body, thread_id_of(request))


@router.post("/runs/crons/search", body=CronSearch, response=list[Cron], selects=True)
async def search_crons(request: Request, body: CronSearch) -> list[Any]:
    """List crons matching every filter given, newest first by default."""
    svc = services(request)
    query = _query(request, body)
    if query is None:
        return []
    query = CronQuery(
        assistant_id=query.assistant_id,
        thread_id=query.thread_id,
        enabled=body.get("enabled"),
        metadata=query.metadata,
        auth=query.auth,
        limit=body.get("limit", 10),
        offset=body.get("offset", 0),
        sort_by=body.get("sort_by", "created_at"),
        sort_order=body.get("sort_order", "desc"),
    )
    found = await svc.storage.search_crons(query)
    select = body.get("select")
    if not select:
        return found
    now = svc.clock.now()
    return [{k: now if k == "now" else cron[k] for k in select} for cron in found]  # type: ignore[literal-required]


@router.post("/runs/crons/count", body=CronCount, response=int)
async def count_crons(request: Request, body: CronCount) -> int:
    """Count crons matching every filter given."""
    query = _query(request, body)
    return 0 if query is None else await services(request).storage.count_crons(query)


def _query(request: Request, body: CronSearch | CronCount) -> CronQuery | None:
    """The filters of a search or count; None when they name an assistant that is not there.

    Raises:
        InvalidRequestError: `thread_id` is not a UUID (checked first, whatever else matches).
    """
    thread_id = body.get("thread_id")
    if thread_id is not None:
        thread_id = parse_uuid(thread_id, field="thread_id")
    assistant_id = body.get("assistant_id")
    if assistant_id is not None:
        try:
            assistant_id = services(request).registry.resolve_assistant_id(assistant_id)
        except NotFoundError:
            return None
    return CronQuery(
        assistant_id=assistant_id,
        thread_id=thread_id,
        metadata=body.get("metadata"),
        auth=request_filter(request),
    )


@router.patch("/runs/crons/{cron_id}", body=CronUpdate, response=Cron)
async def update_cron(request: Request, body: CronUpdate) -> Cron:
    """Change a cron. A new schedule, time zone or end time, or enabling it, reschedules it
    from now."""
    svc = services(request)
    current = await svc.storage.get_cron(cron_id_of(request))
    patch = await cron_patch(
        current,
        body,
        storage=svc.storage,
        registry=svc.registry,
        config=svc.config,
        clock=svc.clock,
    )
    cron = await svc.storage.update_cron(current["cron_id"], patch)
    if svc.crons is not None:
        svc.crons.wake()
    return cron


@router.delete("/runs/crons/{cron_id}", status=204)
async def delete_cron(request: Request, _: None) -> None:
    """Delete a cron; the runs it made stay."""
    await services(request).storage.delete_cron(cron_id_of(request))
