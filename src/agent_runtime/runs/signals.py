"""Signals between the processes serving one deployment: a run was queued on a thread (so a
worker anywhere claims it now rather than at its next poll), cancel a run (reaching whichever
process executes it), a run ended (so waiters elsewhere stop waiting). In one process they are
plain calls; with Redis, pub/sub messages. Signals are hints: the database stays the truth,
and whoever misses one (Redis down) finds the same by polling it, later."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from agent_runtime.schema import CancelAction as CancelAction  # re-exported for runs/
from agent_runtime.streaming.broker import RedisBroker

logger = logging.getLogger("agent_runtime.runs")

CANCEL_ACTIONS: tuple[CancelAction, ...] = ("interrupt", "rollback")


@dataclass(frozen=True, slots=True, kw_only=True)
class SignalHandlers:
    """What the run manager of this process does when a signal arrives."""

    queued: Callable[[str], None]
    """A run was queued on this thread id."""
    cancel: Callable[[str, CancelAction], None]
    """Cancel this run id, if this process executes it."""
    ended: Callable[[str], None]
    """This run id ended."""


class Signals(Protocol):
    """How the run managers of a deployment tell each other about runs."""

    reaches_other_processes: bool
    """False for the in-process signals: other processes learn only from the database."""

    def bind(self, handlers: SignalHandlers) -> None:
        """Deliver the signals meant for this process to `handlers` (once, at start)."""

    async def run_queued(self, thread_id: str) -> None:
        """Wake a worker for the thread, here and in every process."""

    async def cancel(self, run_id: str, action: CancelAction) -> None:
        """Ask the process executing the run to cancel it (not this one: it cancels its own
        executions directly)."""

    async def run_ended(self, run_id: str) -> None:
        """Tell every process the run ended."""


class LocalSignals:
    """Signals within one process: each is a call to this process's handlers."""

    reaches_other_processes = False

    def __init__(self) -> None:
        self._handlers: SignalHandlers | None = None

    def bind(self, handlers: SignalHandlers) -> None:
        """Deliver signals to `handlers`."""
        self._handlers = handlers

    async def run_queued(self, thread_id: str) -> None:
        """Wake this process's worker for the thread."""
        if self._handlers is not None:
            self._handlers.queued(thread_id)

    async def cancel(self, run_id: str, action: CancelAction) -> None:
        """Nothing to do: no other process hears it."""

    async def run_ended(self, run_id: str) -> None:
        """Tell this process's waiters."""
        if self._handlers is not None:
            self._handlers.ended(run_id)


class RedisSignals:
    """Signals over Redis pub/sub, one channel (`<prefix>signals`) for the deployment."""

    reaches_other_processes = True

    def __init__(self, broker: RedisBroker) -> None:
        self._broker = broker
        self._channel = broker.key("signals")
        self._handlers: SignalHandlers | None = None

    def bind(self, handlers: SignalHandlers) -> None:
        """Deliver the deployment's signals to `handlers`, including this process's own."""
        self._handlers = handlers
        self._broker.on_message(self._channel, self._receive)

    async def run_queued(self, thread_id: str) -> None:
        """Wake this process's worker now and every other process's through Redis."""
        if self._handlers is not None:
            self._handlers.queued(thread_id)
        await self._send({"kind": "queued", "thread_id": thread_id})

    async def cancel(self, run_id: str, action: CancelAction) -> None:
        """Publish the cancel; the process executing the run acts on it."""
        await self._send({"kind": "cancel", "run_id": run_id, "action": action})

    async def run_ended(self, run_id: str) -> None:
        """Tell waiters here now and in every other process through Redis."""
        if self._handlers is not None:
            self._handlers.ended(run_id)
        await self._send({"kind": "ended", "run_id": run_id})

    async def _send(self, message: dict[str, str]) -> None:
        await self._broker.publish(self._channel, json.dumps(message).encode())

    def _receive(self, data: bytes) -> None:
        handlers = self._handlers
        try:
            message = json.loads(data)
            kind = message["kind"]
        except (ValueError, KeyError, TypeError):
            logger.warning("Ignored a malformed signal on %s: %r", self._channel, data[:200])
            return
        if handlers is None:
            return
        if kind == "queued" and isinstance(message.get("thread_id"), str):
            handlers.queued(message["thread_id"])
        elif kind == "cancel" and message.get("action") in CANCEL_ACTIONS:
            handlers.cancel(str(message.get("run_id")), message["action"])
        elif kind == "ended" and isinstance(message.get("run_id"), str):
            handlers.ended(message["run_id"])
