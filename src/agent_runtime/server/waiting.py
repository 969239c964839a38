"""The answer of a request that waits for a run (`/runs/wait`, `/join`): plain JSON when the
result comes within a heartbeat, else a 200 whose body opens with whitespace heartbeats (one
every 5 s, so proxies do not cut a long wait) and ends with the JSON. No run logic here."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from starlette.responses import Response, StreamingResponse

from agent_runtime.encoding import dumps
from agent_runtime.errors import AgentRuntimeError

logger = logging.getLogger("agent_runtime.runs")

WAIT_HEARTBEAT_SECONDS = 5.0
"""Read on every request, so tests can shorten it."""
HEARTBEAT = b"\n"
"""Whitespace, which every JSON parser skips before the value."""


async def waited_response(
    result: Coroutine[Any, Any, bytes], *, headers: dict[str, str]
) -> Response:
    """Await `result` (the encoded JSON answer) while keeping the connection alive.

    Errors raised before the first heartbeat keep their status code; once the 200 is sent, an
    error becomes the body `{"__error__": {"error", "message"}}`, as a failed run's does.
    """
    interval = WAIT_HEARTBEAT_SECONDS
    task = asyncio.ensure_future(result)
    try:
        done, _ = await asyncio.wait({task}, timeout=interval)
    except BaseException:
        task.cancel()
        raise
    if done:
        return Response(task.result(), media_type="application/json", headers=headers)
    return StreamingResponse(
        _heartbeats(task, interval),
        media_type="application/json",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no", **headers},
    )


async def _heartbeats(task: asyncio.Future[bytes], interval: float) -> AsyncIterator[bytes]:
    try:
        # One interval has passed already, deciding to stream.
        yield HEARTBEAT
        while not (await asyncio.wait({task}, timeout=interval))[0]:
            yield HEARTBEAT
        try:
            body = task.result()
        except AgentRuntimeError as exc:
            body = dumps({"__error__": {"error": type(exc).__name__, "message": exc.detail}})
        except Exception:
            logger.exception("Waiting for a run failed after its answer had started")
            message = "The server failed while waiting for the run; see its log"
            body = dumps({"__error__": {"error": "InternalError", "message": message}})
        yield body
    finally:
        # The client went away (or the result is in): stop waiting on its behalf.
        task.cancel()
