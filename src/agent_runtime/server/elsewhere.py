"""Following a run that another process executes when this process's event log is its own (no
Redis): the run's events never reach this process, so a stream through it sends the events it
has, and once it is clear that another process holds the run, waits for the run's end (read from
the database) and sends what it can: the final values or the error, then `end`. With Redis every
process has every run's events and none of this applies."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from starlette.responses import StreamingResponse

from agent_runtime.encoding import dumps
from agent_runtime.errors import NotFoundError
from agent_runtime.runs.ends import FINAL_STATUSES
from agent_runtime.runs.manager import RunManager
from agent_runtime.schema import Run
from agent_runtime.server.sse import Frame, Pumped, sse_response, stream_response
from agent_runtime.storage.base import Storage
from agent_runtime.streaming import EventLog, RunEvent, StreamSlot

logger = logging.getLogger("agent_runtime.streams")

CHECK_SECONDS = 0.5
"""How long a stream waits on this process's log before asking whether the run is elsewhere."""


def run_stream_response(
    events: EventLog,
    storage: Storage,
    runs: RunManager,
    run: Run,
    *,
    after: int | None,
    headers: dict[str, str],
    slot: StreamSlot,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    only: frozenset[str] | None = None,
) -> StreamingResponse:
    """`sse.sse_response` for a run that may execute in another process: with a log shared
    by every process, that; else the events this process has, then the run's end as the
    database tells it (`final_frames`)."""
    if events.reaches_other_processes:
        return sse_response(
            events,
            run["run_id"],
            after=after,
            headers=headers,
            slot=slot,
            on_disconnect=on_disconnect,
            only=only,
        )
    try:
        # Here, before the response is sent, so no event published in between is missed.
        subscription = events.subscribe(run["run_id"], after=after)
    except BaseException:
        slot.release()
        raise
    return stream_response(
        _Followed(LocalEvents(subscription, events, storage, runs, run), storage, runs, run, only),
        name=f"sse:{run['run_id']}",
        headers=headers,
        slot=slot,
        on_disconnect=on_disconnect,
    )


class _Followed:
    """The frames of a run's stream without Redis: `LocalEvents` (those `only` names), then,
    if another process holds the run, `final_frames`. Safe to cancel while it waits for a
    frame (`cancel_safe`), so the response reads it with no task in between."""

    cancel_safe = True

    def __init__(
        self,
        local: LocalEvents,
        storage: Storage,
        runs: RunManager,
        run: Run,
        only: frozenset[str] | None,
    ) -> None:
        self._local = local
        self._storage = storage
        self._runs = runs
        self._run = run
        self._only = only
        self._sent = False
        self._final: Pumped | None = None

    def __aiter__(self) -> _Followed:
        return self

    async def __anext__(self) -> Frame:
        if self._final is None:
            only = self._only
            async for event in self._local:
                self._sent = self._sent or event.event == "metadata"
                if only is None or event.event.partition("|")[0] in only:
                    return event.event, event.data, str(event.id)
            if not self._local.elsewhere:
                raise StopAsyncIteration
            final = final_frames(self._storage, self._runs, self._run, sent=self._sent, only=only)
            self._final = Pumped(final, name=f"sse-final:{self._run['run_id']}")
        return await anext(self._final)

    async def aclose(self) -> None:
        if self._final is not None:
            await self._final.aclose()


class LocalEvents:
    """The run's events from this process's log (`subscription` first), up to its `end`, or
    until the log here closes. Stops early, without `end`, once the run is found `running` or
    ended in another process (or gone), and then says so (`elsewhere`). A log not opened yet
    (the run is queued) is looked for again until then.

    `subscription` must be this process's log's (`MemoryEventLog`), whose wait for an event
    can be cancelled without losing one: so can this iterator's (`cancel_safe`)."""

    cancel_safe = True

    def __init__(
        self,
        subscription: AsyncIterator[RunEvent],
        events: EventLog,
        storage: Storage,
        runs: RunManager,
        run: Run,
    ) -> None:
        self._iterator = aiter(subscription)
        self._events = events
        self._storage = storage
        self._runs = runs
        self._run = run
        self._last: int | None = None
        self._done = False
        self.elsewhere = False
        """Whether the iteration stopped because another process holds the run."""

    def __aiter__(self) -> LocalEvents:
        return self

    async def __anext__(self) -> RunEvent:
        run_id = self._run["run_id"]
        while not self._done:
            try:
                async with asyncio.timeout(CHECK_SECONDS):
                    event = await anext(self._iterator)
            except TimeoutError:
                if await self._is_elsewhere():
                    self.elsewhere = self._done = True
                continue
            except StopAsyncIteration:
                if await self._events.exists(run_id):
                    self._done = True  # closed here: the stream ends as the log did
                elif await self._is_elsewhere():
                    self.elsewhere = self._done = True
                else:
                    # Not opened here yet: the run is queued, or being claimed here.
                    await asyncio.sleep(CHECK_SECONDS)
                    after = -1 if self._last is None else self._last
                    self._iterator = aiter(self._events.subscribe(run_id, after=after))
                continue
            self._last = event.id
            self._done = event.event == "end"
            return event
        raise StopAsyncIteration

    async def _is_elsewhere(self) -> bool:
        run = self._run
        if self._runs.may_execute(run):
            return False  # its events come to this log
        try:
            current = await self._storage.get_run(run["thread_id"], run["run_id"])
        except NotFoundError:
            return True
        # Read, then checked again: a claim here that committed meanwhile is registered by now.
        return current["status"] != "pending" and not self._runs.may_execute(current)


async def final_frames(
    storage: Storage, runs: RunManager, run: Run, *, sent: bool, only: frozenset[str] | None
) -> AsyncIterator[Frame]:
    """After `LocalEvents` found the run in another process: wait for the run's end and send
    what the database tells of it (no event ids: the executing process's ids are unknown here).

    Args:
        sent: whether the client already has events of this run (else `metadata` comes first).
        only: the event names the client asked for (`sse.event_names`); None for all.
    """
    logger.info(
        'Run "%s" executes in another process and this one has no Redis: its stream here '
        "sends the final values and `end` only",
        run["run_id"],
    )
    if not sent:
        try:
            attempt = (await storage.get_run(run["thread_id"], run["run_id"]))["attempt"]
        except NotFoundError:
            attempt = run["attempt"]
        yield "metadata", dumps({"run_id": run["run_id"], "attempt": max(attempt, 1)}), None
    final, _ = await runs.wait(run)
    if final is not None and final["status"] in FINAL_STATUSES:
        error = final["error"]
        if final["status"] == "error":
            kind, _, message = (error or "Error: the run failed").partition(": ")
            yield "error", dumps({"error": kind, "message": message}), None
        elif error:
            yield "error", dumps({"error": "CancelledError", "message": error}), None
        elif only is None or "values" in only:
            try:
                thread = await storage.get_thread(run["thread_id"])
            except NotFoundError:
                pass  # a stateless run's thread, deleted as it ended
            else:
                yield "values", dumps(thread["values"]), None
    yield "end", b"null", None
