"""Server-sent event responses for runs: replay and follow a run's event log (all of it, or the
stream modes a client asked for), heartbeat while idle, close a stream whose reader stalls, and
tell the run manager when a client that asked for it goes away."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from typing import Any

from starlette.responses import StreamingResponse
from starlette.types import Message, Receive, Scope, Send

from agent_runtime.encoding import dumps
from agent_runtime.errors import AgentRuntimeError, InvalidRequestError
from agent_runtime.runs.shaping import API_STREAM_MODES, EVENT_NAMES
from agent_runtime.streaming import HEARTBEAT, EventLog, RunEvent, encode_event
from agent_runtime.streaming.slots import StreamSlot

logger = logging.getLogger("agent_runtime.streams")

HEARTBEAT_SECONDS = 5.0
ALWAYS_SENT = frozenset({"metadata", "error", "end"})
"""Events every stream carries whatever modes it was asked for: the run's id first, its failure,
and the end of the stream."""
_DONE = object()

Frame = tuple[str, bytes, str | None]
"""One event to send: its name, its encoded JSON payload and its SSE id (None: no `id:` line)."""


def requested_modes(
    value: str | list[str] | None,
    *,
    known: Collection[str] = API_STREAM_MODES,
    field: str = "stream_mode",
) -> list[str]:
    """The modes a query names (repeated or comma-free single values; empty ones ignored).

    Raises:
        InvalidRequestError: a mode that is not one of `known` (422 `invalid_stream_mode`).
    """
    given = [value] if isinstance(value, str) else list(value or [])
    modes = [mode for mode in dict.fromkeys(given) if mode]
    for mode in modes:
        if mode not in known:
            raise InvalidRequestError(
                f'{field}: unknown stream mode "{mode}"; the modes are {", ".join(known)}',
                code="invalid_stream_mode",
            )
    return modes


def event_names(modes: Collection[str]) -> frozenset[str] | None:
    """The event names (before any `|namespace` suffix) that the given run stream modes
    send, plus `ALWAYS_SENT`; None when no mode is named, meaning every event."""
    if not modes:
        return None
    return ALWAYS_SENT.union(*(EVENT_NAMES[mode] for mode in modes))


def sse_response(
    events: EventLog,
    run_id: str,
    *,
    after: int | None,
    headers: dict[str, str],
    slot: StreamSlot,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    only: frozenset[str] | None = None,
) -> StreamingResponse:
    """Stream the run's events after `after` (None: only new ones; -1: all) until its `end`.

    Args:
        only: send only events with these names (from `event_names`), subgraph events
            (`updates|sub:1`) by the name before the `|`; None sends every event.

    The subscription starts here, before the response is sent, so no event published in
    between is missed. `slot` is released when the stream ends, however it ends."""
    try:
        subscription = events.subscribe(run_id, after=after)
    except BaseException:
        slot.release()
        raise
    return stream_response(
        _RunFrames(subscription, only),
        name=f"sse:{run_id}",
        headers=headers,
        slot=slot,
        on_disconnect=on_disconnect,
        heartbeat_seconds=heartbeat_seconds,
    )


def stream_response(
    frames: AsyncIterator[Frame],
    *,
    name: str,
    headers: dict[str, str],
    slot: StreamSlot,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    """An SSE response over any source of frames, with heartbeats while it is idle. An
    `AgentRuntimeError` the source raises becomes an `error` event and ends the stream."""
    body = _encoded(frames, name, slot, on_disconnect, heartbeat_seconds)
    return EventStreamResponse(body, name=name, slot=slot, headers=headers)


def gone_response(
    run_id: str, message: str, *, headers: dict[str, str], slot: StreamSlot
) -> StreamingResponse:
    """A stream that only says why there is nothing to follow: an `error` event, then `end`."""
    error = {"error": "EventsExpired", "message": message}

    async def frames() -> AsyncIterator[bytes]:
        yield encode_event("error", dumps(error), None)
        yield encode_event("end", b"null", None)

    return EventStreamResponse(frames(), name=f"sse:{run_id}", slot=slot, headers=headers)


class EventStreamResponse(StreamingResponse):
    """An SSE response that gives up on a reader taking no data for `slot.send_timeout`
    seconds, and that always closes its body and releases its slot when it ends."""

    def __init__(
        self,
        body: AsyncIterator[bytes],
        *,
        name: str,
        slot: StreamSlot,
        headers: dict[str, str],
    ) -> None:
        super().__init__(
            body,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **headers},
        )
        self._body = body
        self._name = name
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

        # Starlette streams through an anyio task group when the server's ASGI spec is below
        # 2.4 (uvicorn's is 2.3), about 50 us per response before its first byte; this is
        # the same with two plain tasks: the body streams in one, the other ends it when the
        # client goes away.
        streaming = asyncio.create_task(self.stream_response(send_or_give_up), name=self._name)
        listening = asyncio.create_task(_end_when_gone(receive, streaming))
        try:
            await streaming
        except _StalledReaderError:
            logger.warning(
                "Closed stream %s: its reader took no data for %g s "
                "(agent_runtime.limits.stream_send_timeout_seconds)",
                self._name,
                timeout,
            )
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if not listening.done() or (current is not None and current.cancelling()):
                raise  # this response itself is being cancelled, not just its stream
        finally:
            listening.cancel()
            if listening.done() and not listening.cancelled():
                listening.exception()  # a failed receive ends nothing more; mark it seen
            if not streaming.done():
                streaming.cancel()
                with contextlib.suppress(asyncio.CancelledError, _StalledReaderError):
                    await streaming
            self._slot.release()
            # Cancelled mid-send, the body sits suspended at a `yield`: close it now rather
            # than whenever it is garbage collected, so its subscription is freed.
            aclose = getattr(self._body, "aclose", None)
            if aclose is not None:
                await aclose()


class _StalledReaderError(Exception):
    pass


async def _end_when_gone(receive: Receive, streaming: asyncio.Task[None]) -> None:
    """Cancel `streaming` when the client disconnects (the only message after the body)."""
    while (await receive())["type"] != "http.disconnect":
        pass
    streaming.cancel()


class _RunFrames:
    """A subscription's events as frames, those `only` names; as safe to cancel while it
    waits as the subscription is (`cancel_safe`: this process's log's is)."""

    def __init__(self, subscription: AsyncIterator[RunEvent], only: frozenset[str] | None) -> None:
        self._subscription = subscription
        self._only = only
        self.cancel_safe: bool = getattr(subscription, "cancel_safe", False)

    def __aiter__(self) -> _RunFrames:
        return self

    async def __anext__(self) -> Frame:
        only = self._only
        while True:
            event = await anext(self._subscription)
            if only is None or event.event.partition("|")[0] in only:
                return event.event, event.data, str(event.id)


class Pumped:
    """Frames from a source whose wait must not be cancelled (an async generator, say),
    read ahead by a task of their own into a queue, whose wait can be (`cancel_safe`). A
    source's `AgentRuntimeError` comes out in its place, then the end."""

    cancel_safe = True

    def __init__(self, frames: AsyncIterator[Frame], *, name: str) -> None:
        self._queue: asyncio.Queue[Frame | AgentRuntimeError | object] = asyncio.Queue(maxsize=64)
        self._task = asyncio.create_task(self._pump(frames), name=name)

    async def _pump(self, frames: AsyncIterator[Frame]) -> None:
        try:
            async for frame in frames:
                await self._queue.put(frame)
        except AgentRuntimeError as exc:
            await self._queue.put(exc)
        finally:
            await self._queue.put(_DONE)

    def __aiter__(self) -> Pumped:
        return self

    async def __anext__(self) -> Frame:
        item = await self._queue.get()
        if item is _DONE:
            self._queue.put_nowait(_DONE)  # and at every later call
            raise StopAsyncIteration
        if isinstance(item, AgentRuntimeError):
            raise item
        return item  # type: ignore[return-value]

    async def aclose(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task


async def _encoded(
    frames: AsyncIterator[Frame],
    name: str,
    slot: StreamSlot,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    # A heartbeat cancels the wait for the next frame: a source that cannot take that is
    # read through a task of its own (`Pumped`), one hop more for every event.
    source = frames if getattr(frames, "cancel_safe", False) else Pumped(frames, name=name)
    finished = False
    try:
        while True:
            try:
                # Not `wait_for`: on Python 3.11 it can swallow the cancel of a client that
                # went away, if it lands as an item arrives.
                async with asyncio.timeout(heartbeat_seconds):
                    frame = await anext(source)
            except TimeoutError:
                yield HEARTBEAT
                continue
            except StopAsyncIteration:
                finished = True
                return
            except AgentRuntimeError as exc:
                # Headers are sent: a failure can only be reported as an event, the last.
                error = {"error": type(exc).__name__, "message": exc.detail}
                yield encode_event("error", dumps(error), None)
                finished = True
                return
            yield encode_event(*frame)
            slot.sent(frame[0])
    finally:
        aclose = getattr(source, "aclose", None)
        if aclose is not None:
            await aclose()
        if not finished and on_disconnect is not None:
            # The client went away mid-run; the response task is being torn down, so the
            # cancellation runs on its own task.
            slot.follow_up(on_disconnect())
