"""The one clock the runtime reads and sleeps on: wall time (timezone-aware UTC) for what it
stores and when delayed runs fall due, monotonic time for durations and in-memory expiry, and
`sleep` for the waits that end at a time. `runtime.py` hands one clock to every part; nothing
else calls `datetime.now` or `time.monotonic`, so a `FakeClock` drives all of them at once.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Coroutine
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol


class Clock(Protocol):
    """What the runtime asks of a clock."""

    def now(self) -> datetime:
        """Wall time, in UTC, timezone-aware."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back, for durations and expiry."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Return once `seconds` have passed on this clock's monotonic time."""
        ...


class SystemClock:
    """The machine's clocks and asyncio's timer."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


SYSTEM_CLOCK: Clock = SystemClock()
"""The default everywhere a clock is injectable; it holds no state."""

FAKE_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


class FakeClock:
    """A clock that moves only when told, for tests: `advance` moves wall and monotonic time
    together and ends the sleeps it passes; `set` jumps wall time alone (either way), as a
    system clock may. With `tick`, every `now()` first moves wall time on by it, so records
    made one after another get distinct, ordered stamps without the test advancing by hand.

    `now` and `monotonic` may be read from any thread (sync tools report from worker
    threads); `advance` wakes each sleeper on its own event loop.
    """

    def __init__(self, start: datetime = FAKE_EPOCH, *, tick: timedelta = timedelta(0)) -> None:
        """Start at `start` (wall) and 0.0 (monotonic).

        Raises:
            ValueError: `start` is naive or `tick` is negative.
        """
        if start.tzinfo is None:
            raise ValueError("FakeClock: start must be timezone-aware")
        if tick < timedelta(0):
            raise ValueError(f"FakeClock: tick must be >= 0, got {tick}")
        self._wall = start.astimezone(UTC)
        self._monotonic = 0.0
        self._tick = tick
        self._lock = threading.Lock()
        self._sleepers: list[tuple[float, asyncio.AbstractEventLoop, asyncio.Future[None]]] = []

    @property
    def wall(self) -> datetime:
        """Wall time as it stands, without a tick."""
        return self._wall

    def now(self) -> datetime:
        with self._lock:
            self._wall += self._tick
            return self._wall

    def monotonic(self) -> float:
        return self._monotonic

    def sleep(self, seconds: float) -> Coroutine[Any, Any, None]:
        # Not `async def`: the end is counted from this call, not from when the coroutine
        # first runs. A sleep handed to a task (`sleep_or_wake`) starts a loop turn later,
        # and an `advance` in between would otherwise push its end past the advance.
        return self._sleep_until(self._monotonic + seconds)

    async def _sleep_until(self, end: float) -> None:
        if end <= self._monotonic:
            await asyncio.sleep(0)
            return
        loop = asyncio.get_running_loop()
        woken: asyncio.Future[None] = loop.create_future()
        sleeper = (end, loop, woken)
        with self._lock:
            self._sleepers.append(sleeper)
        try:
            await woken
        finally:
            with self._lock:
                if sleeper in self._sleepers:
                    self._sleepers.remove(sleeper)

    def advance(self, by: timedelta | float) -> None:
        """Move wall and monotonic time on by `by` (seconds, or a timedelta) and end every
        sleep that is then over.

        Raises:
            ValueError: `by` is negative; monotonic time never goes back (use `set`).
        """
        seconds = by.total_seconds() if isinstance(by, timedelta) else float(by)
        if seconds < 0:
            raise ValueError(f"FakeClock.advance: cannot go back ({seconds} s); use set()")
        with self._lock:
            self._wall += timedelta(seconds=seconds)
            self._monotonic += seconds
            due = [s for s in self._sleepers if s[0] <= self._monotonic]
            for sleeper in due:
                self._sleepers.remove(sleeper)
        for _, loop, woken in due:
            loop.call_soon_threadsafe(_wake, woken)

    def set(self, moment: datetime) -> None:
        """Jump wall time to `moment`; monotonic time and sleeps are left as they are.

        Raises:
            ValueError: `moment` is naive.
        """
        if moment.tzinfo is None:
            raise ValueError("FakeClock.set: the moment must be timezone-aware")
        with self._lock:
            self._wall = moment.astimezone(UTC)


async def sleep_or_wake(clock: Clock, wake: asyncio.Event, seconds: float) -> None:
    """Sleep `seconds` on `clock`, or less if `wake` is set meanwhile."""
    sleeper = asyncio.ensure_future(clock.sleep(seconds))
    woken = asyncio.ensure_future(wake.wait())
    try:
        await asyncio.wait((sleeper, woken), return_when=asyncio.FIRST_COMPLETED)
    finally:
        sleeper.cancel()
        woken.cancel()


def _wake(woken: asyncio.Future[None]) -> None:
    if not woken.done():
        woken.set_result(None)
