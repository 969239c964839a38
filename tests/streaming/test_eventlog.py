"""The in-process run event log beyond the contract every log passes
(test_eventlog_contract.py): retention to the tick of a fake clock, the event-count cap, a
subscriber that keeps a closed log past its expiry, bursts, and its settings."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.errors import EventsDroppedError
from agent_runtime.streaming.eventlog import (
    EVENT_OVERHEAD_BYTES,
    EventLog,
    MemoryEventLog,
    RunEvent,
)

RUN = "run-1"


async def _collect(events: AsyncIterator[RunEvent]) -> list[RunEvent]:
    return [event async for event in events]


async def _publish(log: EventLog, count: int, *, start: int = 1) -> None:
    for n in range(start, start + count):
        await log.publish(RUN, "values", b"%d" % n)


def _ids(events: list[RunEvent]) -> list[int]:
    return [event.id for event in events]


async def test_memory_event_log_follows_protocol() -> None:
    log: EventLog = MemoryEventLog()
    await log.open(RUN)
    assert await log.exists(RUN)


async def test_subscribe_keeps_exact_sequence_through_bursts() -> None:
    log = MemoryEventLog()
    await log.open(RUN)

    async def read(*, slow: bool) -> list[RunEvent]:
        seen = []
        async for event in log.subscribe(RUN, after=-1):
            seen.append(event)
            if slow:
                await asyncio.sleep(0)
        return seen

    readers = [asyncio.create_task(read(slow=slow)) for slow in (True, False, True)]
    await asyncio.sleep(0)
    # Bursts of 250 with no await in between, then a single yield to the loop.
    for burst in range(4):
        await _publish(log, 250, start=burst * 250 + 1)
        await asyncio.sleep(0)
    await log.close(RUN)
    expected = [RunEvent(id=n, event="values", data=b"%d" % n) for n in range(1, 1001)]
    for seen in await asyncio.gather(*readers):
        assert seen == expected


async def test_exists_through_retention() -> None:
    clock = FakeClock()
    log = MemoryEventLog(retention_seconds=10.0, clock=clock)
    await log.open(RUN)
    await _publish(log, 2)
    clock.advance(1000.0)  # an open log never expires
    assert await log.exists(RUN)
    await log.close(RUN)
    clock.advance(9.999)
    assert await log.exists(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=-1))) == [1, 2]
    clock.advance(0.001)
    assert not await log.exists(RUN)
    assert await _collect(log.subscribe(RUN, after=-1)) == []


async def test_retention_expiry_lets_draining_subscriber_finish() -> None:
    clock = FakeClock()
    log = MemoryEventLog(retention_seconds=5.0, clock=clock)
    await log.open(RUN)
    await _publish(log, 3)
    events = log.subscribe(RUN, after=-1)
    await log.close(RUN)
    assert (await anext(events)).id == 1
    clock.advance(5.0)
    assert not await log.exists(RUN)
    assert _ids(await _collect(events)) == [2, 3]


async def test_retention_zero_drops_on_close() -> None:
    log = MemoryEventLog(retention_seconds=0.0, clock=FakeClock())
    await log.open(RUN)
    await _publish(log, 1)
    await log.close(RUN)
    assert not await log.exists(RUN)


async def test_open_after_expiry_starts_a_new_log() -> None:
    clock = FakeClock()
    log = MemoryEventLog(retention_seconds=5.0, clock=clock)
    await log.open(RUN)
    await _publish(log, 2)
    await log.close(RUN)
    clock.advance(5.0)
    await log.open(RUN)
    assert (await log.publish(RUN, "values", b"{}")).id == 1


async def test_reopened_log_outlives_its_first_deadline() -> None:
    clock = FakeClock()
    log = MemoryEventLog(retention_seconds=5.0, clock=clock)
    await log.open(RUN)
    await log.close(RUN)
    await log.open(RUN)
    clock.advance(60.0)
    assert await log.exists(RUN)
    await log.close(RUN)
    clock.advance(4.0)
    assert await log.exists(RUN)
    clock.advance(1.0)
    assert not await log.exists(RUN)


async def test_aclose_ends_every_subscriber() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await log.open("run-2")
    await _publish(log, 1)
    readers = [asyncio.create_task(_collect(log.subscribe(run))) for run in (RUN, "run-2")]
    await asyncio.sleep(0)
    await log.aclose()
    assert [await reader for reader in readers] == [[], []]
    assert not await log.exists(RUN)


async def test_cap_keeps_ids_and_signals_dropped_events() -> None:
    log = MemoryEventLog(max_events_per_run=3)
    await log.open(RUN)
    await _publish(log, 6)  # reaching 2 x cap trims down to the last 3
    await log.close(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=3))) == [4, 5, 6]
    events = log.subscribe(RUN, after=-1)
    with pytest.raises(EventsDroppedError) as caught:
        await anext(events)
    assert caught.value.first_available == 4
    assert caught.value.status_code == 410
    assert caught.value.code == "events_dropped"
    assert caught.value.detail == (
        'Events 1 to 3 of run "run-1" were dropped to keep its event log under its cap '
        "(agent_runtime.limits.max_event_bytes_per_run); resume after event 3 to skip them"
    )


async def test_cap_signals_subscriber_that_fell_behind() -> None:
    log = MemoryEventLog(max_events_per_run=2)
    await log.open(RUN)
    events = log.subscribe(RUN, after=-1)
    await _publish(log, 3)
    assert (await anext(events)).id == 1
    await _publish(log, 1, start=4)  # 4 retained would be 2 x cap: keeps 3 and 4
    with pytest.raises(EventsDroppedError) as caught:
        await anext(events)
    assert caught.value.first_available == 3
    assert (await log.publish(RUN, "values", b"5")).id == 5


async def test_memory_event_log_rejects_bad_settings() -> None:
    with pytest.raises(ValueError, match="retention_seconds must be >= 0, got -1"):
        MemoryEventLog(retention_seconds=-1)
    with pytest.raises(ValueError, match="max_events_per_run must be >= 1 or None, got 0"):
        MemoryEventLog(max_events_per_run=0)


async def test_byte_cap_drops_the_oldest_down_to_half() -> None:
    # Each event weighs its payload (10 bytes), its name ("values", 6) and the overhead.
    weight = 10 + 6 + EVENT_OVERHEAD_BYTES
    log = MemoryEventLog(max_bytes_per_run=10 * weight)
    await log.open(RUN)
    for n in range(1, 11):
        await log.publish(RUN, "values", b"%010d" % n)
    assert _ids(await _collect_now(log)) == list(range(1, 11))  # exactly at the cap
    await log.publish(RUN, "values", b"%010d" % 11)  # over it: down to 5 events
    await log.close(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=6))) == [7, 8, 9, 10, 11]
    with pytest.raises(EventsDroppedError) as caught:
        await anext(log.subscribe(RUN, after=-1))
    assert caught.value.first_available == 7


async def test_byte_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes_per_run must be >= 1 or None, got 0"):
        MemoryEventLog(max_bytes_per_run=0)


async def _collect_now(log: MemoryEventLog) -> list[RunEvent]:
    # The log is still open: read what is there without waiting for more.
    events = log.subscribe(RUN, after=-1)
    return [await anext(events) for _ in range(10)]
