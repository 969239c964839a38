"""The access log: uvicorn's line for each request, written once the response has ended (with
its duration for JSON lines), never before. Through the real CLI: `test_processes.py` (JSON
lines) and `test_cli.py` (one line a request, `--no-access-log`)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from starlette.types import Message, Receive, Scope, Send

from agent_runtime.observability.access_log import ACCESS_LOGGER, AccessLog


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


@pytest.fixture
def lines() -> Iterator[_Lines]:
    handler = _Lines()
    access = logging.getLogger(ACCESS_LOGGER)
    level = access.level
    access.addHandler(handler)
    access.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        access.removeHandler(handler)
        access.setLevel(level)


def _scope() -> Scope:
    return {
        "type": "http",
        "method": "POST",
        "raw_path": b"/threads/t1/runs/stream",
        "path": "/threads/t1/runs/stream",
        "query_string": b"a=1",
        "http_version": "1.1",
        "client": ("127.0.0.1", 5555),
        "headers": [],
    }


async def _receive() -> Message:
    return {"type": "http.request", "body": b"", "more_body": False}


async def test_access_log_writes_the_line_once_the_response_has_ended(lines: _Lines) -> None:
    sent: list[Message] = []
    seen_at_each_send: list[int] = []

    async def send(message: Message) -> None:
        seen_at_each_send.append(len(lines.records))
        sent.append(message)

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"event: a\n\n", "more_body": True})
        await asyncio.sleep(0.02)
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    await AccessLog(app)(_scope(), _receive, send)

    assert [m["type"] for m in sent] == ["http.response.start", *["http.response.body"] * 2]
    assert seen_at_each_send == [0, 0, 0]
    [record] = lines.records
    assert record.getMessage() == '127.0.0.1:5555 - "POST /threads/t1/runs/stream?a=1 HTTP/1.1" 200'
    # uvicorn's AccessFormatter unpacks exactly these five arguments.
    assert record.args == ("127.0.0.1:5555", "POST", "/threads/t1/runs/stream?a=1", "1.1", 200)
    assert record.duration_ms >= 20  # type: ignore[attr-defined]


async def test_access_log_logs_the_status_sent_before_a_failure(lines: _Lines) -> None:
    async def send(message: Message) -> None:
        pass

    async def failing(scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 500, "headers": []})
        await send({"type": "http.response.body", "body": b"Internal Server Error"})
        raise RuntimeError("after the answer")

    async def silent(scope: Scope, receive: Receive, send: Send) -> None:
        raise RuntimeError("before any answer")

    with pytest.raises(RuntimeError, match="after the answer"):
        await AccessLog(failing)(_scope(), _receive, send)
    with pytest.raises(RuntimeError, match="before any answer"):
        await AccessLog(silent)(_scope(), _receive, send)

    # uvicorn answers the second itself and logs no access line for it either.
    assert [record.args[-1] for record in lines.records] == [500]  # type: ignore[index]


async def test_access_log_passes_other_scopes_through(lines: _Lines) -> None:
    seen: list[str] = []

    async def app(scope: Scope, receive: Receive, send: Send) -> None:
        seen.append(scope["type"])

    async def send(message: Message) -> None:
        pass

    await AccessLog(app)({"type": "lifespan"}, _receive, send)
    assert seen == ["lifespan"]
    assert lines.records == []
