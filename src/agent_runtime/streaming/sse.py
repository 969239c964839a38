"""Server-sent events framing: run events to bytes and the Last-Event-ID header to a cursor.
Pure functions; no IO, no knowledge of runs or HTTP responses."""

from __future__ import annotations

import re

from agent_runtime.errors import InvalidRequestError

HEARTBEAT: bytes = b": heartbeat\n\n"
"""A comment frame: keeps idle connections and proxies alive; SSE clients ignore it."""

# Every way the SSE spec (and the SDK's line decoder) ends a line.
_LINE_BREAK = re.compile(rb"\r\n|\r|\n")
# ASCII only: `int()` alone would accept "+1", " 1", "1_0" and non-ASCII digits. Eighteen digits
# always fit in a signed 64-bit integer, the most a Redis-backed log can count to.
_EVENT_ID = re.compile(r"-1|[0-9]{1,18}")
# Error messages echo the bad value; a client can send kilobytes of it.
_SHOWN_CHARS = 40


def encode_event(event: str, data: bytes, event_id: str | None) -> bytes:
    """Frame one event as `event: <name>\\ndata: <json>\\nid: <id>\\n\\n`.

    Args:
        event: the event name, e.g. `values` or `updates|sub:1`.
        data: the encoded JSON payload; a payload with line breaks becomes several `data:` lines,
            which SSE clients join back with `\\n`.
        event_id: the id clients echo back in `Last-Event-ID`; no `id:` line when None.

    Raises:
        ValueError: the name or id holds a line break (or the id a NUL), which would corrupt the
            stream for every client.
    """
    if "\n" in event or "\r" in event:
        raise ValueError(f"SSE event name must be a single line, got {event!r}")
    if b"\n" in data or b"\r" in data:
        data = b"\ndata: ".join(_LINE_BREAK.split(data))
    if event_id is None:
        return b"".join((b"event: ", event.encode(), b"\ndata: ", data, b"\n\n"))
    if "\n" in event_id or "\r" in event_id or "\0" in event_id:
        # Clients silently ignore an id with a NUL, so reconnects would replay from the wrong place.
        raise ValueError(f"SSE event id must be a single line without NUL, got {event_id!r}")
    return b"".join(
        (b"event: ", event.encode(), b"\ndata: ", data, b"\nid: ", event_id.encode(), b"\n\n")
    )


def parse_last_event_id(header: str | None) -> int | None:
    """Read a `Last-Event-ID` header: the id of the last event the client got, or -1 for all.

    Returns None when the header is absent or empty (the client has no cursor), so the caller
    streams live events only.

    Raises:
        InvalidRequestError: the value is not -1 or a non-negative decimal integer.
    """
    if header is None or header == "":
        return None
    if _EVENT_ID.fullmatch(header) is None:
        shown = header if len(header) <= _SHOWN_CHARS else header[:_SHOWN_CHARS] + "..."
        raise InvalidRequestError(
            "Last-Event-ID must be the id of the last event received (0, 1, 2, ...) or -1 to "
            f'replay every event, got "{shown}"',
            code="invalid_last_event_id",
        )
    return int(header)
