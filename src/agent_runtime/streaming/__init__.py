"""Run event streaming: SSE framing and the per-run event log."""

from __future__ import annotations

from agent_runtime.streaming.eventlog import EventLog, EventsDroppedError, MemoryEventLog, RunEvent
from agent_runtime.streaming.sse import HEARTBEAT, encode_event, parse_last_event_id

__all__ = [
    "HEARTBEAT",
    "EventLog",
    "EventsDroppedError",
    "MemoryEventLog",
    "RunEvent",
    "encode_event",
    "parse_last_event_id",
]
