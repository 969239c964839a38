"""Caps on what one client can take (issue 11): pending runs per thread and open streams (429),
assistant and run metadata (413), stalled stream readers, `/runs/wait` heartbeats, the event
log's byte cap and a reconnect after the replay window."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import RateLimitError

from agent_runtime.clock import SYSTEM_CLOCK, Clock, FakeClock
from agent_runtime.config import config_from_dict
from agent_runtime.errors import ConfigError
from agent_runtime.server import waiting
from agent_runtime.streaming import MemoryEventLog
from tests.conftest import ROOT, RunningServer, json_of

FIXTURES = ROOT / "tests" / "fixtures" / "runs" / "langgraph.json"
STEPS: dict[str, Any] = {"steps": []}
TIMEOUT = 15
Served = tuple[RunningServer, LangGraphClient, httpx.AsyncClient]


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, *, clock: Clock = SYSTEM_CLOCK, **limits: Any
) -> AsyncIterator[Served]:
    """The run fixture graphs, with `agent_runtime.limits` set to `limits`."""
    data = {**json.loads(FIXTURES.read_text()), "agent_runtime": {"limits": limits}}
    config = config_from_dict(
        data, base_dir=FIXTURES.parent, database=tmp_path / "db.sqlite", environ={}
    )
    server = await RunningServer(config, clock=clock).start()
    sdk = get_client(url=server.url, api_key=None)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield server, sdk, http
    finally:
        await sdk.http.client.aclose()
        await server.stop()


async def slow_run(sdk: LangGraphClient, thread_id: str, delay: float, **kwargs: Any) -> str:
    run = await sdk.runs.create(thread_id, "slow", input=STEPS, context={"delay": delay}, **kwargs)
    return str(run["run_id"])


async def eventually(check: Any, *, within: float = 5.0) -> None:
    deadline = time.monotonic() + within
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


# Pending runs per thread


async def test_pending_runs_per_thread_are_capped(tmp_path: Path) -> None:
    async with serving(tmp_path, max_pending_runs_per_thread=2) as (_, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        running = await slow_run(sdk, thread_id, 5)
        queued = [await slow_run(sdk, thread_id, 0) for _ in range(2)]
        body = {"assistant_id": "slow", "input": STEPS}
        response = await http.post(f"/threads/{thread_id}/runs", json=body)
        assert response.status_code == 429
        assert response.headers["retry-after"] == "5"
        assert response.json() == {
            "detail": f'Thread "{thread_id}" already has 2 pending runs, the most it may queue '
            "(agent_runtime.limits.max_pending_runs_per_thread in langgraph.json); retry when "
            "some have run, or cancel them",
            "code": "too_many_pending_runs",
        }
        # Every way of queueing a run is refused, and none was stored.
        for path in ("runs/stream", "runs/wait"):
            refused = await http.post(f"/threads/{thread_id}/{path}", json=body)
            assert refused.status_code == 429, path
        with pytest.raises(RateLimitError):
            await sdk.runs.create(thread_id, "slow", input=STEPS)
        runs = await sdk.runs.list(thread_id)
        assert sorted(r["run_id"] for r in runs) == sorted([running, *queued])
        # `interrupt` cancels the queue instead of growing it.
        kept = await sdk.runs.create(thread_id, "slow", input=STEPS, multitask_strategy="interrupt")
        assert kept["status"] == "pending"
        await sdk.runs.join(thread_id, kept["run_id"])


# Open streams per process


async def test_open_streams_are_capped(tmp_path: Path) -> None:
    async with serving(tmp_path, max_open_streams=1) as (server, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        run_id = await slow_run(sdk, thread_id, 0.5)
        url = f"/threads/{thread_id}/runs/{run_id}/stream"
        async with http.stream("GET", url, headers={"Last-Event-ID": "-1"}) as first:
            assert first.status_code == 200
            assert server.services().streams.open == 1
            other = (await sdk.threads.create())["thread_id"]
            body = {"assistant_id": "slow", "input": STEPS}
            response = await http.post(f"/threads/{other}/runs/stream", json=body)
            assert response.status_code == 429
            assert response.headers["retry-after"] == "5"
            assert response.json() == {
                "detail": "This server is serving 1 streams, the most it serves at once "
                "(agent_runtime.limits.max_open_streams in langgraph.json); retry in a few "
                "seconds, or wait for the run's result with /runs/wait or /join instead",
                "code": "too_many_streams",
            }
            # Refused before the run was queued.
            assert await sdk.runs.list(other) == []
            assert (await http.get(url)).status_code == 429
            assert (await http.post("/runs/stream", json=body)).status_code == 429
            with pytest.raises(RateLimitError):
                async for _ in sdk.runs.stream(other, "slow", input=STEPS):
                    pass
            async with asyncio.timeout(TIMEOUT):
                await first.aread()
        await eventually(lambda: server.services().streams.open == 0)
        # The slot is free again.
        parts = [part async for part in sdk.runs.stream(other, "slow", input=STEPS)]
        assert [p.event for p in parts][-2:] == ["values", "end"]
        await eventually(lambda: server.services().streams.open == 0)


async def test_stream_slot_is_released_when_the_client_leaves(tmp_path: Path) -> None:
    async with serving(tmp_path, max_open_streams=1) as (server, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        body = {"assistant_id": "slow", "input": STEPS, "context": {"delay": 2}}
        async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as r:
            async for line in r.aiter_lines():
                if line.startswith("event: values"):
                    break
        await eventually(lambda: server.services().streams.open == 0)
        assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("sse:")]


# A reader that stops reading


def _stalled_request(url: str, path: str, body: bytes) -> socket.socket:
    host, port = url.removeprefix("http://").split(":")
    sock = socket.socket()
    # A small receive window, so the server's buffers fill quickly.
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect((host, int(port)))
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


async def test_stalled_reader_is_closed_and_freed(tmp_path: Path) -> None:
    async with serving(tmp_path, stream_send_timeout_seconds=0.5) as (server, sdk, _):
        thread_id = (await sdk.threads.create())["thread_id"]
        # Every `values` event carries the 2 MB step, far more than the socket buffers hold.
        big = {"steps": ["x" * 2_000_000]}
        body = json.dumps({"assistant_id": "slow", "input": big, "context": {"delay": 0.1}})
        sock = await asyncio.to_thread(
            _stalled_request, server.url, f"/threads/{thread_id}/runs/stream", body.encode()
        )
        try:
            await eventually(lambda: server.services().streams.open == 1)
            await eventually(lambda: server.services().streams.open == 0, within=10)
            assert not [t for t in asyncio.all_tasks() if t.get_name().startswith("sse:")]
        finally:
            sock.close()
        # The run itself went on (on_disconnect defaults to continue).
        runs = await sdk.runs.list(thread_id)
        final = await sdk.runs.join(thread_id, runs[0]["run_id"])
        assert final["steps"][1:] == ["one", "two", "three"]


# /runs/wait keeps the connection alive


@pytest.fixture
def fast_heartbeat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(waiting, "WAIT_HEARTBEAT_SECONDS", 0.1)


async def raw_wait(http: httpx.AsyncClient, path: str, body: dict[str, Any]) -> httpx.Response:
    async with http.stream("POST", path, json=body) as response:
        await response.aread()
    return response


@pytest.mark.usefixtures("fast_heartbeat")
async def test_wait_sends_whitespace_while_the_run_goes_on(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        body = {"assistant_id": "slow", "input": STEPS, "context": {"delay": 0.2}}
        response = await raw_wait(http, f"/threads/{thread_id}/runs/wait", body)
        assert response.status_code == 200
        assert response.headers["content-type"] == "application/json"
        run = (await sdk.runs.list(thread_id))[0]
        base = f"/threads/{thread_id}/runs/{run['run_id']}"
        assert response.headers["content-location"] == base
        assert response.headers["location"] == base + "/join"
        heartbeats = len(response.content) - len(response.content.lstrip(b"\n"))
        assert heartbeats >= 3
        assert json.loads(response.content) == {"steps": ["one", "two", "three"]}
        # The SDK reads the same body.
        values = await sdk.runs.wait(thread_id, "slow", input=STEPS, context={"delay": 0.2})
        assert values == {"steps": ["one", "two", "three"] * 2}
        # Stateless, and joining a run, the same.
        response = await raw_wait(http, "/runs/wait", body)
        assert response.content.startswith(b"\n")
        assert json.loads(response.content) == {"steps": ["one", "two", "three"]}
        run_id = await slow_run(sdk, thread_id, 0.2)
        async with http.stream("GET", f"/threads/{thread_id}/runs/{run_id}/join") as joined:
            content = await joined.aread()
        assert content.startswith(b"\n")
        assert json.loads(content)["steps"][-3:] == ["one", "two", "three"]


@pytest.mark.usefixtures("fast_heartbeat")
async def test_wait_reports_a_late_failure_in_the_body(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        # Queued behind a slow run, so the failure comes after heartbeats.
        await slow_run(sdk, thread_id, 0.15)
        body = {"assistant_id": "failing", "input": STEPS}
        response = await raw_wait(http, f"/threads/{thread_id}/runs/wait", body)
        assert response.status_code == 200
        assert response.content.startswith(b"\n")
        assert json.loads(response.content) == {
            "__error__": {"error": "ValueError", "message": "the fixture graph failed on purpose"}
        }
        await slow_run(sdk, thread_id, 0.15)
        with pytest.raises(Exception, match="ValueError: the fixture graph failed on purpose"):
            await sdk.runs.wait(thread_id, "failing", input=STEPS)


@pytest.mark.usefixtures("fast_heartbeat")
async def test_wait_refusals_keep_their_status(tmp_path: Path) -> None:
    async with serving(tmp_path) as (_, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        await slow_run(sdk, thread_id, 0.5)
        missing = await http.post(f"/threads/{thread_id}/runs/wait", json={"assistant_id": "x"})
        assert missing.status_code == 404
        assert missing.json()["code"] == "assistant_not_found"
        busy = {"assistant_id": "slow", "input": STEPS, "multitask_strategy": "reject"}
        refused = await http.post(f"/threads/{thread_id}/runs/wait", json=busy)
        assert refused.status_code == 409
        assert refused.json()["code"] == "thread_busy"
        invalid = await http.post("/runs/wait", json={"assistant_id": "slow", "after_seconds": -1})
        assert invalid.status_code == 422


# Metadata of assistants and runs


async def test_assistant_and_run_metadata_are_capped(tmp_path: Path) -> None:
    async with serving(tmp_path, max_metadata_bytes=100) as (_, sdk, http):
        hint = "(agent_runtime.limits.max_metadata_bytes in langgraph.json)"
        big = {"k": "x" * 93}  # 101 bytes encoded
        response = await http.post("/assistants", json={"graph_id": "slow", "metadata": big})
        assert response.status_code == 413
        assert response.json() == {
            "detail": f"The assistant's metadata would be 101 bytes, over the limit of 100 "
            f"bytes {hint}",
            "code": "metadata_too_large",
        }
        assistant = await sdk.assistants.create("slow", metadata={"a": "x" * 40})
        url = f"/assistants/{assistant['assistant_id']}"
        # Merged: {"a":"x…40","b":"y…50"} is 105 bytes.
        response = await http.patch(url, json={"metadata": {"b": "y" * 50}})
        assert response.status_code == 413
        assert response.json()["detail"].startswith("The assistant's metadata would be 105 bytes")
        assert (await http.get(url)).json()["metadata"] == {"a": "x" * 40}

        thread_id = (await sdk.threads.create())["thread_id"]
        body = {"assistant_id": "slow", "input": STEPS, "metadata": big}
        for path in (f"/threads/{thread_id}/runs", f"/threads/{thread_id}/runs/wait", "/runs"):
            response = await http.post(path, json=body)
            assert response.status_code == 413, path
            assert response.json() == {
                "detail": f"The run's metadata would be 101 bytes, over the limit of 100 bytes "
                f"{hint}",
                "code": "metadata_too_large",
            }
        assert await sdk.runs.list(thread_id) == []
        fits = await sdk.runs.create(thread_id, "slow", input=STEPS, metadata={"k": "x" * 92})
        assert json_of(fits["metadata"])["k"] == "x" * 92


# The replay window and the event log's byte cap


async def test_join_after_the_replay_window_says_where_the_result_is(tmp_path: Path) -> None:
    clock = FakeClock(tick=timedelta(milliseconds=1))
    async with serving(tmp_path, clock=clock) as (server, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        run_id = await slow_run(sdk, thread_id, 0)
        await sdk.runs.join(thread_id, run_id)
        events = server.services().events
        assert isinstance(events, MemoryEventLog)
        clock.advance(events.retention_seconds + 1)
        message = (
            f'The events of run "{run_id}" are no longer kept (they are kept for 5 minutes '
            f"after a run ends); read its result with GET /threads/{thread_id}/runs/{run_id}"
            f"/join, or the thread's state with GET /threads/{thread_id}/state"
        )
        parts = [p async for p in sdk.runs.join_stream(thread_id, run_id, last_event_id="-1")]
        assert [(p.event, p.data) for p in parts] == [
            ("error", {"error": "EventsExpired", "message": message}),
            ("end", None),
        ]
        url = f"/threads/{thread_id}/runs/{run_id}/stream"
        response = await http.get(url, headers={"Last-Event-ID": "3"})
        assert response.status_code == 200
        assert response.headers["content-location"] == f"/threads/{thread_id}/runs/{run_id}"
        assert response.text == (
            f"event: error\ndata: {json.dumps({'error': 'EventsExpired', 'message': message})}"
            "\n\nevent: end\ndata: null\n\n"
        ).replace('", "', '","').replace('": "', '":"')
        await eventually(lambda: server.services().streams.open == 0)


async def test_event_bytes_per_run_cap_drops_the_oldest(tmp_path: Path) -> None:
    # `bursty` publishes 500 custom events of about 110 bytes each (with overhead).
    async with serving(tmp_path, max_event_bytes_per_run=10_000) as (_, sdk, http):
        thread_id = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(thread_id, "bursty", input=STEPS, stream_mode="custom")
        await sdk.runs.join(thread_id, run["run_id"])
        url = f"/threads/{thread_id}/runs/{run['run_id']}/stream"
        response = await http.get(url, headers={"Last-Event-ID": "-1"})
        lines = response.text.splitlines()
        assert lines[0] == "event: error"
        error = json.loads(lines[1].removeprefix("data: "))
        assert error["error"] == "EventsDroppedError"
        assert "(agent_runtime.limits.max_event_bytes_per_run)" in error["message"]
        first = int(error["message"].split("resume after event ")[1].split()[0])
        replayed = await http.get(url, headers={"Last-Event-ID": str(first)})
        ids = [int(line[4:]) for line in replayed.text.splitlines() if line.startswith("id: ")]
        assert ids[0] == first + 1
        assert ids[-1] == 502  # metadata, 500 custom events, end
        # Each weighs over 100 bytes (payload, name, overhead): at most 10_000 bytes are kept.
        assert len(ids) < 100


# Settings


def test_cap_defaults_and_settings(tmp_path: Path) -> None:
    def limits(**values: Any) -> Any:
        data = {**json.loads(FIXTURES.read_text()), "agent_runtime": {"limits": values}}
        return config_from_dict(
            data, base_dir=FIXTURES.parent, database=tmp_path / "db.sqlite", environ={}
        ).limits

    defaults = limits()
    assert defaults.max_pending_runs_per_thread == 100
    assert defaults.max_open_streams == 200
    assert defaults.stream_send_timeout_seconds == 30.0
    assert defaults.max_event_bytes_per_run == 16 * 1024 * 1024
    assert limits(stream_send_timeout_seconds=2).stream_send_timeout_seconds == 2.0
    with pytest.raises(ConfigError) as caught:
        limits(max_open_streams=0)
    assert caught.value.detail == (
        "langgraph.json: agent_runtime.limits.max_open_streams: expected a positive integer, got 0"
    )
    with pytest.raises(ConfigError) as caught:
        limits(stream_send_timeout_seconds=0)
    assert caught.value.detail == (
        "langgraph.json: agent_runtime.limits.stream_send_timeout_seconds: expected a positive "
        "number, got 0"
    )
