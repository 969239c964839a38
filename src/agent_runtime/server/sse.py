"""Server-sent event responses for runs: replay and follow a run's event log, heartbeat while
idle, and tell the run manager when a client that asked for it goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from starlette.responses import StreamingResponse

from agent_runtime.encoding import dumps
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.streaming import HEARTBEAT, EventLog, RunEvent, encode_event

HEARTBEAT_SECONDS = 5.0
_DONE = object()


def sse_response(
    events: EventLog,
    run_id: str,
    *,
    after: int | None,
    headers: dict[str, str],
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    """Stream the run's events after `after` (None: only new ones; -1: all) until its `end`.

    The subscription starts here, before the response is sent, so no event published in
    between is missed."""
    subscription = events.subscribe(run_id, after=after)
    body = _frames(subscription, run_id, on_disconnect, heartbeat_seconds)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **headers},
    )


async def _frames(
    subscription: AsyncIterator[RunEvent],
    run_id: str,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[RunEvent | AgentRuntimeError | object] = asyncio.Queue(maxsize=64)

    async def pump() -> None:
        try:
            async for event in subscription:
                await queue.put(event)
        except AgentRuntimeError as exc:
            await queue.put(exc)
        finally:
            await queue.put(_DONE)

    pumping = asyncio.create_task(pump(), name=f"sse:{run_id}")
    finished = False
    try:
        while True:
            try:
                item = await asyncio.wait_for(queue.get(), heartbeat_seconds)
            except TimeoutError:
                yield HEARTBEAT
                continue
            if item is _DONE:
                finished = True
                return
            if isinstance(item, AgentRuntimeError):
                # Headers are sent: a failure can only be reported as an event.
                error = {"error": type(item).__name__, "message": item.detail}
                yield encode_event("error", dumps(error), None)
                continue
            assert isinstance(item, RunEvent)
            yield encode_event(item.event, item.data, str(item.id))
    finally:
        pumping.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await pumping
        if not finished and on_disconnect is not None:
            # The client went away mid-run; the response task is being torn down, so the
            # cancellation runs on its own task.
            task: asyncio.Task[None] = asyncio.create_task(on_disconnect())
            _background.add(task)
            task.add_done_callback(_background.discard)


_background: set[asyncio.Task[None]] = set()
