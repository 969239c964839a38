"""Server-sent event responses for runs: replay and follow a run's event log (all of it, or the
stream modes a client asked for), heartbeat while idle, and tell the run manager when a client
that asked for it goes away."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Collection, Coroutine
from typing import Any

from starlette.responses import StreamingResponse

from agent_runtime.encoding import dumps
from agent_runtime.errors import AgentRuntimeError, InvalidRequestError
from agent_runtime.runs.shaping import API_STREAM_MODES, EVENT_NAMES
from agent_runtime.streaming import HEARTBEAT, EventLog, RunEvent, encode_event

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
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
    only: frozenset[str] | None = None,
) -> StreamingResponse:
    """Stream the run's events after `after` (None: only new ones; -1: all) until its `end`.

    Args:
        only: send only events with these names (from `event_names`), subgraph events
            (`updates|sub:1`) by the name before the `|`; None sends every event.

    The subscription starts here, before the response is sent, so no event published in
    between is missed."""
    subscription = events.subscribe(run_id, after=after)
    return stream_response(
        _run_frames(subscription, only),
        name=f"sse:{run_id}",
        headers=headers,
        on_disconnect=on_disconnect,
        heartbeat_seconds=heartbeat_seconds,
    )


def stream_response(
    frames: AsyncIterator[Frame],
    *,
    name: str,
    headers: dict[str, str],
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None = None,
    heartbeat_seconds: float = HEARTBEAT_SECONDS,
) -> StreamingResponse:
    """An SSE response over any source of frames, with heartbeats while it is idle. An
    `AgentRuntimeError` the source raises becomes an `error` event and ends the stream."""
    body = _encoded(frames, name, on_disconnect, heartbeat_seconds)
    return StreamingResponse(
        body,
        media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **headers},
    )


async def _run_frames(
    subscription: AsyncIterator[RunEvent], only: frozenset[str] | None
) -> AsyncIterator[Frame]:
    async for event in subscription:
        if only is None or event.event.partition("|")[0] in only:
            yield event.event, event.data, str(event.id)


async def _encoded(
    frames: AsyncIterator[Frame],
    name: str,
    on_disconnect: Callable[[], Coroutine[Any, Any, None]] | None,
    heartbeat_seconds: float,
) -> AsyncIterator[bytes]:
    queue: asyncio.Queue[Frame | AgentRuntimeError | object] = asyncio.Queue(maxsize=64)

    async def pump() -> None:
        try:
            async for frame in frames:
                await queue.put(frame)
        except AgentRuntimeError as exc:
            await queue.put(exc)
        finally:
            await queue.put(_DONE)

    pumping = asyncio.create_task(pump(), name=name)
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
            frame: Frame = item  # type: ignore[assignment]
            yield encode_event(*frame)
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
