"""The in-process run event log: ids, replay, fan-out, close, retention and the event cap."""

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


async def test_publish_numbers_events_from_one() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    first = await log.publish(RUN, "metadata", b'{"run_id":"run-1"}')
    second = await log.publish(RUN, "values", b"{}")
    assert first == RunEvent(id=1, event="metadata", data=b'{"run_id":"run-1"}')
    assert second == RunEvent(id=2, event="values", data=b"{}")
    await log.open("run-2")
    assert (await log.publish("run-2", "values", b"{}")).id == 1


async def test_publish_requires_open_log() -> None:
    log = MemoryEventLog()
    with pytest.raises(RuntimeError, match='Run "run-1" has no open event log'):
        await log.publish(RUN, "values", b"{}")
    await log.open(RUN)
    await log.close(RUN)
    with pytest.raises(RuntimeError, match='Run "run-1" has no open event log'):
        await log.publish(RUN, "values", b"{}")


async def test_subscribe_replays_all_with_minus_one() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 3)
    events = log.subscribe(RUN, after=-1)
    await log.close(RUN)
    assert await _collect(events) == [
        RunEvent(id=1, event="values", data=b"1"),
        RunEvent(id=2, event="values", data=b"2"),
        RunEvent(id=3, event="values", data=b"3"),
    ]


async def test_subscribe_replays_after_id_then_continues_live() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 5)
    events = log.subscribe(RUN, after=3)
    await _publish(log, 2, start=6)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [4, 5, 6, 7]
    assert _ids(await _collect(log.subscribe(RUN, after=0))) == [1, 2, 3, 4, 5, 6, 7]
    assert await _collect(log.subscribe(RUN, after=7)) == []


async def test_subscribe_past_last_id_continues_live() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 2)
    # A cursor from some other log (say, before a restart) must not skip this log's next events.
    events = log.subscribe(RUN, after=57)
    await _publish(log, 1, start=3)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [3]


async def test_subscribe_without_after_is_live_from_the_call() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 2)
    events = log.subscribe(RUN)
    # Published before the first iteration but after subscribing: must not be missed.
    await _publish(log, 2, start=3)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [3, 4]


async def test_subscribe_before_first_publish_gets_first_event() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    replaying = log.subscribe(RUN, after=-1)
    live = log.subscribe(RUN)
    await log.publish(RUN, "metadata", b"{}")
    await log.close(RUN)
    assert _ids(await _collect(replaying)) == [1]
    assert _ids(await _collect(live)) == [1]


async def test_subscribe_rejects_after_below_minus_one() -> None:
    log = MemoryEventLog()
    with pytest.raises(ValueError, match="after must be None, -1 or an event id, got -2"):
        log.subscribe(RUN, after=-2)


async def test_subscribe_fans_out_to_waiting_subscribers() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 2)
    readers = [
        asyncio.create_task(_collect(log.subscribe(RUN, after=after))) for after in (-1, 1, None)
    ]
    await asyncio.sleep(0)
    await _publish(log, 3, start=3)
    await asyncio.sleep(0)
    await _publish(log, 1, start=6)
    await log.close(RUN)
    results = await asyncio.gather(*readers)
    assert [_ids(events) for events in results] == [
        [1, 2, 3, 4, 5, 6],
        [2, 3, 4, 5, 6],
        [3, 4, 5, 6],
    ]
    assert [event.data for event in results[0]] == [b"1", b"2", b"3", b"4", b"5", b"6"]


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


async def test_close_ends_waiting_subscribers() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    reader = asyncio.create_task(_collect(log.subscribe(RUN)))
    await asyncio.sleep(0)
    await log.publish(RUN, "end", b"null")
    await log.close(RUN)
    assert _ids(await reader) == [1]
    await log.close(RUN)  # closing twice is harmless


async def test_subscribe_after_close_replays_then_ends() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 3)
    await log.close(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=-1))) == [1, 2, 3]
    assert _ids(await _collect(log.subscribe(RUN, after=2))) == [3]
    assert await _collect(log.subscribe(RUN)) == []


async def test_open_after_close_continues_ids() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    await _publish(log, 2)
    await log.close(RUN)
    await log.open(RUN)
    await log.open(RUN)  # opening an open log is harmless
    events = log.subscribe(RUN, after=2)
    await _publish(log, 1, start=3)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [3]


async def test_unknown_run_yields_nothing() -> None:
    log = MemoryEventLog()
    assert not await log.exists("nope")
    assert await _collect(log.subscribe("nope", after=-1)) == []
    assert await _collect(log.subscribe("nope")) == []
    await log.close("nope")  # closing an unknown run is harmless


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


async def test_cancelled_subscriber_leaves_others_running() -> None:
    log = MemoryEventLog()
    await log.open(RUN)
    readers = [asyncio.create_task(_collect(log.subscribe(RUN))) for _ in range(3)]
    await asyncio.sleep(0)
    readers[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await readers[1]
    await _publish(log, 2)
    await log.close(RUN)
    assert _ids(await readers[0]) == [1, 2]
    assert _ids(await readers[2]) == [1, 2]


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


async def test_byte_cap_keeps_the_newest_event_however_large() -> None:
    log = MemoryEventLog(max_bytes_per_run=50)
    await log.open(RUN)
    await log.publish(RUN, "values", b"x" * 1000)
    await log.publish(RUN, "values", b"y" * 1000)
    await log.close(RUN)
    assert [e.data[:1] for e in await _collect(log.subscribe(RUN, after=1))] == [b"y"]


async def test_byte_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_bytes_per_run must be >= 1 or None, got 0"):
        MemoryEventLog(max_bytes_per_run=0)


async def _collect_now(log: MemoryEventLog) -> list[RunEvent]:
    # The log is still open: read what is there without waiting for more.
    events = log.subscribe(RUN, after=-1)
    return [await anext(events) for _ in range(10)]
