"""Run routes on a thread: create (background, streamed, waited), list, get, delete, join,
join the stream, cancel. The run manager does the work; these shape requests and responses."""

from __future__ import annotations

from dataclasses import replace
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.encoding import dumps
from agent_runtime.errors import ConflictError
from agent_runtime.lifecycle import require_open
from agent_runtime.runs.create import AssistantCache, new_run
from agent_runtime.runs.manager import FINAL_STATUSES, RunManager
from agent_runtime.runs.options import RunOptions
from agent_runtime.schema import Run, RunStatus
from agent_runtime.server.elsewhere import run_stream_response
from agent_runtime.server.routing import SSE, Router, json_response
from agent_runtime.server.run_requests import RunCreate
from agent_runtime.server.services import services
from agent_runtime.server.sse import event_names, gone_response, requested_modes
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import Offset, closed, parse_uuid
from agent_runtime.server.waiting import waited_response
from agent_runtime.storage.records import AssistantChangedError, RunOutcome
from agent_runtime.streaming import parse_last_event_id
from agent_runtime.streaming.slots import StreamSlot
from agent_runtime.user import AuthUser, run_configurable, without_auth_keys

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
    stream_mode: str | list[str]
    """Only these of the run's stream modes (repeat the parameter for several); `metadata`,
    `error` and `end` always come. None named: every mode the run streams."""


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


async def start_run(
    request: Request, body: RunCreate, *, thread_id: str, stateless: bool, attended: bool = False
) -> Run:
    """Create the run; `attended` when this request goes on to wait for it (`Claim.durable`)."""
    run, _ = await _start(
        request, body, thread_id=thread_id, stateless=stateless, attended=attended
    )
    return run


async def _start(
    request: Request, body: RunCreate, *, thread_id: str, stateless: bool, attended: bool
) -> tuple[Run, RunOptions]:
    svc = services(request)
    stamps = getattr(request.state, "auth_thread_metadata", None) or {}
    thread_metadata = stamps.get(id(body))
    body = with_run_user(body, getattr(request.state, "auth_user", None))

    async def make(assistants: AssistantCache | None) -> tuple[Run, RunOptions]:
        new, assistant = await new_run(
            body,
            thread_id=thread_id,
            stateless=stateless,
            storage=svc.storage,
            registry=svc.registry,
            config=svc.config,
            clock=svc.clock,
            assistants=assistants,
        )
        if thread_metadata:
            new = replace(new, thread_metadata=thread_metadata)
        return await svc.runs.create(new, assistant=assistant, attended=attended), new.options

    try:
        return await make(svc.assistants)
    except AssistantChangedError as changed:
        # Changed since this process cached it (here or in another process): read it again.
        svc.assistants.forget(changed.assistant_id)
        return await make(None)


def with_run_user(body: RunCreate, user: AuthUser | None) -> RunCreate:
    """The body with `config.configurable` holding only the user the server authenticated
    (`langgraph_auth_user`, `_user_id`, `_permissions`), whatever the client sent there."""
    config = dict(body.get("config") or {})
    configurable = config.get("configurable")
    if not isinstance(configurable, dict):
        configurable = {}
    configurable = without_auth_keys(configurable)
    if user is not None:
        configurable.update(run_configurable(user))
    if configurable or "configurable" in config:
        config["configurable"] = configurable
    if not config and "config" not in body:
        return body
    return {**body, "config": config}


async def run_result(request: Request, run: Run, *, headers: dict[str, str]) -> Response:
    """What `wait` and `join` answer: the thread's final values (with `__interrupt__` when
    interrupted), or `{"__error__": ...}` when the run failed; whitespace heartbeats first when
    the run takes a while."""
    return await waited_response(_result(request, run), headers=headers)


async def _result(request: Request, run: Run) -> bytes:
    final, outcome = await manager_of(request).wait(run)
    status = final["status"] if final else (outcome.status if outcome else None)
    error = final["error"] if final else (outcome.error if outcome else None)
    if status == "error":
        kind, _, message = (error or "Error: the run failed").partition(": ")
        return dumps({"__error__": {"error": kind, "message": message}})
    if outcome is None or (outcome.values is None and outcome.values_json is None):
        thread = await services(request).storage.get_thread(run["thread_id"])
        outcome = RunOutcome(
            status="success", values=thread["values"], interrupts=thread["interrupts"]
        )
    return _with_interrupts(outcome)


def _with_interrupts(outcome: RunOutcome) -> bytes:
    # A run that ended without interrupts answers with the bytes it stored, not a new encoding.
    pending = [i for group in outcome.interrupts.values() for i in group]
    if pending:
        values = outcome.decoded_values()
        if values is None or isinstance(values, dict):
            return dumps({**(values or {}), "__interrupt__": pending})
    return outcome.encoded_values() or b"{}"


async def start_streamed_run(
    request: Request, body: RunCreate, *, thread_id: str, stateless: bool
) -> Response:
    """Start a run and answer with its event stream; the stream's slot is taken first, so a
    server at its cap refuses (429) before any run is queued."""
    slot = services(request).streams.acquire()
    try:
        run, options = await _start(
            request, body, thread_id=thread_id, stateless=stateless, attended=True
        )
    except BaseException:
        slot.release()
        raise
    return stream_run_response(request, run, options, slot=slot)


def stream_run_response(
    request: Request, run: Run, options: RunOptions, *, slot: StreamSlot
) -> Response:
    manager = manager_of(request)
    on_disconnect = None
    if options.on_disconnect == "cancel":

        async def on_disconnect() -> None:
            current = await services(request).storage.get_run(run["thread_id"], run["run_id"])
            await manager.cancel(current, action="interrupt")

    svc = services(request)
    return run_stream_response(
        svc.events,
        svc.storage,
        manager,
        run,
        after=-1,
        headers=run_headers(run, tail="/stream"),
        slot=slot,
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
    return await start_streamed_run(request, body, thread_id=thread_id_of(request), stateless=False)


@router.post("/threads/{thread_id}/runs/wait", body=RunCreate)
async def wait_run(request: Request, body: RunCreate) -> Response:
    """Start a run, wait for it to end, and answer with the thread's final values."""
    thread_id = thread_id_of(request)
    run = await start_run(request, body, thread_id=thread_id, stateless=False, attended=True)
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
    """Follow a run's events; with `Last-Event-ID`, first replay every event after that id.

    `stream_mode` keeps only those modes' events (a subgraph's `updates|sub:1` counts as
    `updates`; `messages-tuple` arrives as `messages`) besides `metadata`, `error` and `end`.
    `Location` repeats the modes, so a client reconnecting there keeps its selection."""
    svc = services(request)
    modes = requested_modes(query.get("stream_mode"))
    run = await svc.storage.get_run(thread_id_of(request), run_id_of(request))
    after = parse_last_event_id(request.headers.get("last-event-id"))
    on_disconnect = None
    if query.get("cancel_on_disconnect"):
        manager = manager_of(request)

        async def on_disconnect() -> None:
            current = await svc.storage.get_run(run["thread_id"], run["run_id"])
            await manager.cancel(current, action="interrupt")

    headers = run_headers(run, tail="/stream" + _modes_query(modes))
    if run["status"] in FINAL_STATUSES and not await svc.events.exists(run["run_id"]):
        message = events_gone(run, svc.events.retention_seconds)
        return gone_response(run["run_id"], message, headers=headers, slot=svc.streams.acquire())
    return run_stream_response(
        svc.events,
        svc.storage,
        manager_of(request),
        run,
        after=after,
        headers=headers,
        slot=svc.streams.acquire(),
        on_disconnect=on_disconnect,
        only=event_names(modes),
    )


def _modes_query(modes: list[str]) -> str:
    return "?" + urlencode([("stream_mode", mode) for mode in modes]) if modes else ""


def events_gone(run: Run, retention_seconds: float) -> str:
    """Why a finished run's events cannot be followed any more, and where its result is."""
    base = f"/threads/{run['thread_id']}/runs/{run['run_id']}"
    minutes, seconds = divmod(retention_seconds, 60)
    kept = f"{minutes:g} minutes" if minutes and not seconds else f"{retention_seconds:g} seconds"
    return (
        f'The events of run "{run["run_id"]}" are no longer kept (they are kept for '
        f"{kept} after a run ends); read its result with "
        f"GET {base}/join, or the thread's state with GET /threads/{run['thread_id']}/state"
    )


@router.post(
    "/threads/{thread_id}/runs/{run_id}/cancel",
    query=CancelQuery,
    status=202,
    more_statuses={200: Run},
)
async def cancel_run(request: Request, query: CancelQuery) -> Response:
    """Cancel a run: `interrupt` keeps its finished steps, `rollback` deletes it and them.

    Raises:
        ConflictError: the run has already ended (409 `run_not_active`).
    """
    svc = services(request)
    run = await svc.storage.get_run(thread_id_of(request), run_id_of(request))
    if run["status"] in FINAL_STATUSES:
        raise ConflictError(
            f'Run "{run["run_id"]}" already ended ({run["status"]}); there is nothing to cancel',
            code="run_not_active",
        )
    manager = manager_of(request)
    await manager.cancel(run, action=query.get("action", "interrupt"))
    if query.get("wait"):
        final, _ = await manager.wait(run)
        return json_response(final, headers=run_headers(run, tail="/join"))
    return json_response(None, status=202)
