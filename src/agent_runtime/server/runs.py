"""Run routes on a thread: create (background, streamed, waited), list, get, delete, join,
join the stream, cancel. The run manager does the work; these shape requests and responses."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.encoding import dumps
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.lifecycle import require_open
from agent_runtime.runs.manager import RunManager
from agent_runtime.schema import Run, RunStatus
from agent_runtime.server.routing import SSE, Router, json_response
from agent_runtime.server.run_requests import RunCreate, new_run
from agent_runtime.server.services import Services, services
from agent_runtime.server.sse import sse_response
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import Offset, closed, parse_uuid
from agent_runtime.storage.base import RunOutcome
from agent_runtime.streaming import parse_last_event_id

router = Router("runs")


RunField = Literal[
    "run_id", "thread_id", "assistant_id", "created_at", "updated_at", "status", "metadata",
    "multitask_strategy", "kwargs", "attempt", "error", "usage",
]  # fmt: skip


@closed
class RunListQuery(TypedDict, total=False):
    limit: Annotated[int, Field(ge=1, le=1000)]
    offset: Offset
    status: RunStatus
    select: RunField | list[RunField]
    """Only these fields of each run (repeat the parameter for several)."""


@closed
class JoinStreamQuery(TypedDict, total=False):
    cancel_on_disconnect: bool
    stream_mode: Any
    """Accepted for compatibility; the stream carries the modes the run was created with."""


@closed
class CancelQuery(TypedDict, total=False):
    wait: bool
    action: Literal["interrupt", "rollback"]


def manager_of(request: Request) -> RunManager:
    return services(request).runs


def run_id_of(request: Request) -> str:
    return parse_uuid(request.path_params["run_id"], field="run_id")


def run_headers(run: Run, *, tail: str) -> dict[str, str]:
    """`Location` (where to reconnect) and `Content-Location` (the run itself)."""
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    return {"Location": base + tail, "Content-Location": base}


async def _strict_resume(svc: Services, thread_id: str, body: RunCreate) -> None:
    command = body.get("command") or {}
    if body.get("strict_resume") and "resume" in command:
        try:
            thread = await svc.storage.get_thread(thread_id, values=False)
        except NotFoundError:
            if body.get("if_not_exists") != "create":
                raise
            raise ConflictError(
                f'Thread "{thread_id}" does not exist yet, so there is nothing to resume '
                "(strict_resume is set)",
                code="nothing_to_resume",
            ) from None
        if thread["status"] != "interrupted":
            raise ConflictError(
                f'Thread "{thread_id}" is {thread["status"]}, not interrupted, so there is '
                "nothing to resume (strict_resume is set)",
                code="nothing_to_resume",
            )


async def start_run(request: Request, body: RunCreate, *, thread_id: str, stateless: bool) -> Run:
    svc = services(request)
    if stateless and body.get("strict_resume") and "resume" in (body.get("command") or {}):
        raise ConflictError(
            "A stateless run starts on a new thread, so there is nothing to resume "
            "(strict_resume is set)",
            code="nothing_to_resume",
        )
    if not stateless:
        await _strict_resume(svc, thread_id, body)
    new, assistant = await new_run(svc, body, thread_id=thread_id, stateless=stateless)
    return await manager_of(request).create(new, assistant=assistant)


async def run_result(request: Request, run: Run, *, headers: dict[str, str]) -> Response:
    """What `wait` and `join` answer: the thread's final values (with `__interrupt__` when
    interrupted), or `{"__error__": ...}` when the run failed."""
    final, outcome = await manager_of(request).wait(run)
    status = final["status"] if final else (outcome.status if outcome else None)
    error = final["error"] if final else (outcome.error if outcome else None)
    if status == "error":
        kind, _, message = (error or "Error: the run failed").partition(": ")
        return json_response({"__error__": {"error": kind, "message": message}}, headers=headers)
    if outcome is None or (outcome.values is None and outcome.values_json is None):
        thread = await services(request).storage.get_thread(run["thread_id"])
        outcome = RunOutcome(
            status="success", values=thread["values"], interrupts=thread["interrupts"]
        )
    return Response(_with_interrupts(outcome), media_type="application/json", headers=headers)


def _with_interrupts(outcome: RunOutcome) -> bytes:
    # A run that ended without interrupts answers with the bytes it stored, not a new encoding.
    pending = [i for group in outcome.interrupts.values() for i in group]
    if pending:
        values = outcome.decoded_values()
        if values is None or isinstance(values, dict):
            return dumps({**(values or {}), "__interrupt__": pending})
    return outcome.encoded_values() or b"{}"


def stream_run_response(request: Request, run: Run, body: RunCreate) -> Response:
    manager = manager_of(request)
    on_disconnect = None
    if body.get("on_disconnect", "continue") == "cancel":

        async def on_disconnect() -> None:
            current = await services(request).storage.get_run(run["thread_id"], run["run_id"])
            await manager.cancel(current, action="interrupt")

    return sse_response(
        services(request).events,
        run["run_id"],
        after=-1,
        headers=run_headers(run, tail="/stream"),
        on_disconnect=on_disconnect,
    )


@router.post("/threads/{thread_id}/runs", body=RunCreate, response=Run)
async def create_run(request: Request, body: RunCreate) -> Response:
    """Start a run in the background and answer with it at once."""
    run = await start_run(request, body, thread_id=thread_id_of(request), stateless=False)
    return json_response(run, headers=run_headers(run, tail="/stream"))


@router.post("/threads/{thread_id}/runs/stream", body=RunCreate, media_type=SSE)
async def stream_run(request: Request, body: RunCreate) -> Response:
    """Start a run and stream its events as server-sent events."""
    run = await start_run(request, body, thread_id=thread_id_of(request), stateless=False)
    return stream_run_response(request, run, body)


@router.post("/threads/{thread_id}/runs/wait", body=RunCreate)
async def wait_run(request: Request, body: RunCreate) -> Response:
    """Start a run, wait for it to end, and answer with the thread's final values."""
    run = await start_run(request, body, thread_id=thread_id_of(request), stateless=False)
    return await run_result(request, run, headers=run_headers(run, tail="/join"))


@router.get("/threads/{thread_id}/runs", query=RunListQuery, response=list[Run], selects=True)
async def list_runs(request: Request, query: RunListQuery) -> list[Any]:
    """The thread's runs, newest first."""
    found = await services(request).storage.list_runs(
        thread_id_of(request),
        limit=query.get("limit", 10),
        offset=query.get("offset", 0),
        status=query.get("status"),
    )
    select = query.get("select")
    if not select:
        return found
    fields = [select] if isinstance(select, str) else select
    return [{field: run[field] for field in fields} for run in found]


@router.get("/threads/{thread_id}/runs/{run_id}", response=Run)
async def get_run(request: Request, _: None) -> Run:
    """One run of the thread."""
    return await services(request).storage.get_run(thread_id_of(request), run_id_of(request))


@router.delete("/threads/{thread_id}/runs/{run_id}", status=204)
async def delete_run(request: Request, _: None) -> None:
    """Delete a run that has ended; an active run must be cancelled first (409)."""
    svc = services(request)
    run = await svc.storage.get_run(thread_id_of(request), run_id_of(request))
    thread = await svc.storage.get_thread(run["thread_id"], values=False)
    require_open(thread["thread_id"], thread["lifecycle"], "have its runs deleted")
    if run["status"] in ("pending", "running"):
        raise ConflictError(
            f'Run "{run["run_id"]}" is {run["status"]}; cancel it before deleting it',
            code="run_active",
        )
    await svc.storage.delete_run(run["thread_id"], run["run_id"], checkpoints=False)


@router.get("/threads/{thread_id}/runs/{run_id}/join")
async def join_run(request: Request, _: None) -> Response:
    """Wait for a run to end and answer with the thread's final values."""
    run = await services(request).storage.get_run(thread_id_of(request), run_id_of(request))
    return await run_result(request, run, headers={})


@router.get("/threads/{thread_id}/runs/{run_id}/stream", query=JoinStreamQuery, media_type=SSE)
async def join_run_stream(request: Request, query: JoinStreamQuery) -> Response:
    """Follow a run's events; with `Last-Event-ID`, first replay every event after that id."""
    svc = services(request)
    run = await svc.storage.get_run(thread_id_of(request), run_id_of(request))
    after = parse_last_event_id(request.headers.get("last-event-id"))
    on_disconnect = None
    if query.get("cancel_on_disconnect"):
        manager = manager_of(request)

        async def on_disconnect() -> None:
            current = await svc.storage.get_run(run["thread_id"], run["run_id"])
            await manager.cancel(current, action="interrupt")

    return sse_response(
        svc.events,
        run["run_id"],
        after=after,
        headers=run_headers(run, tail="/stream"),
        on_disconnect=on_disconnect,
    )


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    query=CancelQuery,
    status=202,
    more_statuses={200: Run},
)
async def cancel_run(request: Request, query: CancelQuery) -> Response:
    """Cancel a run: `interrupt` keeps its finished steps, `rollback` deletes it and them."""
    svc = services(request)
    run = await svc.storage.get_run(thread_id_of(request), run_id_of(request))
    manager = manager_of(request)
    await manager.cancel(run, action=query.get("action", "interrupt"))
    if query.get("wait"):
        final, _ = await manager.wait(run)
        return json_response(final, headers=run_headers(run, tail="/join"))
    return json_response(None, status=202)


@closed
class ThreadStreamQuery(TypedDict, total=False):
    stream_mode: Any
    """Accepted for compatibility; the stream carries the modes the run was created with."""


@router.get("/threads/{thread_id}/stream", query=ThreadStreamQuery, media_type=SSE)
async def join_thread_stream(request: Request, _: ThreadStreamQuery) -> Response:
    """Follow the run active on the thread (running, else the next pending one); the stream
    ends at once when nothing is active. `Last-Event-ID` replays that run's events."""
    svc = services(request)
    thread_id = thread_id_of(request)
    await svc.storage.get_thread(thread_id, values=False)
    active = await svc.storage.search_runs(thread_id=thread_id, statuses=("running", "pending"))
    after = parse_last_event_id(request.headers.get("last-event-id"))
    if not active:
        return sse_response(svc.events, "", after=after, headers={})
    running = [r for r in active if r["status"] == "running"]
    run = running[0] if running else min(active, key=lambda r: r["created_at"])
    return sse_response(
        svc.events, run["run_id"], after=after, headers=run_headers(run, tail="/stream")
    )
