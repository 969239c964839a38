"""The run event log on Redis, for several processes serving one deployment: any process can
follow, replay or check any run's events, whichever process executes it.

Why a Redis Stream per run plus a pub/sub wake-up, rather than a list plus pub/sub carrying
the events: a stream is ordered by ids we choose (`<event id>-0`, which Redis refuses to let
go backwards), it answers "every entry after id N" in one command, so replay after
`Last-Event-ID` and catching up after a missed message are the same read, and it trims by id
(`XTRIM MINID`) for the byte cap. Pub/sub only says "look again": a lost message (Redis
restarting, a reconnect) costs a poll interval, never an event. Blocking `XREAD` was not used
because it would hold a connection per subscriber; here one pub/sub connection per process
serves them all.

Layout, under the broker's prefix: `run:<id>:events` (the stream; fields `k` kind, `n` event
name, `d` payload; kinds `e` event, `o` opened, `c` closed, the markers numbered
`<last event id>-<n>` between events), `run:<id>:dropped` (the id of the last event trimmed
off), and the channel `run:<id>`. An open stream expires `open_ttl_seconds` after its last
event, a closed one `retention_seconds` after its close, so Redis never grows without bound.

The process that executes a run numbers its events itself (ids come from the attempt, see
`first_event_id`, and from the stream's last id when it opens), so publishing is one round trip
and a Redis that is down or restarted never fails a run: the event is logged as lost and the
run goes on; subscribers reconnect and read what Redis holds again. Needs Redis 6.2 or later.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import cast

from agent_runtime.streaming.broker import RETRY_SECONDS, RedisBroker
from agent_runtime.streaming.eventlog import EVENT_OVERHEAD_BYTES, RunEvent, dropped_error

POLL_SECONDS = 1.0
"""How long a subscriber waits for a wake-up before it reads the stream again anyway."""
READ_BATCH = 256
DEFAULT_OPEN_TTL_SECONDS = 24 * 3600.0
MAX_WRITERS = 1024
"""Runs whose publishing state a process keeps; the least recently used is forgotten past it
and read back from Redis if it publishes again (a run created here and executed by another
process is opened here and never closed here)."""

EntryId = tuple[int, int]
Entries = list[tuple[bytes, dict[bytes, bytes]]]
"""Stream entries as redis-py returns them (no decoding): raw id, fields."""


@dataclass(slots=True)
class _Writer:
    """What the publishing process knows of a run's stream."""

    next_id: int
    last: EntryId = (0, 0)
    open: bool = False
    stale: bool = False
    """A write failed: re-read the stream's last id before the next one."""
    weights: deque[tuple[int, int]] = field(default_factory=deque)
    size: int = 0


class RedisEventLog:
    """`EventLog` on Redis: numbered events, fan-out across processes, replay, byte cap.

    Raises:
        ValueError: a negative retention or a cap below 1.
    """

    def __init__(
        self,
        broker: RedisBroker,
        *,
        retention_seconds: float = 300.0,
        max_bytes_per_run: int | None = None,
        open_ttl_seconds: float = DEFAULT_OPEN_TTL_SECONDS,
        poll_seconds: float = POLL_SECONDS,
    ) -> None:
        if retention_seconds < 0:
            raise ValueError(f"retention_seconds must be >= 0, got {retention_seconds}")
        if max_bytes_per_run is not None and max_bytes_per_run < 1:
            raise ValueError(f"max_bytes_per_run must be >= 1 or None, got {max_bytes_per_run}")
        self.retention_seconds = retention_seconds
        self.reaches_other_processes = True
        self._broker = broker
        self._redis = broker.client
        self._max_bytes = max_bytes_per_run
        self._open_ttl_ms = max(1, int(max(open_ttl_seconds, retention_seconds) * 1000))
        self._poll = poll_seconds
        self._writers: OrderedDict[str, _Writer] = OrderedDict()
        self._retry_at = 0.0
        self._closed = False

    async def open(self, run_id: str, *, first_id: int = 1) -> None:
        """Start (or reopen) the run's stream for this process to publish to, with ids from
        `first_id` and past any the stream holds."""
        writer = self._writers.get(run_id)
        if writer is None:
            writer = self._remember(run_id, _Writer(next_id=first_id, stale=True))
        writer.next_id = max(writer.next_id, first_id)
        if writer.open:
            return
        writer.open = True
        try:
            if writer.stale:
                await self._resync(run_id, writer, weights=True)
            await self._marker(run_id, writer, b"o", self._open_ttl_ms)
        except Exception as exc:
            writer.stale = True
            self._failed(f"opening the events of run {run_id}", exc)

    async def publish(self, run_id: str, event: str, data: bytes) -> RunEvent:
        """Append one event with the run's next id and wake its subscribers everywhere; if
        Redis cannot take it, the event is lost (and logged), the run is not failed.

        Raises:
            RuntimeError: this process has not opened the run's log (or closed it).
        """
        writer = self._writers.get(run_id)
        if writer is None:
            writer = await self._adopt(run_id)
        if writer is None or not writer.open:
            raise RuntimeError(f'Run "{run_id}" has no open event log; open it before publishing')
        self._writers.move_to_end(run_id)
        if writer.stale and not self._backing_off():
            with contextlib.suppress(Exception):
                await self._resync(run_id, writer, weights=False)
        record = RunEvent(id=writer.next_id, event=event, data=data)
        writer.next_id += 1
        if self._backing_off():
            writer.stale = True
            return record
        key = self._key(run_id)
        weight = len(data) + len(event) + EVENT_OVERHEAD_BYTES
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(key, {"k": b"e", "n": event, "d": data}, id=f"{record.id}-0")
        pipe.pexpire(key, self._open_ttl_ms)
        trimmed = self._trim(writer, record.id, weight)
        if trimmed is not None:
            kept, dropped_through = trimmed
            pipe.xtrim(key, minid=f"{kept}-0")
            pipe.set(self._dropped_key(run_id), dropped_through, px=self._open_ttl_ms)
        pipe.publish(self._channel(run_id), b"")
        try:
            await pipe.execute()
        except Exception as exc:
            writer.stale = True
            self._failed(f"publishing event {record.id} of run {run_id}", exc)
            return record
        writer.last = (record.id, 0)
        self._broker.report_success()
        return record

    async def close(self, run_id: str) -> None:
        """End the run's stream everywhere; replay stays possible for `retention_seconds`."""
        writer = self._writers.pop(run_id, None)
        if writer is None:
            writer = await self._adopt(run_id)
            self._writers.pop(run_id, None)
        if writer is None or not writer.open:
            return
        retention_ms = int(self.retention_seconds * 1000)
        try:
            if writer.stale:
                await self._resync(run_id, writer, weights=False)
            await self._marker(run_id, writer, b"c", retention_ms)
        except Exception as exc:
            # Subscribers find the run ended through its status; the stream expires.
            self._failed(f"closing the events of run {run_id}", exc)

    def subscribe(self, run_id: str, *, after: int | None = None) -> AsyncIterator[RunEvent]:
        """Follow the run's events from the point this call fixes; see `EventLog.subscribe`.
        `after=None` on a run another process publishes starts where the stream ends when
        Redis answers the read this call sends.

        Raises:
            ValueError: `after` is below -1.
        """
        if after is not None and after < -1:
            raise ValueError(f"after must be None, -1 or an event id, got {after}")
        start: EntryId | asyncio.Task[EntryId | None] | None
        if after is not None:
            start = (max(after, 0), 0)
        else:
            writer = self._writers.get(run_id)
            if writer is not None and not writer.stale:
                start = writer.last
            else:
                start = asyncio.ensure_future(self._tail(run_id))
                # Read or not, its failure is handled where it is awaited.
                start.add_done_callback(_retrieve)
        return self._follow(run_id, start)

    async def exists(self, run_id: str) -> bool:
        """Whether Redis holds the run's stream (open, or within its retention time); False
        when Redis cannot be asked."""
        try:
            return bool(await self._redis.exists(self._key(run_id)))
        except Exception as exc:
            self._failed(f"looking up the events of run {run_id}", exc)
            return False

    async def aclose(self) -> None:
        """Stop this process's subscribers. Streams stay as they are: runs in flight are
        resumed by another process, which goes on publishing to them."""
        self._closed = True
        self._writers.clear()
        self._broker.wake_all()

    # Reading

    async def _follow(
        self, run_id: str, start: EntryId | asyncio.Task[EntryId | None] | None
    ) -> AsyncIterator[RunEvent]:
        with self._broker.watching(self._channel(run_id)) as next_wakeup:
            if isinstance(start, asyncio.Task):
                try:
                    start = await start
                except Exception as exc:
                    self._failed(f"reading the events of run {run_id}", exc)
                    start = None
            cursor: EntryId = start or (0, 0)
            last_event = cursor[0]
            while not self._closed:
                wakeup = next_wakeup()
                try:
                    entries, tail, dropped_through = await self._read(run_id, cursor)
                except Exception as exc:
                    self._failed(f"reading the events of run {run_id}", exc)
                    await _wait(wakeup, max(self._poll, RETRY_SECONDS))
                    continue
                if dropped_through > last_event:
                    raise dropped_error(run_id, last_event, dropped_through)
                closed = False
                for entry_id, fields in entries:
                    cursor = entry_id
                    kind = fields.get(b"k")
                    closed = kind == b"c"
                    if kind == b"e":
                        last_event = entry_id[0]
                        yield RunEvent(
                            id=entry_id[0],
                            event=fields.get(b"n", b"").decode(),
                            data=fields.get(b"d", b""),
                        )
                if len(entries) == READ_BATCH:
                    continue
                if not entries:
                    if tail is None:
                        return  # never opened, or expired
                    tail_id, tail_kind = tail
                    if tail_id < cursor:
                        # An id past the stream's end means "caught up".
                        cursor = tail_id
                        last_event = max(last_event, tail_id[0])
                    closed = tail_kind == b"c" and tail_id <= cursor
                if closed:
                    return
                await _wait(wakeup, self._poll)

    async def _read(
        self, run_id: str, cursor: EntryId
    ) -> tuple[list[tuple[EntryId, dict[bytes, bytes]]], tuple[EntryId, bytes] | None, int]:
        key = self._key(run_id)
        pipe = self._redis.pipeline(transaction=False)
        pipe.xrange(key, min=f"({cursor[0]}-{cursor[1]}", max="+", count=READ_BATCH)
        pipe.xrevrange(key, max="+", min="-", count=1)
        pipe.get(self._dropped_key(run_id))
        found: Entries
        last: Entries
        found, last, dropped = await pipe.execute()
        entries = [(_entry_id(raw), fields) for raw, fields in found]
        tail = (_entry_id(last[0][0]), last[0][1].get(b"k", b"")) if last else None
        return entries, tail, int(dropped or 0)

    async def _tail(self, run_id: str) -> EntryId | None:
        last = await self._last(run_id)
        return _entry_id(last[0][0]) if last else None

    async def _last(self, run_id: str) -> Entries:
        found = await self._redis.xrevrange(self._key(run_id), max="+", min="-", count=1)
        return cast(Entries, found)

    # Writing

    def _remember(self, run_id: str, writer: _Writer) -> _Writer:
        self._writers[run_id] = writer
        while len(self._writers) > MAX_WRITERS:
            self._writers.popitem(last=False)
        return writer

    async def _adopt(self, run_id: str) -> _Writer | None:
        """The writer of a run this process opened but forgot: its stream is open in Redis
        (its last entry is not a close marker). None when it is closed or was never opened."""
        try:
            last = await self._last(run_id)
        except Exception as exc:
            self._failed(f"reading the events of run {run_id}", exc)
            return None
        if not last or last[0][1].get(b"k") == b"c":
            return None
        tail = _entry_id(last[0][0])
        writer = self._remember(run_id, _Writer(next_id=tail[0] + 1, last=tail, open=True))
        if self._max_bytes is not None:
            with contextlib.suppress(Exception):
                await self._resync(run_id, writer, weights=True)
        return writer

    async def _resync(self, run_id: str, writer: _Writer, *, weights: bool) -> None:
        """Continue after what the stream holds (written by an earlier attempt, perhaps in
        another process, or by this one before Redis failed)."""
        last = await self._last(run_id)
        writer.stale = False
        if not last:
            return  # a new (or lost) stream: ids go on from what this process knows
        tail = _entry_id(last[0][0])
        writer.last = max(writer.last, tail)
        writer.next_id = max(writer.next_id, tail[0] + 1)
        if weights and self._max_bytes is not None:
            writer.weights.clear()
            writer.size = 0
            everything = cast(Entries, await self._redis.xrange(self._key(run_id), "-", "+"))
            for raw, fields in everything:
                if fields.get(b"k") == b"e":
                    weight = len(fields.get(b"d", b"")) + len(fields.get(b"n", b""))
                    writer.weights.append((_entry_id(raw)[0], weight + EVENT_OVERHEAD_BYTES))
                    writer.size += writer.weights[-1][1]

    async def _marker(self, run_id: str, writer: _Writer, kind: bytes, ttl_ms: int) -> None:
        key = self._key(run_id)
        marker = (writer.last[0], writer.last[1] + 1)
        pipe = self._redis.pipeline(transaction=False)
        pipe.xadd(key, {"k": kind}, id=f"{marker[0]}-{marker[1]}")
        for name in (key, self._dropped_key(run_id)):
            if ttl_ms > 0:
                pipe.pexpire(name, ttl_ms)
            else:
                pipe.delete(name)
        pipe.publish(self._channel(run_id), b"")
        await pipe.execute()
        writer.last = marker
        self._broker.report_success()

    def _trim(self, writer: _Writer, event_id: int, weight: int) -> tuple[int, int] | None:
        """Account for a new event; when the run is over its cap, the first id to keep (down
        to half the cap, always the newest) and the last one dropped."""
        if self._max_bytes is None:
            return None
        writer.weights.append((event_id, weight))
        writer.size += weight
        if writer.size <= self._max_bytes:
            return None
        dropped_through = 0
        while len(writer.weights) > 1 and writer.size > self._max_bytes // 2:
            dropped_through, gone = writer.weights.popleft()
            writer.size -= gone
        return writer.weights[0][0], dropped_through

    def _backing_off(self) -> bool:
        return asyncio.get_running_loop().time() < self._retry_at

    def _failed(self, doing: str, exc: BaseException) -> None:
        # Redis is away: stop asking it for a moment rather than wait on every event.
        self._retry_at = asyncio.get_running_loop().time() + RETRY_SECONDS
        self._broker.report_failure(doing, exc)

    def _key(self, run_id: str) -> str:
        return self._broker.key("run", run_id, "events")

    def _dropped_key(self, run_id: str) -> str:
        return self._broker.key("run", run_id, "dropped")

    def _channel(self, run_id: str) -> str:
        return self._broker.key("run", run_id)


def _entry_id(raw: bytes | str) -> EntryId:
    text = raw.decode() if isinstance(raw, bytes) else raw
    ms, _, seq = text.partition("-")
    return int(ms), int(seq or 0)


def _retrieve(task: asyncio.Task[EntryId | None]) -> None:
    if not task.cancelled():
        task.exception()


async def _wait(event: asyncio.Event, seconds: float) -> None:
    # Not `wait_for`: on Python 3.11 it swallows a cancel that lands as the event is set.
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await event.wait()
