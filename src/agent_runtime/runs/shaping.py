"""Turns what `graph.astream` yields into the events of the LangGraph Server API: event names
(`mode` or `mode|namespace`) and payloads for `encoding.dumps`. Pure: no IO, no storage.

Payloads are the graph's own objects, encoded once by the caller; nothing is copied here."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, Literal

from langchain_core.messages import BaseMessage, BaseMessageChunk

ApiStreamMode = Literal[
    "values", "updates", "messages", "messages-tuple", "events", "debug", "custom", "tasks",
    "checkpoints",
]  # fmt: skip
API_STREAM_MODES: tuple[str, ...] = ApiStreamMode.__args__  # type: ignore[attr-defined]

# LangGraph's own modes that each API mode needs; `events` comes from astream_events instead.
_GRAPH_MODES: dict[str, tuple[str, ...]] = {
    "values": ("values",),
    "updates": ("updates",),
    "messages-tuple": ("messages",),
    # The legacy "messages" mode completes a streamed message when the node's update lands.
    "messages": ("messages", "updates"),
    "debug": ("debug",),
    "custom": ("custom",),
    "tasks": ("tasks",),
    "checkpoints": ("checkpoints",),
    "events": (),
}

# The event names (before any `|namespace`) each API mode streams as. A requested `messages`
# also takes the `messages` events of a run streaming `messages-tuple`: that is their name.
EVENT_NAMES: dict[str, tuple[str, ...]] = {
    "values": ("values",),
    "updates": ("updates",),
    "messages-tuple": ("messages",),
    "messages": ("messages", "messages/metadata", "messages/partial", "messages/complete"),
    "debug": ("debug",),
    "custom": ("custom",),
    "tasks": ("tasks",),
    "checkpoints": ("checkpoints",),
    "events": ("events",),
}

Event = tuple[str, Any]


def graph_stream_modes(api_modes: Sequence[str]) -> list[str]:
    """The LangGraph stream modes to ask `astream` for, in a stable order. `values` and
    `updates` are always among them: the run's final state and interrupts are read off them."""
    wanted: list[str] = ["values", "updates"]
    for mode in api_modes:
        for graph_mode in _GRAPH_MODES[mode]:
            if graph_mode not in wanted:
                wanted.append(graph_mode)
    return wanted


class EventShaper:
    """Shapes one run's stream; stateful only for the legacy `messages` mode's accumulation."""

    def __init__(self, api_modes: Sequence[str], *, subgraphs: bool) -> None:
        self.modes = set(api_modes)
        self.subgraphs = subgraphs
        self._partial: dict[str, BaseMessageChunk] = {}
        self._seen: set[str] = set()
        self.sent_interrupts = False
        """Whether the last top-level `values` event carried `__interrupt__` (LangGraph sends
        one itself when a node calls `interrupt()`)."""
        self.interrupted = False
        """Whether the graph stopped for an interrupt anywhere (`interrupt()` or a static one)."""
        self.last_values: Any = None
        """The latest top-level `values` chunk: the graph's state after its last step."""

    def shape(self, namespace: Sequence[str], mode: str, chunk: Any) -> list[Event]:
        """Events for one `(namespace, mode, chunk)` item of `astream(..., subgraphs=True)`."""
        if namespace and not self.subgraphs:
            return []
        suffix = "|" + "|".join(namespace) if namespace else ""
        if mode == "messages":
            return self._messages(chunk, suffix)
        events: list[Event] = []
        if mode == "updates" and "messages" in self.modes:
            events.extend(self._complete_from_update(chunk, suffix))
        if mode in self.modes:
            events.append((mode + suffix, chunk))
        if isinstance(chunk, dict) and "__interrupt__" in chunk and mode in ("values", "updates"):
            self.interrupted = True
        if mode == "values" and not namespace:
            self.sent_interrupts = isinstance(chunk, dict) and bool(chunk.get("__interrupt__"))
            self.last_values = chunk
        return events

    def finish(self) -> list[Event]:
        """Completes any message still partial when the run ends."""
        events: list[Event] = [("messages/complete", [m]) for m in self._partial.values()]
        self._partial.clear()
        return events

    def _messages(self, item: tuple[BaseMessage, dict[str, Any]], suffix: str) -> list[Event]:
        message, metadata = item
        events: list[Event] = []
        if "messages-tuple" in self.modes:
            events.append(("messages" + suffix, [message, metadata]))
        if "messages" not in self.modes:
            return events
        message_id = message.id or ""
        if message_id not in self._seen:
            self._seen.add(message_id)
            events.append(("messages/metadata" + suffix, {message_id: {"metadata": metadata}}))
        if isinstance(message, BaseMessageChunk):
            merged = self._partial.get(message_id)
            merged = message if merged is None else merged + message
            self._partial[message_id] = merged
            events.append(("messages/partial" + suffix, [merged]))
        else:
            self._partial.pop(message_id, None)
            events.append(("messages/complete" + suffix, [message]))
        return events

    def _complete_from_update(self, update: Any, suffix: str) -> list[Event]:
        events: list[Event] = []
        for message in _messages_in(update):
            if message.id is not None and self._partial.pop(message.id, None) is not None:
                events.append(("messages/complete" + suffix, [message]))
        return events


def _messages_in(update: Any) -> Iterable[BaseMessage]:
    if not isinstance(update, dict):
        return
    for node_output in update.values():
        values = node_output.values() if isinstance(node_output, dict) else ()
        for value in values:
            items = value if isinstance(value, list) else [value]
            for item in items:
                if isinstance(item, BaseMessage):
                    yield item
