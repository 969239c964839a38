"""Per-run event logs: numbered stream events, fan-out to any number of listeners, replay after
an id. The in-process log lives here; it knows nothing of HTTP, SSE framing or graphs."""

from __future__ import annotations

import asyncio
import bisect
from collections import deque
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Protocol, Self

from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.errors import EventsDroppedError


@dataclass(frozen=True, slots=True, kw_only=True)
class RunEvent:
    """One stream event of a run, as published and as replayed."""

    id: int
    """Strictly increasing within a run, across its attempts (see `first_event_id`); the SSE
    `id:` that `Last-Event-ID` echoes back."""
    event: str
    """The SSE event name: `metadata`, a stream mode (suffixed `|<namespace>` for subgraphs),
    `error` or `end`."""
    data: bytes
    """The payload, already encoded as JSON."""


ATTEMPT_ID_SPAN = 1_000_000_000
"""Event ids each attempt of a run may use: attempt n numbers its events from
`(n - 1) * ATTEMPT_ID_SPAN + 1`, so ids go on increasing across attempts and crashes."""


def first_event_id(attempt: int) -> int:
    """The first event id of a run's `attempt` (1, 1_000_000_001, 2_000_000_001, ...).

    An attempt may run in another process than the one before it, whose log (in memory) is
    gone: deriving the base from the attempt, which the database counts, keeps a client that
    reconnects with an id of an earlier attempt from skipping the new attempt's events."""
    return (max(attempt, 1) - 1) * ATTEMPT_ID_SPAN + 1


class EventLog(Protocol):
    """Where a run's executor publishes stream events and any number of listeners read them."""

    retention_seconds: float
    """How long a run's events stay replayable after its log is closed."""
    reaches_other_processes: bool
    """Whether a run's events reach subscribers in every process (Redis), or only in the
    process that executes it (memory)."""

    async def open(self, run_id: str, *, first_id: int = 1) -> None:
        """Start the run's log; on a closed one, reopen it and continue its ids. Ids from here
        on are at least `first_id` (`first_event_id` of the attempt about to publish)."""

    async def publish(self, run_id: str, event: str, data: bytes) -> RunEvent:
        """Append one event with the run's next id and wake every subscriber.

        Raises:
            RuntimeError: the run's log is not open (never opened, closed or expired).
        """

    async def close(self, run_id: str) -> None:
        """End the run's stream: subscribers get what is left and stop; replay stays possible
        for the log's retention time."""

    def subscribe(self, run_id: str, *, after: int | None = None) -> AsyncIterator[RunEvent]:
        """Follow the run's events until its log is closed and every event has been yielded.

        The starting point is fixed by this call, not by the first iteration, so nothing
        published in between is missed.

        Args:
            after: None for events published from now on; -1 to replay every event first; an
                event id to replay the events after it first (an id past the last one means
                "caught up").

        A run that was never opened or has expired yields nothing; callers that must answer 404
        check `exists` first. The iterator raises `EventsDroppedError` if it needs events the
        log no longer holds.
        """

    async def exists(self, run_id: str) -> bool:
        """Whether the run's log is open or still within its retention time."""

    async def aclose(self) -> None:
        """Close every log, so subscribers drain and stop, and release what the log holds."""


EVENT_OVERHEAD_BYTES = 100
"""About what a stored event takes beside its payload and name (its object and references)."""


def _weight(event: RunEvent) -> int:
    return len(event.data) + len(event.event) + EVENT_OVERHEAD_BYTES


class _RunLog:
    """One run's events; subscribers index into `events` with their own cursor."""

    __slots__ = (
        "_wakeup",
        "closed",
        "dropped",
        "dropped_through",
        "events",
        "expires_at",
        "next_id",
        "size",
    )

    def __init__(self, next_id: int) -> None:
        self.events: list[RunEvent] = []
        self.size = 0  # what `events` weigh, as `_weight` counts
        # Ids may jump (a new attempt starts at a new base), so cursors count positions: the
        # events ever published, `dropped` of them trimmed off the front.
        self.dropped = 0
        self.dropped_through = 0  # the id of the last event trimmed off, 0 before any
        self.next_id = next_id
        self.closed = False
        self.expires_at: float | None = None
        # One event shared by every waiting subscriber, created only when someone waits, so a
        # publish with nobody waiting costs no allocation.
        self._wakeup: asyncio.Event | None = None

    def notify(self) -> None:
        if self._wakeup is not None:
            self._wakeup.set()
            self._wakeup = None

    async def wait(self) -> None:
        if self._wakeup is None:
            self._wakeup = asyncio.Event()
        # Event.wait parks a future per waiter, so cancelling one subscriber leaves the rest be.
        await self._wakeup.wait()


class _Subscription:
    """A cursor (a position, and the id last yielded) over one run's log."""

    __slots__ = ("_last", "_log", "_position", "_run_id")

    cancel_safe = True
    """A wait for the next event may be cancelled (a heartbeat's timeout) and the iteration
    go on: the cursor moves only when an event is returned."""

    def __init__(self, log: _RunLog | None, *, position: int, last: int, run_id: str) -> None:
        self._log = log
        self._position = position
        self._last = last
        self._run_id = run_id

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RunEvent:
        log = self._log
        while log is not None:
            index = self._position - log.dropped
            if index < 0:
                raise dropped_error(self._run_id, self._last, log.dropped_through)
            if index < len(log.events):
                self._position += 1
                event = log.events[index]
                self._last = event.id
                return event
            if log.closed:
                break
            await log.wait()
        # Let an expired log be freed even if the caller keeps the finished iterator around.
        self._log = None
        raise StopAsyncIteration


def dropped_error(run_id: str, last: int, dropped_through: int) -> EventsDroppedError:
    """What a subscriber that needs trimmed events gets: after `last`, up to `dropped_through`
    were dropped."""
    return EventsDroppedError(
        f'Events {last + 1} to {dropped_through} of run "{run_id}" were '
        "dropped to keep its event log under its cap "
        "(agent_runtime.limits.max_event_bytes_per_run); resume after event "
        f"{dropped_through} to skip them",
        first_available=dropped_through + 1,
    )


class MemoryEventLog:
    """The event log of one process: an append-only list per run, read through cursors.

    Memory: a run holds every payload it published from `open` until `retention_seconds` after
    `close`. With `max_events_per_run`, a run keeps at least its last N and at most 2N-1 events;
    with `max_bytes_per_run`, its events weigh at most that many bytes (payload and name plus
    `EVENT_OVERHEAD_BYTES` each), and a trim leaves at most half of it (always the newest
    event). Ids go on counting and a subscriber that needs a dropped event gets
    `EventsDroppedError`.
    Expired logs are dropped lazily, on `open`, `close`, `subscribe` and `exists`; no task runs
    in the background.

    Raises:
        ValueError: a negative retention or a cap below 1.
    """

    def __init__(
        self,
        *,
        retention_seconds: float = 300.0,
        max_events_per_run: int | None = None,
        max_bytes_per_run: int | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        if retention_seconds < 0:
            raise ValueError(f"retention_seconds must be >= 0, got {retention_seconds}")
        if max_events_per_run is not None and max_events_per_run < 1:
            raise ValueError(f"max_events_per_run must be >= 1 or None, got {max_events_per_run}")
        if max_bytes_per_run is not None and max_bytes_per_run < 1:
            raise ValueError(f"max_bytes_per_run must be >= 1 or None, got {max_bytes_per_run}")
        self.retention_seconds = retention_seconds
        self.reaches_other_processes = False
        self._cap = max_events_per_run
        self._max_bytes = max_bytes_per_run
        self._clock = clock
        self._logs: dict[str, _RunLog] = {}
        # Closed logs in closing order; with a monotonic clock and one retention time their
        # deadlines only grow, so pruning pops from the left and stops at the first live one.
        self._expiries: deque[tuple[float, str, _RunLog]] = deque()

    async def open(self, run_id: str, *, first_id: int = 1) -> None:
        """Start the run's log; on a closed one, reopen it and continue its ids (from
        `first_id` at least)."""
        self._prune()
        log = self._logs.get(run_id)
        if log is None:
            self._logs[run_id] = _RunLog(first_id)
            return
        log.next_id = max(log.next_id, first_id)
        if log.closed:
            # A retried attempt of the same run: clients reconnecting with the ids of the first
            # attempt resume where they were.
            log.closed = False
            log.expires_at = None

    async def publish(self, run_id: str, event: str, data: bytes) -> RunEvent:
        """Append one event with the run's next id and wake every subscriber.

        Raises:
            RuntimeError: the run's log is not open (never opened, closed or expired).
        """
        # Called once per token: no pruning and no awaiting here.
        log = self._logs.get(run_id)
        if log is None or log.closed:
            raise RuntimeError(f'Run "{run_id}" has no open event log; open it before publishing')
        record = RunEvent(id=log.next_id, event=event, data=data)
        log.next_id += 1
        events = log.events
        events.append(record)
        log.size += _weight(record)
        cap = self._cap
        if cap is not None and len(events) >= 2 * cap:
            # Trimming a block of `cap` at a time keeps publish O(1) amortised; a strict window
            # would shift the whole list on every call.
            log.size -= sum(_weight(event) for event in events[:-cap])
            _trim(log, len(events) - cap)
        max_bytes = self._max_bytes
        if max_bytes is not None and log.size > max_bytes:
            # Down to half the cap, for the same reason: the next trim is far away.
            drop, size = 0, log.size
            while drop < len(events) - 1 and size > max_bytes // 2:
                size -= _weight(events[drop])
                drop += 1
            _trim(log, drop)
            log.size = size
        log.notify()
        return record

    async def close(self, run_id: str) -> None:
        """End the run's stream; replay stays possible for `retention_seconds`."""
        log = self._logs.get(run_id)
        if log is not None and not log.closed:
            log.closed = True
            log.expires_at = self._clock.monotonic() + self.retention_seconds
            self._expiries.append((log.expires_at, run_id, log))
            log.notify()
        self._prune()

    def subscribe(self, run_id: str, *, after: int | None = None) -> AsyncIterator[RunEvent]:
        """Follow the run's events from the point this call fixes; see `EventLog.subscribe`.

        Raises:
            ValueError: `after` is below -1.
        """
        if after is not None and after < -1:
            raise ValueError(f"after must be None, -1 or an event id, got {after}")
        self._prune()
        log = self._logs.get(run_id)
        if log is None:
            return _Subscription(None, position=0, last=0, run_id=run_id)
        end = log.dropped + len(log.events)
        if after is None:
            return _Subscription(log, position=end, last=log.next_id - 1, run_id=run_id)
        if after < log.dropped_through:
            # Wants trimmed events: the first read says so.
            return _Subscription(log, position=0, last=max(after, 0), run_id=run_id)
        index = bisect.bisect_right(log.events, after, key=_event_id)
        return _Subscription(log, position=log.dropped + index, last=max(after, 0), run_id=run_id)

    async def exists(self, run_id: str) -> bool:
        """Whether the run's log is open or still within its retention time."""
        self._prune()
        return run_id in self._logs

    async def aclose(self) -> None:
        """Close every log, so subscribers drain and stop, and forget them all."""
        for log in self._logs.values():
            if not log.closed:
                log.closed = True
                log.notify()
        self._logs.clear()
        self._expiries.clear()

    def _prune(self) -> None:
        now = self._clock.monotonic()
        expiries = self._expiries
        while expiries and expiries[0][0] <= now:
            _, run_id, log = expiries.popleft()
            # A reopened (or reopened and closed again) log has a newer deadline than this entry.
            expires_at = log.expires_at
            if expires_at is not None and expires_at <= now and self._logs.get(run_id) is log:
                del self._logs[run_id]


def _event_id(event: RunEvent) -> int:
    return event.id


def _trim(log: _RunLog, count: int) -> None:
    if count > 0:
        log.dropped_through = log.events[count - 1].id
        del log.events[:count]
        log.dropped += count
