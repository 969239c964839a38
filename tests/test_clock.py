"""The one clock: `FakeClock` on its own, then a server started on one, where moving it by hand
is what makes a delayed run (`after_seconds`) fall due, what the sweeper expires threads by, and
what stamps and times tool calls."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.clock import FAKE_EPOCH, SYSTEM_CLOCK, FakeClock
from agent_runtime.config import config_from_dict
from tests.conftest import RunningServer, example_config, json_of
from tests.server.conftest import RUNS_CONFIG

HOUR = 3600  # seconds; the SDK types `after_seconds` as an int
STEPS: dict[str, Any] = {"steps": []}
# Real time given to the server to act (or to show that it does not) after a clock move.
SETTLE_SECONDS = 0.3
pytestmark = pytest.mark.timeout(30)


# FakeClock


async def test_fake_clock_advance_moves_both_times_and_ends_due_sleeps() -> None:
    clock = FakeClock()
    assert clock.now() == FAKE_EPOCH and clock.monotonic() == 0.0
    short = asyncio.create_task(clock.sleep(10))
    long = asyncio.create_task(clock.sleep(60))
    await asyncio.sleep(0)
    clock.advance(timedelta(seconds=9))
    await asyncio.sleep(0.01)
    assert not short.done()
    clock.advance(1)
    await asyncio.sleep(0.01)
    assert short.done() and not long.done()
    assert clock.now() == FAKE_EPOCH + timedelta(seconds=10)
    assert clock.monotonic() == 10.0
    long.cancel()
    with pytest.raises(asyncio.CancelledError):
        await long


async def test_a_fake_sleep_counts_from_its_call_not_from_its_first_turn() -> None:
    # A sleep handed to a task (as `sleep_or_wake` does) first runs a loop turn later; an
    # advance in between still ends it. Counted from its first turn, it would end only at the
    # next advance: a scheduler loop went to sleep past the due time it had just computed.
    clock = FakeClock()
    pending = asyncio.ensure_future(clock.sleep(1))
    longer = asyncio.ensure_future(clock.sleep(2))
    clock.advance(1)
    await asyncio.wait_for(pending, timeout=1)
    await asyncio.sleep(0.01)
    assert not longer.done()
    clock.advance(1)
    await asyncio.wait_for(longer, timeout=1)


async def test_fake_clock_set_jumps_wall_time_only() -> None:
    clock = FakeClock()
    sleeping = asyncio.create_task(clock.sleep(1))
    await asyncio.sleep(0)
    clock.set(FAKE_EPOCH - timedelta(days=1))
    clock.set(FAKE_EPOCH + timedelta(days=1))
    await asyncio.sleep(0.01)
    assert not sleeping.done()
    assert clock.now() == FAKE_EPOCH + timedelta(days=1)
    assert clock.monotonic() == 0.0
    sleeping.cancel()


async def test_fake_clock_tick_orders_readings_without_moving_monotonic_time() -> None:
    clock = FakeClock(tick=timedelta(milliseconds=1))
    first, second = clock.now(), clock.now()
    assert second - first == timedelta(milliseconds=1)
    assert clock.wall == second
    assert clock.monotonic() == 0.0


async def test_fake_clock_refuses_what_a_clock_cannot_do() -> None:
    with pytest.raises(ValueError, match="start must be timezone-aware"):
        FakeClock(datetime(2026, 1, 1))
    with pytest.raises(ValueError, match="tick must be >= 0"):
        FakeClock(tick=timedelta(seconds=-1))
    clock = FakeClock()
    with pytest.raises(ValueError, match=r"cannot go back \(-1.0 s\); use set\(\)"):
        clock.advance(-1)
    with pytest.raises(ValueError, match="the moment must be timezone-aware"):
        clock.set(datetime(2026, 1, 1))


async def test_system_clock_is_aware_utc_and_sleeps_for_real() -> None:
    before = SYSTEM_CLOCK.monotonic()
    await SYSTEM_CLOCK.sleep(0.01)
    assert SYSTEM_CLOCK.monotonic() - before >= 0.01
    assert SYSTEM_CLOCK.now().tzinfo is UTC


# A server on a FakeClock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(tick=timedelta(milliseconds=1))


@contextlib.asynccontextmanager
async def _serve(
    tmp_path: Path, clock: FakeClock, **runtime: Any
) -> AsyncIterator[tuple[LangGraphClient, httpx.AsyncClient]]:
    data = {**json.loads(RUNS_CONFIG.read_text()), "agent_runtime": runtime}
    config = config_from_dict(
        data, base_dir=RUNS_CONFIG.parent, database=tmp_path / "db.sqlite", environ={}
    )
    server = await RunningServer(config, clock=clock).start()
    sdk = get_client(url=server.url, api_key=None)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield sdk, http
    finally:
        await sdk.http.client.aclose()
        await server.stop()


async def _status(client: LangGraphClient, thread_id: str, run_id: str) -> str:
    return (await client.runs.get(thread_id, run_id))["status"]


async def test_after_seconds_falls_due_when_the_fake_clock_passes_it(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with _serve(tmp_path, clock) as (client, _):
        thread_id = (await client.threads.create())["thread_id"]
        run = await client.runs.create(
            thread_id, "slow", input=STEPS, context={"delay": 0}, after_seconds=HOUR
        )
        assert run["status"] == "pending"
        # Stamped by the same clock that decides when the run is due.
        assert json_of(run)["created_at"].startswith("2026-01-01T00:00:00")

        await asyncio.sleep(SETTLE_SECONDS)
        assert await _status(client, thread_id, run["run_id"]) == "pending"
        clock.advance(HOUR - 1)
        await asyncio.sleep(SETTLE_SECONDS)
        assert await _status(client, thread_id, run["run_id"]) == "pending"
        assert (await client.threads.get(thread_id))["status"] == "busy"

        clock.advance(1)
        result = await asyncio.wait_for(client.runs.join(thread_id, run["run_id"]), 10)
        assert result == {"steps": ["one", "two", "three"]}
        finished = await client.runs.get(thread_id, run["run_id"])
        assert finished["status"] == "success"
        assert json_of(finished)["updated_at"].startswith("2026-01-01T01:00:00")


async def test_a_wake_before_the_due_time_leaves_the_delayed_run_waiting(
    tmp_path: Path, clock: FakeClock
) -> None:
    async with _serve(tmp_path, clock) as (client, _):
        thread_id = (await client.threads.create())["thread_id"]
        delayed = await client.runs.create(
            thread_id, "slow", input=STEPS, context={"delay": 0}, after_seconds=HOUR
        )
        # A run without a delay wakes the thread's worker and overtakes the delayed one.
        prompt = await client.runs.create(thread_id, "slow", input=STEPS, context={"delay": 0})
        await asyncio.wait_for(client.runs.join(thread_id, prompt["run_id"]), 10)
        await asyncio.sleep(SETTLE_SECONDS)
        assert await _status(client, thread_id, delayed["run_id"]) == "pending"
        clock.advance(HOUR)
        await asyncio.wait_for(client.runs.join(thread_id, delayed["run_id"]), 10)
        assert await _status(client, thread_id, delayed["run_id"]) == "success"


async def test_sweeper_expires_threads_on_the_fake_clock(tmp_path: Path, clock: FakeClock) -> None:
    limits = {"inactivity_ttl_days": 1, "sweep_interval_seconds": 60}
    async with _serve(tmp_path, clock, limits=limits) as (_, http):
        response = await http.post("/threads", json={})
        assert response.status_code == 200
        thread_id = response.json()["thread_id"]

        # The sweeper wakes each fake minute; a day less an hour of inactivity keeps it.
        clock.advance(timedelta(hours=23))
        await asyncio.sleep(SETTLE_SECONDS)
        assert (await http.get(f"/threads/{thread_id}")).status_code == 200

        clock.advance(timedelta(hours=1, minutes=1))
        for _ in range(100):
            if (await http.get(f"/threads/{thread_id}")).status_code == 404:
                break
            await asyncio.sleep(0.05)
        else:
            raise AssertionError("the sweeper did not expire the thread on the fake clock")


async def test_tool_calls_are_stamped_and_timed_on_the_fake_clock(
    tmp_path: Path, clock: FakeClock
) -> None:
    server = await RunningServer(example_config(tmp_path / "db.sqlite"), clock=clock).start()
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            thread_id = (await http.post("/threads", json={})).json()["thread_id"]
            body = {
                "assistant_id": "agent",
                "input": {"messages": [{"role": "user", "content": "what is 2 + 3"}]},
            }
            response = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
            assert response.status_code == 200, response.text
            run = (await http.get(response.headers["content-location"])).json()
            [call] = (await http.get(f"/threads/{thread_id}/tool-calls")).json()
    finally:
        await server.stop()
    started = datetime.fromisoformat(call["started_at"])
    assert FAKE_EPOCH < started < clock.wall
    assert datetime.fromisoformat(run["created_at"]) < started
    assert started < datetime.fromisoformat(run["updated_at"])
    # Monotonic time stood still while the tool ran.
    assert call["duration_ms"] == 0.0
