"""Run event streaming: SSE framing, the per-run event log and the cap on open streams."""

from __future__ import annotations

from agent_runtime.streaming.eventlog import EventLog, MemoryEventLog, RunEvent
from agent_runtime.streaming.slots import StreamSlot, StreamSlots
from agent_runtime.streaming.sse import HEARTBEAT, encode_event, parse_last_event_id

__all__ = [
    "HEARTBEAT",
    "EventLog",
    "MemoryEventLog",
    "RunEvent",
    "StreamSlot",
    "StreamSlots",
    "encode_event",
    "parse_last_event_id",
]
