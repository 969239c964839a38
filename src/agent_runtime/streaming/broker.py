"""One process's connection to Redis: a client for commands, one pub/sub connection shared by
every listener (run-event wake-ups and signals), key and channel names under one prefix, and
reconnection after Redis restarts. It holds no state of its own that Redis must keep.

Only the event log and the signals use it; nothing here knows about runs."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from agent_runtime.config.database import redact_uri
from agent_runtime.errors import ConfigError, StorageError

if TYPE_CHECKING:
    from redis.asyncio import Redis
    from redis.asyncio.client import PubSub

logger = logging.getLogger("agent_runtime.redis")

DEFAULT_PREFIX = "agent-runtime:"
LISTEN_SECONDS = 0.1
"""How long the listener waits for a message before it applies new (un)subscriptions."""
RETRY_SECONDS = 0.5
"""Pause between attempts to reach Redis again after it went away."""
COMMAND_TIMEOUT_SECONDS = 2.0
"""A command Redis does not answer in this long fails (and the caller carries on without it)."""

Handler = Callable[[bytes], None]


@dataclass(slots=True)
class _Channel:
    refs: int = 0
    handlers: list[Handler] = field(default_factory=list)
    wakeup: asyncio.Event | None = None

    def wake(self) -> None:
        if self.wakeup is not None:
            self.wakeup.set()
            self.wakeup = None


class RedisBroker:
    """Commands and pub/sub on one Redis, for one process; made by `connect`."""

    def __init__(self, client: Redis, *, prefix: str, uri: str) -> None:
        """Use `connect`."""
        self.client = client
        self.prefix = prefix
        self.uri = redact_uri(uri)
        """The URI, safe to show."""
        self._channels: dict[str, _Channel] = {}
        self._subscribed: set[str] = set()
        self._changed = asyncio.Event()
        self._pubsub: PubSub = client.pubsub()
        self._listener = asyncio.create_task(self._listen(), name="redis:listener")
        self._down_since: float | None = None
        self._stopping = False

    @classmethod
    async def connect(cls, uri: str, *, prefix: str = DEFAULT_PREFIX) -> RedisBroker:
        """Connect and check that Redis answers.

        Raises:
            ConfigError: the `redis` package is not installed, or the URI is not a Redis one.
            StorageError: Redis does not answer.
        """
        try:
            from redis.asyncio import Redis
        except ImportError:
            raise ConfigError(
                "--redis / REDIS_URI needs the redis package; install agent-runtime[postgres] "
                "(or pip install 'redis>=5')"
            ) from None
        shown = redact_uri(uri)
        if urlsplit(uri).scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f'--redis / REDIS_URI: expected a "redis://host:port/db" URI, got "{shown}"'
            )
        client = Redis.from_url(
            uri,
            socket_connect_timeout=COMMAND_TIMEOUT_SECONDS,
            socket_timeout=COMMAND_TIMEOUT_SECONDS,
            health_check_interval=0,
        )
        try:
            await client.ping()
        except Exception as exc:
            await client.aclose()
            raise StorageError(
                f"Cannot reach Redis at {shown}: {_reason(exc)}; start it, or point --redis "
                "(or REDIS_URI) at a running one"
            ) from None
        return cls(client, prefix=prefix, uri=uri)

    def key(self, *parts: str) -> str:
        """A key (or channel) name under this deployment's prefix."""
        return self.prefix + ":".join(parts)

    @contextlib.contextmanager
    def watching(self, channel: str) -> Iterator[Callable[[], asyncio.Event]]:
        """Listen to `channel` while inside; yields a function returning the event that the
        next message (or a reconnection, after which messages may have been missed) sets.
        Take the event before reading what it guards, then wait on it."""
        entry = self._hold(channel)
        try:

            def next_wakeup() -> asyncio.Event:
                if entry.wakeup is None:
                    entry.wakeup = asyncio.Event()
                return entry.wakeup

            yield next_wakeup
        finally:
            self._release(channel)

    def on_message(self, channel: str, handler: Handler) -> None:
        """Call `handler` with each message's data on `channel`, for the broker's lifetime."""
        self._hold(channel).handlers.append(handler)

    async def publish(self, channel: str, data: bytes) -> bool:
        """Send a message; False (logged) when Redis cannot take it: messages are hints."""
        try:
            await self.client.publish(channel, data)
        except Exception as exc:
            self.report_failure("publishing a message", exc)
            return False
        return True

    def report_failure(self, doing: str, exc: BaseException) -> None:
        """Log a failed Redis command once per outage, not once per command."""
        now = asyncio.get_running_loop().time()
        if self._down_since is None or now - self._down_since > 30.0:
            logger.warning(
                "Redis at %s failed %s: %s; carrying on without it", self.uri, doing, _reason(exc)
            )
            self._down_since = now

    def report_success(self) -> None:
        """Note that Redis answers again (after `report_failure`)."""
        if self._down_since is not None:
            logger.warning("Redis at %s answers again", self.uri)
            self._down_since = None

    def wake_all(self) -> None:
        """Wake every listener, as a message on each channel would."""
        for entry in self._channels.values():
            entry.wake()

    async def aclose(self) -> None:
        """Stop listening and close the connections."""
        # Asked to stop rather than cancelled: redis-py may swallow a cancellation that lands
        # inside a read, which would leave the listener waiting forever.
        self._stopping = True
        self._changed.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._listener), 2 * COMMAND_TIMEOUT_SECONDS)
        except TimeoutError:
            self._listener.cancel()
        for entry in self._channels.values():
            entry.wake()
        with contextlib.suppress(Exception):
            await self._pubsub.aclose()
        await self.client.aclose()

    def _hold(self, channel: str) -> _Channel:
        entry = self._channels.get(channel)
        if entry is None:
            entry = self._channels[channel] = _Channel()
            self._changed.set()
        entry.refs += 1
        return entry

    def _release(self, channel: str) -> None:
        entry = self._channels.get(channel)
        if entry is None:
            return
        entry.refs -= 1
        if entry.refs <= 0:
            del self._channels[channel]
            self._changed.set()

    async def _sync_subscriptions(self) -> None:
        self._changed.clear()
        wanted = set(self._channels)
        gone = self._subscribed - wanted
        new = wanted - self._subscribed
        if gone:
            await self._pubsub.unsubscribe(*gone)
            self._subscribed -= gone
        if new:
            await self._pubsub.subscribe(*new)
            self._subscribed |= new

    async def _listen(self) -> None:
        # Subscriptions change only here, between reads: the pub/sub connection is never
        # written and read by two tasks at once.
        broken = False
        while not self._stopping:
            try:
                if self._changed.is_set():
                    await self._sync_subscriptions()
                if not self._subscribed:
                    await self._changed.wait()
                    continue
                if self._stopping:
                    return
                message = await self._pubsub.get_message(timeout=LISTEN_SECONDS)
                if broken:
                    broken = False
                    self.report_success()
                    # Messages sent while it was away are lost: every listener looks again.
                    for entry in self._channels.values():
                        entry.wake()
                if message is not None:
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                broken = True
                self._changed.set()  # what failed to (un)subscribe is tried again
                self.report_failure("listening for messages", exc)
                await asyncio.sleep(RETRY_SECONDS)

    def _dispatch(self, message: dict[str, Any]) -> None:
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        entry = self._channels.get(channel) if isinstance(channel, str) else None
        if entry is None:
            return
        # A confirmed subscription wakes its listeners too: what was sent before it is
        # found by looking again.
        entry.wake()
        data = message.get("data")
        if message.get("type") != "message" or not isinstance(data, bytes):
            return
        for handler in list(entry.handlers):
            try:
                handler(data)
            except Exception:
                logger.exception("Handling a message on %s failed", channel)


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return " ".join(text.split())
