"""Runs without a thread of the caller's (`/runs...`): each gets a fresh thread, deleted when
the run ends unless `on_completion` is `keep`; plus batch creation and bulk cancel."""

from __future__ import annotations

import uuid
from typing import Annotated, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.errors import InvalidRequestError
from agent_runtime.schema import Run, RunStatus
from agent_runtime.server.auth.authorize import request_filter
from agent_runtime.server.routing import SSE, Router, json_response
from agent_runtime.server.run_requests import RunCreate
from agent_runtime.server.runs import (
    manager_of,
    run_headers,
    run_result,
    start_run,
    start_streamed_run,
)
from agent_runtime.server.services import services
from agent_runtime.server.validation import UuidStr, closed, parse_uuid

router = Router("stateless runs")


@closed
class BulkCancel(TypedDict, total=False):
    thread_id: UuidStr
    run_ids: list[UuidStr]
    status: Literal["pending", "running", "all"]


@closed
class BulkCancelQuery(TypedDict, total=False):
    action: Literal["interrupt", "rollback"]


async def _start(request: Request, body: RunCreate, *, attended: bool = False) -> Run:
    thread_id = str(uuid.uuid4())
    return await start_run(request, body, thread_id=thread_id, stateless=True, attended=attended)


@router.post("/runs", body=RunCreate, response=Run)
async def create_stateless_run(request: Request, body: RunCreate) -> Response:
    """Start a run on a new thread, in the background."""
    run = await _start(request, body)
    return json_response(run, headers=run_headers(run, tail="/stream"))


@router.post("/runs/stream", body=RunCreate, media_type=SSE)
async def stream_stateless_run(request: Request, body: RunCreate) -> Response:
    """Start a run on a new thread and stream its events."""
    return await start_streamed_run(request, body, thread_id=str(uuid.uuid4()), stateless=True)


@router.post("/runs/wait", body=RunCreate)
async def wait_stateless_run(request: Request, body: RunCreate) -> Response:
    """Start a run on a new thread, wait for it, and answer with its final values."""
    run = await _start(request, body, attended=True)
    return await run_result(request, run, headers=run_headers(run, tail="/join"))


@router.post("/runs/batch", body=Annotated[list[RunCreate], Field(min_length=1, max_length=100)])
async def create_stateless_run_batch(request: Request, body: list[RunCreate]) -> list[Run]:
    """Start several runs, each on a new thread, in the background."""
    return [await _start(request, item) for item in body]


@router.post("/runs/cancel", body=BulkCancel, query=BulkCancelQuery, status=204)
async def cancel_runs(request: Request, body: BulkCancel) -> None:
    """Cancel runs by id, by thread, or every pending and/or running run.

    Named runs that have already ended are skipped, not refused: the request asks for a state
    (none of these runs going on) that they already meet, a run can end on its own between the
    client's read and this call, and refusing one would leave the rest half-cancelled. An id
    that names no run is still a 404, before anything is cancelled."""
    query: BulkCancelQuery = request.state.query
    svc = services(request)
    if not body.get("run_ids") and not body.get("thread_id") and not body.get("status"):
        raise InvalidRequestError("Name the runs to cancel: run_ids, thread_id or status")
    status = body.get("status", "all")
    statuses: tuple[RunStatus, ...] = ("pending", "running") if status == "all" else (status,)
    thread_id = parse_uuid(body["thread_id"], field="thread_id") if "thread_id" in body else None
    run_ids = [parse_uuid(r, field="run_ids[]") for r in body.get("run_ids") or []]
    if run_ids:
        runs = [await svc.storage.find_run(run_id) for run_id in run_ids]
        runs = [r for r in runs if thread_id is None or r["thread_id"] == thread_id]
    else:
        runs = await svc.storage.search_runs(
            thread_id=thread_id, statuses=statuses, auth=request_filter(request)
        )
    manager = manager_of(request)
    # Queued runs first: cancelling a running run first would let its worker claim the next.
    runs.sort(key=lambda run: run["status"] != "pending")
    for run in runs:
        if run["status"] in statuses:
            await manager.cancel(run, action=query.get("action", "interrupt"))
