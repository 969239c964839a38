"""The event log contract, run on every implementation: the in-process `MemoryEventLog` and
`RedisEventLog` on the real Redis (tests/services.py). Ids, replay, fan-out, close, reopening
across attempts, retention, the byte cap and `exists`."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.errors import EventsDroppedError
from agent_runtime.streaming.broker import RedisBroker
from agent_runtime.streaming.eventlog import (
    ATTEMPT_ID_SPAN,
    EVENT_OVERHEAD_BYTES,
    EventLog,
    MemoryEventLog,
    RunEvent,
    first_event_id,
)
from agent_runtime.streaming.redis import RedisEventLog
from tests.services import redis_prefix, require_redis

RUN = "run-1"
RETENTION = 0.3
WEIGHT = 10 + 6 + EVENT_OVERHEAD_BYTES
"""What one `values` event with a 10-byte payload weighs."""

pytestmark = pytest.mark.timeout(20)


@dataclass(slots=True, kw_only=True)
class Kit:
    """A log under test, a way to let its retention pass, and a way to make another instance
    of it (another process, for Redis; the same log in memory)."""

    log: EventLog
    expire: Callable[[float], Awaitable[None]]
    other: Callable[[], Awaitable[EventLog]]
    kind: str


Make = Callable[..., Awaitable[Kit]]


@pytest.fixture(params=["memory", "redis"])
async def make(request: pytest.FixtureRequest) -> AsyncIterator[Make]:
    brokers: list[RedisBroker] = []
    prefix = redis_prefix()

    async def make_kit(*, max_bytes_per_run: int | None = None) -> Kit:
        if request.param == "memory":
            clock = FakeClock()
            memory = MemoryEventLog(
                retention_seconds=RETENTION, max_bytes_per_run=max_bytes_per_run, clock=clock
            )

            async def advance(seconds: float) -> None:
                clock.advance(seconds)

            async def same() -> EventLog:
                return memory

            return Kit(log=memory, expire=advance, other=same, kind="memory")
        uri = require_redis()

        async def redis_log() -> RedisEventLog:
            broker = await RedisBroker.connect(uri, prefix=prefix)
            brokers.append(broker)
            return RedisEventLog(
                broker,
                retention_seconds=RETENTION,
                max_bytes_per_run=max_bytes_per_run,
                poll_seconds=0.2,
            )

        async def sleep(seconds: float) -> None:
            await asyncio.sleep(seconds + 0.1)

        async def another() -> EventLog:
            return await redis_log()

        return Kit(log=await redis_log(), expire=sleep, other=another, kind="redis")

    try:
        yield make_kit
    finally:
        for broker in brokers:
            await broker.aclose()


async def _collect(events: AsyncIterator[RunEvent]) -> list[RunEvent]:
    async with asyncio.timeout(5):
        return [event async for event in events]


async def _publish(log: EventLog, count: int, *, start: int = 1) -> None:
    for n in range(start, start + count):
        await log.publish(RUN, "values", b"%d" % n)


def _ids(events: list[RunEvent]) -> list[int]:
    return [event.id for event in events]


async def test_publish_numbers_events_from_one(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    first = await log.publish(RUN, "metadata", b'{"run_id":"run-1"}')
    second = await log.publish(RUN, "values", b"{}")
    assert first == RunEvent(id=1, event="metadata", data=b'{"run_id":"run-1"}')
    assert second == RunEvent(id=2, event="values", data=b"{}")
    await log.open("run-2")
    assert (await log.publish("run-2", "values", b"{}")).id == 1


async def test_publish_requires_open_log(make: Make) -> None:
    log = (await make()).log
    with pytest.raises(RuntimeError, match='Run "run-1" has no open event log'):
        await log.publish(RUN, "values", b"{}")
    await log.open(RUN)
    await log.close(RUN)
    with pytest.raises(RuntimeError, match='Run "run-1" has no open event log'):
        await log.publish(RUN, "values", b"{}")


async def test_subscribe_replays_all_with_minus_one(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 3)
    events = log.subscribe(RUN, after=-1)
    await log.close(RUN)
    assert await _collect(events) == [
        RunEvent(id=1, event="values", data=b"1"),
        RunEvent(id=2, event="values", data=b"2"),
        RunEvent(id=3, event="values", data=b"3"),
    ]


async def test_subscribe_replays_after_id_then_continues_live(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 5)
    events = log.subscribe(RUN, after=3)
    await _publish(log, 2, start=6)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [4, 5, 6, 7]
    assert _ids(await _collect(log.subscribe(RUN, after=0))) == [1, 2, 3, 4, 5, 6, 7]
    assert await _collect(log.subscribe(RUN, after=7)) == []


async def test_subscribe_past_last_id_continues_live(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 2)
    events = log.subscribe(RUN, after=57)
    reader = asyncio.create_task(_collect(events))
    await asyncio.sleep(0.05)
    await _publish(log, 1, start=3)
    await log.close(RUN)
    assert _ids(await reader) == [3]


async def test_subscribe_without_after_is_live_from_the_call(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 2)
    events = log.subscribe(RUN)
    await _publish(log, 2, start=3)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [3, 4]


async def test_subscribe_before_first_publish_gets_first_event(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    replaying = log.subscribe(RUN, after=-1)
    live = log.subscribe(RUN)
    await log.publish(RUN, "metadata", b"{}")
    await log.close(RUN)
    assert _ids(await _collect(replaying)) == [1]
    assert _ids(await _collect(live)) == [1]


async def test_subscribe_rejects_after_below_minus_one(make: Make) -> None:
    log = (await make()).log
    with pytest.raises(ValueError, match="after must be None, -1 or an event id, got -2"):
        log.subscribe(RUN, after=-2)


async def test_subscribe_fans_out_to_waiting_subscribers(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 2)
    readers = [
        asyncio.create_task(_collect(log.subscribe(RUN, after=after))) for after in (-1, 1, None)
    ]
    await asyncio.sleep(0.05)
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


async def test_subscribers_of_another_instance_see_every_event(make: Make) -> None:
    kit = await make()
    other = await kit.other()
    await kit.log.open(RUN)
    readers = [asyncio.create_task(_collect(other.subscribe(RUN, after=-1))) for _ in range(3)]
    await asyncio.sleep(0.05)
    for burst in range(4):
        await _publish(kit.log, 150, start=burst * 150 + 1)
        await asyncio.sleep(0)
    await kit.log.close(RUN)
    expected = [RunEvent(id=n, event="values", data=b"%d" % n) for n in range(1, 601)]
    for seen in await asyncio.gather(*readers):
        assert seen == expected


async def test_close_ends_waiting_subscribers(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    reader = asyncio.create_task(_collect(log.subscribe(RUN)))
    await asyncio.sleep(0.05)
    await log.publish(RUN, "end", b"null")
    await log.close(RUN)
    assert _ids(await reader) == [1]
    await log.close(RUN)  # closing twice is harmless


async def test_subscribe_after_close_replays_then_ends(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 3)
    await log.close(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=-1))) == [1, 2, 3]
    assert _ids(await _collect(log.subscribe(RUN, after=2))) == [3]
    assert await _collect(log.subscribe(RUN)) == []


async def test_open_after_close_continues_ids(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    await _publish(log, 2)
    await log.close(RUN)
    await log.open(RUN)
    await log.open(RUN)  # opening an open log is harmless
    events = log.subscribe(RUN, after=2)
    await _publish(log, 1, start=3)
    await log.close(RUN)
    assert _ids(await _collect(events)) == [3]


async def test_a_later_attempt_numbers_past_every_earlier_id(make: Make) -> None:
    kit = await make()
    await kit.log.open(RUN, first_id=first_event_id(1))
    await _publish(kit.log, 3)
    # The next attempt, in another process for Redis: ids jump to its base.
    resumed = await kit.other()
    await resumed.open(RUN, first_id=first_event_id(2))
    reconnected = resumed.subscribe(RUN, after=2)
    await _publish(resumed, 2)
    await resumed.close(RUN)
    base = ATTEMPT_ID_SPAN
    assert _ids(await _collect(reconnected)) == [3, base + 1, base + 2]
    assert _ids(await _collect(resumed.subscribe(RUN, after=3))) == [base + 1, base + 2]
    assert _ids(await _collect(resumed.subscribe(RUN, after=base + 1))) == [base + 2]
    assert first_event_id(0) == first_event_id(1) == 1
    assert first_event_id(3) == 2 * ATTEMPT_ID_SPAN + 1


async def test_unknown_run_yields_nothing(make: Make) -> None:
    log = (await make()).log
    assert not await log.exists("nope")
    assert await _collect(log.subscribe("nope", after=-1)) == []
    assert await _collect(log.subscribe("nope")) == []
    await log.close("nope")  # closing an unknown run is harmless


async def test_exists_through_retention(make: Make) -> None:
    kit = await make()
    log = kit.log
    await log.open(RUN)
    await _publish(log, 2)
    assert await log.exists(RUN)
    await log.close(RUN)
    assert await log.exists(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=-1))) == [1, 2]
    await kit.expire(RETENTION)
    assert not await log.exists(RUN)
    assert await _collect(log.subscribe(RUN, after=-1)) == []


async def test_open_after_expiry_starts_a_new_log(make: Make) -> None:
    kit = await make()
    await kit.log.open(RUN)
    await _publish(kit.log, 2)
    await kit.log.close(RUN)
    await kit.expire(RETENTION)
    await kit.log.open(RUN)
    assert (await kit.log.publish(RUN, "values", b"{}")).id == 1


async def test_cancelled_subscriber_leaves_others_running(make: Make) -> None:
    log = (await make()).log
    await log.open(RUN)
    readers = [asyncio.create_task(_collect(log.subscribe(RUN))) for _ in range(3)]
    await asyncio.sleep(0.05)
    readers[1].cancel()
    with pytest.raises(asyncio.CancelledError):
        await readers[1]
    await _publish(log, 2)
    await log.close(RUN)
    assert _ids(await readers[0]) == [1, 2]
    assert _ids(await readers[2]) == [1, 2]


async def test_byte_cap_drops_the_oldest_down_to_half(make: Make) -> None:
    log = (await make(max_bytes_per_run=10 * WEIGHT)).log
    await log.open(RUN)
    for n in range(1, 11):
        await log.publish(RUN, "values", b"%010d" % n)
    await log.publish(RUN, "values", b"%010d" % 11)  # over the cap: down to 5 events
    await log.close(RUN)
    assert _ids(await _collect(log.subscribe(RUN, after=6))) == [7, 8, 9, 10, 11]
    with pytest.raises(EventsDroppedError) as caught:
        await anext(log.subscribe(RUN, after=-1))
    assert caught.value.first_available == 7
    assert caught.value.status_code == 410
    assert caught.value.detail == (
        'Events 1 to 6 of run "run-1" were dropped to keep its event log under its cap '
        "(agent_runtime.limits.max_event_bytes_per_run); resume after event 6 to skip them"
    )


async def test_byte_cap_keeps_the_newest_event_however_large(make: Make) -> None:
    log = (await make(max_bytes_per_run=50)).log
    await log.open(RUN)
    await log.publish(RUN, "values", b"x" * 1000)
    await log.publish(RUN, "values", b"y" * 1000)
    await log.close(RUN)
    assert [e.data[:1] for e in await _collect(log.subscribe(RUN, after=1))] == [b"y"]


async def test_byte_cap_signals_a_subscriber_that_fell_behind(make: Make) -> None:
    log = (await make(max_bytes_per_run=4 * WEIGHT)).log
    await log.open(RUN)
    events = log.subscribe(RUN, after=-1)
    await log.publish(RUN, "values", b"%010d" % 1)
    assert (await anext(events)).id == 1
    for n in range(2, 6):
        await log.publish(RUN, "values", b"%010d" % n)  # the fifth trims down to 2 events
    with pytest.raises(EventsDroppedError) as caught:
        await anext(events)
    assert caught.value.first_available == 4
    await log.close(RUN)
