"""The cap on server-sent event streams one process serves at once, and how long a stream may wait
on a reader that takes no data. Only counting and refusing here; no IO."""

from __future__ import annotations

from agent_runtime.errors import TooManyRequestsError

STREAMS_RETRY_AFTER_SECONDS = 5


class StreamSlot:
    """One open stream's place under the cap; releasing it twice is harmless."""

    __slots__ = ("_slots", "send_timeout")

    def __init__(self, slots: StreamSlots) -> None:
        self._slots: StreamSlots | None = slots
        self.send_timeout = slots.send_timeout
        """Seconds a send may wait on the reader before the stream is closed."""

    def release(self) -> None:
        if self._slots is not None:
            self._slots.open -= 1
            self._slots = None


class StreamSlots:
    """Counts the server-sent event streams this process serves, up to `limit`, and says how
    long each may wait on a reader that takes no data (`send_timeout`, seconds)."""

    def __init__(self, limit: int, *, send_timeout: float = 30.0) -> None:
        self.limit = limit
        self.send_timeout = send_timeout
        self.open = 0

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
        return StreamSlot(self)
