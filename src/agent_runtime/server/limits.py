"""Caps on what one client can take from the server: metadata sizes and open streams (the
pending-run cap is checked where runs are queued, in storage). Only counting and refusing here;
no IO."""

from __future__ import annotations

from typing import Literal

from agent_runtime.encoding import dumps
from agent_runtime.errors import PayloadTooLargeError, TooManyRequestsError
from agent_runtime.schema import Json

STREAMS_RETRY_AFTER_SECONDS = 5


def check_metadata_size(
    metadata: Json, *, limit: int, owner: Literal["thread", "assistant", "run"] = "thread"
) -> None:
    """Refuse metadata whose JSON encoding is over `limit` bytes.

    Raises:
        PayloadTooLargeError: the metadata would be over `limits.max_metadata_bytes`.
    """
    size = len(dumps(metadata))
    if size > limit:
        raise PayloadTooLargeError(
            f"The {owner}'s metadata would be {size} bytes, over the limit of {limit} bytes "
            "(agent_runtime.limits.max_metadata_bytes in langgraph.json)",
            code="metadata_too_large",
        )


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
