"""A thread's stream (`GET /threads/{id}/stream`): every run on the thread, one after another,
for as long as the client stays, plus run lifecycle and state-update events. It reads the runs'
event logs and the threads table; it never writes, and it does not change what a run publishes."""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterable, AsyncIterator, Collection
from typing import Any, Literal

from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.encoding import dumps
from agent_runtime.errors import InvalidRequestError, NotFoundError
from agent_runtime.runs.manager import FINAL_STATUSES
from agent_runtime.schema import Run, Thread
from agent_runtime.server.elsewhere import LocalEvents
from agent_runtime.server.routing import SSE, Router
from agent_runtime.server.services import Services, services
from agent_runtime.server.sse import Frame, requested_modes, stream_response
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import closed
from agent_runtime.streaming import RunEvent

router = Router("runs")

ThreadStreamMode = Literal["run_modes", "lifecycle", "state_update"]
THREAD_STREAM_MODES: tuple[str, ...] = ThreadStreamMode.__args__  # type: ignore[attr-defined]
POLL_SECONDS = 0.2
"""How often an idle thread stream looks for a new run or a state change. Runs and state live
in storage, which any process may write, so looking is what works across processes."""
RECENT_RUNS = 20
"""How many of the newest runs each look considers: more runs than this starting within one
look would be missed."""

_RUN_EVENT_ID = re.compile(
    r"(?P<run>[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})"
    r":(?P<n>[0-9]{1,18})"
)
_SHOWN_CHARS = 60


@closed
class ThreadStreamQuery(TypedDict, total=False):
    stream_mode: str | list[str]
    """`run_modes` (the default), `lifecycle`, `state_update`; repeat for several."""


@router.get("/threads/{thread_id}/stream", query=ThreadStreamQuery, media_type=SSE)
async def join_thread_stream(request: Request, query: ThreadStreamQuery) -> Response:
    """Follow every run on the thread, one after another, until the client disconnects.

    `stream_mode` picks what the stream carries (repeat it for several):

    - `run_modes` (the default): each run's own events as its run stream carries them
      (`metadata` with `run_id` and `attempt` first, then the modes it streams, `error` if it
      fails), except its `end`: in its place comes the run's end event,
      `metadata` `{"run_id", "thread_id", "status"}` with the run's final status (null when
      the run was rolled back and no longer exists). The thread's stream itself never ends.
    - `lifecycle`: only `metadata` events `{"run_id", "thread_id", "status"}`: `running` when
      a run starts, then its final status when it ends.
    - `state_update`: a `values` event with the thread's values (as `GET /threads/{id}` shows
      them) each time they change: after a run ends, and after a state update, fork or
      message edit made outside a run.

    The run active when the client connects is followed from that moment (its earlier events
    are not replayed); runs that start later are followed from their first event, also when
    one starts and ends between two looks. `: heartbeat` comments keep an idle stream open.

    Event ids are `<run_id>:<n>`: the `n`-th event of that run's own stream (lifecycle events
    take the id of the run event they stand for, `0` for a start). With `Last-Event-ID` set
    to one of them, the stream first replays what followed it: the rest of that run, then
    every later run on the thread that the event log still holds, then continues live;
    `Last-Event-ID: -1` replays every run the log still holds. State updates made outside a
    run have no id, so they leave the client's position unchanged, and are not replayed.
    `Location` names this stream with its modes, where the SDK reconnects after a drop. If
    the thread is deleted meanwhile, an `error` event ends the stream.

    Raises:
        NotFoundError: the thread does not exist.
        InvalidRequestError: an unknown `stream_mode` or a malformed `Last-Event-ID`.
    """
    svc = services(request)
    thread_id = thread_id_of(request)
    modes = requested_modes(query.get("stream_mode"), known=THREAD_STREAM_MODES) or ["run_modes"]
    resume = _parse_resume(request.headers.get("last-event-id"))
    thread = await svc.storage.get_thread(thread_id, values="state_update" in modes)
    recent = await svc.storage.list_runs(thread_id, limit=RECENT_RUNS, offset=0, status=None)
    follower = _ThreadFollower(svc, thread, frozenset(modes))
    location = f"/threads/{thread_id}/stream?" + "&".join(f"stream_mode={m}" for m in modes)
    return stream_response(
        follower.frames(recent, resume),
        name=f"thread-sse:{thread_id}",
        headers={"Location": location},
        slot=svc.streams.acquire(),
    )


def _parse_resume(header: str | None) -> tuple[str, int] | None:
    if header is None or header == "":
        return None
    if header == "-1":
        return ("", -1)
    match = _RUN_EVENT_ID.fullmatch(header)
    if match is None:
        shown = header if len(header) <= _SHOWN_CHARS else header[:_SHOWN_CHARS] + "..."
        raise InvalidRequestError(
            "Last-Event-ID on a thread's stream must be the id of the last event received "
            f'("<run_id>:<n>") or -1 to replay every run still held, got "{shown}"',
            code="invalid_last_event_id",
        )
    return match["run"], int(match["n"])


class _ThreadFollower:
    """One client's position on the thread: the runs it has been given, the values it saw."""

    def __init__(self, svc: Services, thread: Thread, modes: Collection[str]) -> None:
        self._svc = svc
        self._thread_id = thread["thread_id"]
        self._run_modes = "run_modes" in modes
        self._lifecycle = "lifecycle" in modes
        self._state = "state_update" in modes
        self._values = thread["values"]
        self._updated_at = thread["updated_at"]
        self._seen: set[str] = set()

    async def frames(
        self, recent: list[Run], resume: tuple[str, int] | None
    ) -> AsyncIterator[Frame]:
        """Replay what `resume` asks for, then follow new runs and state changes forever."""
        oldest_first = recent[::-1]
        if resume is not None:
            async for frame in self._replay(oldest_first, *resume):
                yield frame
        for run in oldest_first:
            if run["status"] in FINAL_STATUSES:
                self._seen.add(run["run_id"])  # ended before the client came
            elif run["status"] == "running" and run["run_id"] not in self._seen:
                async for frame in self._run(run, after=None):
                    yield frame
        while True:
            followed = False
            runs = await self._svc.storage.list_runs(
                self._thread_id, limit=RECENT_RUNS, offset=0, status=None
            )
            for run in runs[::-1]:
                if run["run_id"] in self._seen or run["status"] == "pending":
                    continue
                # Running, or started and ended since the last look: from its first event.
                async for frame in self._run(run, after=-1):
                    yield frame
                followed = True
            if followed:
                continue
            if self._state:
                change = await self._state_change(event_id=None)
                if change is not None:
                    yield change
            await asyncio.sleep(POLL_SECONDS)

    async def _replay(
        self, oldest_first: list[Run], run_id: str, after: int
    ) -> AsyncIterator[Frame]:
        ids = [run["run_id"] for run in oldest_first]
        if run_id:
            if run_id not in ids:
                return  # deleted, or too old to place: carry on live
            start = ids.index(run_id)
        else:
            start = 0
        for index, run in enumerate(oldest_first[start:]):
            if not await self._svc.events.exists(run["run_id"]):
                continue
            cursor = after if index == 0 and run_id else -1
            if run["status"] == "pending":
                break
            async for frame in self._run(run, after=cursor):
                yield frame

    async def _run(self, run: Run, *, after: int | None) -> AsyncIterator[Frame]:
        """One run's frames; with `after` None, only its events from now on."""
        run_id = run["run_id"]
        self._seen.add(run_id)
        events = self._svc.events
        if after is None and not await events.exists(run_id):
            after = -1  # claimed but not yet publishing: nothing is lost by starting at 0
        if self._lifecycle and (after is None or after <= 0):
            yield "metadata", self._lifecycle_data(run_id, "running"), f"{run_id}:0"
        last = 0 if after is None or after < 0 else after
        # A client resuming after the run's last event has had its end event already.
        resumed, moved = last > 0, False
        while True:
            ended = False
            subscription = events.subscribe(run_id, after=after)
            followed: AsyncIterable[RunEvent] = subscription
            if not events.reaches_other_processes:
                # This process's own log: a run another process executes never publishes here.
                followed = LocalEvents(subscription, events, self._svc.storage, self._svc.runs, run)
            async for event in followed:
                moved = True
                last = event.id
                after = event.id
                if event.event == "end":
                    ended = True
                    break
                if self._run_modes:
                    yield event.event, event.data, f"{run_id}:{event.id}"
            if ended:
                break
            # The log closed without `end` (expired, or not opened yet): ask the run itself.
            try:
                current = await self._svc.storage.get_run(self._thread_id, run_id)
            except NotFoundError:
                break
            if current["status"] in FINAL_STATUSES:
                break
            if after is None:
                after = -1
            await asyncio.sleep(POLL_SECONDS)
        if resumed and not moved:
            return
        event_id = f"{run_id}:{last}"
        if self._run_modes or self._lifecycle:
            yield "metadata", self._lifecycle_data(run_id, await self._status(run_id)), event_id
        if self._state:
            frame = await self._state_change(event_id=event_id)
            if frame is not None:
                yield frame

    async def _status(self, run_id: str) -> str | None:
        try:
            return (await self._svc.storage.get_run(self._thread_id, run_id))["status"]
        except NotFoundError:
            return None  # rolled back

    def _lifecycle_data(self, run_id: str, status: str | None) -> bytes:
        return dumps({"run_id": run_id, "thread_id": self._thread_id, "status": status})

    async def _state_change(self, *, event_id: str | None) -> Frame | None:
        storage = self._svc.storage
        # Every state write moves `updated_at`; the values themselves are read only then.
        updated_at = (await storage.get_thread(self._thread_id, values=False))["updated_at"]
        if updated_at == self._updated_at:
            return None
        self._updated_at = updated_at
        values: Any = (await storage.get_thread(self._thread_id))["values"]
        if values == self._values:
            return None
        self._values = values
        return "values", dumps(values), event_id
