"""The cap on server-sent event streams one process serves at once, how long a stream may wait
on a reader that takes no data, and the follow-up work of streams that ended. Counting,
refusing and holding tasks here; no IO."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any

from agent_runtime.errors import TooManyRequestsError

STREAMS_RETRY_AFTER_SECONDS = 5


class StreamSlot:
    """One open stream's place under the cap; releasing it twice is harmless."""

    __slots__ = ("_owner", "_slots", "send_timeout")

    def __init__(self, slots: StreamSlots) -> None:
        self._slots: StreamSlots | None = slots
        self._owner = slots
        self.send_timeout = slots.send_timeout
        """Seconds a send may wait on the reader before the stream is closed."""

    def release(self) -> None:
        if self._slots is not None:
            self._slots.open -= 1
            self._slots = None
            self._owner.counted()

    def sent(self, event: str) -> None:
        """One event was written to this stream's reader (for metrics)."""
        if self._owner.on_event is not None:
            self._owner.on_event(event)

    def follow_up(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` once the stream has ended (its own task is being torn down), held by the
        server until it finishes; works after `release` too."""
        self._owner.follow_up(work)


class StreamSlots:
    """Counts the server-sent event streams this process serves, up to `limit`, and says how
    long each may wait on a reader that takes no data (`send_timeout`, seconds)."""

    def __init__(
        self,
        limit: int,
        *,
        send_timeout: float = 30.0,
        on_count: Callable[[int], None] | None = None,
        on_event: Callable[[str], None] | None = None,
    ) -> None:
        """Args:
        on_count: told the number of open streams whenever it changes (metrics).
        on_event: told the name of every event written to a reader (metrics).
        """
        self.limit = limit
        self.send_timeout = send_timeout
        self.open = 0
        self.on_count = on_count
        self.on_event = on_event
        self._follow_ups: set[asyncio.Task[None]] = set()

    def acquire(self) -> StreamSlot:
        """Take a place for one more stream; release it when the stream ends.

        Raises:
            TooManyRequestsError: `limit` streams are open already.
        """
        if self.open >= self.limit:
            raise TooManyRequestsError(
                f"This server is serving {self.open} streams, the most it serves at once "
                "(agent_runtime.limits.max_open_streams in langgraph.json); retry in a few "
                "seconds, or wait for the run's result with /runs/wait or /join instead",
                code="too_many_streams",
                retry_after=STREAMS_RETRY_AFTER_SECONDS,
            )
        self.open += 1
        self.counted()
        return StreamSlot(self)

    def counted(self) -> None:
        if self.on_count is not None:
            self.on_count(self.open)

    def follow_up(self, work: Coroutine[Any, Any, None]) -> None:
        """Run `work` on a task of its own, holding it until it finishes (the event loop keeps
        only a weak reference to a task)."""
        task = asyncio.create_task(work)
        self._follow_ups.add(task)
        task.add_done_callback(self._follow_ups.discard)

    async def drain(self) -> None:
        """Wait for the follow-ups still running; their failures are not raised here."""
        if self._follow_ups:
            await asyncio.gather(*self._follow_ups, return_exceptions=True)
