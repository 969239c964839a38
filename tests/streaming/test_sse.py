"""SSE framing, byte for byte, and as the SDK's own decoder reads it back."""

from __future__ import annotations

from typing import Any, cast

import pytest
from langgraph_sdk.schema import StreamPart
from langgraph_sdk.sse import BytesLineDecoder, SSEDecoder

from agent_runtime.encoding import dumps
from agent_runtime.errors import InvalidRequestError
from agent_runtime.streaming.sse import HEARTBEAT, encode_event, parse_last_event_id


def _sdk_decode(stream: bytes, *, chunk_size: int = 7) -> list[tuple[str, Any, str | None]]:
    """Read `stream` exactly as `langgraph_sdk`'s `stream()` does, in awkward chunk sizes."""
    lines = BytesLineDecoder()
    decoder = SSEDecoder()
    parts: list[StreamPart] = []
    for start in range(0, len(stream), chunk_size):
        for line in lines.decode(stream[start : start + chunk_size]):
            part = decoder.decode(line=cast("bytes", line).rstrip(b"\n"))
            if part is not None and (part.event or decoder.has_data):
                parts.append(part)
    for line in lines.flush():
        part = decoder.decode(line=cast("bytes", line).rstrip(b"\n"))
        if part is not None and (part.event or decoder.has_data):
            parts.append(part)
    part = decoder.decode(b"")
    if part is not None and (part.event or decoder.has_data):
        parts.append(part)
    return [(part.event, part.data, part.id) for part in parts]


async def test_encode_event_frames_name_data_and_id() -> None:
    frame = encode_event("values", b'{"messages":[]}', "3")
    assert frame == b'event: values\ndata: {"messages":[]}\nid: 3\n\n'


async def test_encode_event_omits_id_line_without_id() -> None:
    assert encode_event("end", b"null", None) == b"event: end\ndata: null\n\n"


async def test_encode_event_splits_data_on_every_line_break() -> None:
    frame = encode_event("custom", b'{\n"a":\r\n1\r}', "1")
    assert frame == b'event: custom\ndata: {\ndata: "a":\ndata: 1\ndata: }\nid: 1\n\n'


async def test_encode_event_rejects_line_breaks_in_name_and_id() -> None:
    with pytest.raises(ValueError, match="event name must be a single line"):
        encode_event("values\ndata: x", b"1", "1")
    with pytest.raises(ValueError, match="event id must be a single line without NUL"):
        encode_event("values", b"1", "1\nevent: end")
    with pytest.raises(ValueError, match="event id must be a single line without NUL"):
        encode_event("values", b"1", "1\0")


async def test_heartbeat_is_a_comment_frame() -> None:
    assert HEARTBEAT == b": heartbeat\n\n"


async def test_encode_event_round_trips_through_sdk_decoder() -> None:
    payloads: list[tuple[str, Any, str | None]] = [
        ("metadata", {"run_id": "1ef0", "attempt": 1}, "1"),
        ("messages/partial", [{"content": "héllo\nwörld 🌍", "type": "ai"}], "2"),
        ("updates|sub:1", {"node": {"text": "a\r\nb"}}, "3"),
        ("error", {"error": "ValueError", "message": "boom"}, "4"),
        ("end", None, "5"),
    ]
    stream = HEARTBEAT + b"".join(
        encode_event(event, dumps(data), event_id) + HEARTBEAT for event, data, event_id in payloads
    )
    for chunk_size in (1, 7, len(stream)):
        parts = _sdk_decode(stream, chunk_size=chunk_size)
        assert parts == payloads


async def test_encode_event_multiline_data_round_trips_through_sdk_decoder() -> None:
    data = b'{\n  "a": [1,\r\n 2],\r  "b": "x"\n}'
    parts = _sdk_decode(encode_event("values", data, "9"))
    assert parts == [("values", {"a": [1, 2], "b": "x"}, "9")]


async def test_encode_event_without_id_keeps_sdk_cursor() -> None:
    stream = encode_event("values", b"1", "4") + encode_event("values", b"2", None)
    parts = _sdk_decode(stream)
    # The SSE spec carries the last id over to events without one; so does the SDK's reconnect.
    assert parts == [("values", 1, "4"), ("values", 2, "4")]


async def test_parse_last_event_id_reads_ids() -> None:
    assert parse_last_event_id(None) is None
    assert parse_last_event_id("") is None
    assert parse_last_event_id("-1") == -1
    assert parse_last_event_id("0") == 0
    assert parse_last_event_id("42") == 42
    assert parse_last_event_id("9" * 18) == int("9" * 18)


@pytest.mark.parametrize(
    "header", ["abc", "-2", "-0", "1.5", " 7", "7 ", "+3", "1_000", "\u0663", "1" * 19, "0x10"]
)
async def test_parse_last_event_id_rejects_non_ids(header: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_last_event_id(header)
    assert caught.value.code == "invalid_last_event_id"
    assert caught.value.status_code == 422
    assert caught.value.detail == (
        "Last-Event-ID must be the id of the last event received (0, 1, 2, ...) or -1 to "
        f'replay every event, got "{header}"'
    )


async def test_parse_last_event_id_shortens_long_values_in_message() -> None:
    with pytest.raises(InvalidRequestError) as caught:
        parse_last_event_id("x" * 1000)
    assert caught.value.detail.endswith(f'got "{"x" * 40}..."')
