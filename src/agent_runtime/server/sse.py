"""Server-sent event responses for runs: replay and follow a run's event log, heartbeat while
idle, close a stream whose reader stalls, and tell the run manager when a client that asked for
it goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from agent_runtime.encoding import dumps
from agent_runtime.errors import AgentRuntimeError
from agent_runtime.server.limits import StreamSlot
from agent_runtime.streaming import HEARTBEAT, EventLog, RunEvent, encode_event

logger = logging.getLogger("agent_runtime.streams")

HEARTBEAT_SECONDS = 5.0
_DONE = object()


def sse_response(
    events: EventLog,
    run_id: str,
    *,
    after: int | None,
    headers: dict[str, str],
    slot: StreamSlot,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    """Stream the run's events after `after` (None: only new ones; -1: all) until its `end`.

    The subscription starts here, before the response is sent, so no event published in
    between is missed. `slot` is released when the stream ends, however it ends."""
    try:
        subscription = events.subscribe(run_id, after=after)
    except BaseException:
        slot.release()
        raise
    body = _frames(subscription, run_id, on_disconnect, heartbeat_seconds)
    return EventStreamResponse(body, run_id=run_id, slot=slot, headers=headers)


def gone_response(
    run_id: str, message: str, *, headers: dict[str, str], slot: StreamSlot
) -> StreamingResponse:
    """A stream that only says why there is nothing to follow: an `error` event, then `end`."""
    error = {"error": "EventsExpired", "message": message}

    async def frames() -> AsyncIterator[bytes]:
        yield encode_event("error", dumps(error), None)
        yield encode_event("end", b"null", None)

    return EventStreamResponse(frames(), run_id=run_id, slot=slot, headers=headers)


class EventStreamResponse(StreamingResponse):
    """An SSE response that gives up on a reader taking no data for `slot.send_timeout`
    seconds, and that always closes its body and releases its slot when it ends."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        run_id: str,
        slot: StreamSlot,
        headers: dict[str, str],
    ) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **headers},
        )
        self._body = body
        self._run_id = run_id
        self._slot = slot

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        timeout = self._slot.send_timeout

        async def send_or_give_up(message: Message) -> None:
            # The server's send waits while the client's socket is full: a reader that stopped
            # reading would otherwise hold this stream, its queue and its task forever.
            try:
                async with asyncio.timeout(timeout):
                    await send(message)
            except TimeoutError:
                raise _StalledReaderError from None

        try:
            await super().__call__(scope, receive, send_or_give_up)
        except _StalledReaderError:
            logger.warning(
                'Closed a stream of run "%s": its reader took no data for %g s '
                "(agent_runtime.limits.stream_send_timeout_seconds)",
                self._run_id,
                timeout,
            )
        finally:
            self._slot.release()
            # Cancelled mid-send, the body sits suspended at a `yield`: close it now rather
            # than whenever it is garbage collected, so its subscription is freed.
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()


class _StalledReaderError(Exception):
    pass


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
