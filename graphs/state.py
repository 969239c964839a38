"""The state the example graphs share: the conversation, kept in a delta channel.

A plain `add_messages` channel stores the whole message list in every checkpoint, so a thread's
storage grows with the square of its length. A `DeltaChannel` (beta in LangGraph) stores only
each step's new messages, plus a full snapshot every `SNAPSHOT_FREQUENCY` updates, and rebuilds
the list on read by replaying the writes since the last snapshot through `add_messages_batched`.
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

import functools
import threading
import uuid
from collections.abc import Collection, Iterable, Sequence
from typing import Annotated, Any

from langchain_core.messages import (
    AnyMessage,
    BaseMessage,
    BaseMessageChunk,
    RemoveMessage,
    convert_to_messages,
    message_chunk_to_message,
)
from langgraph.channels import DeltaChannel
from langgraph.graph.message import REMOVE_ALL_MESSAGES
from typing_extensions import TypedDict

SNAPSHOT_FREQUENCY = 20
"""Every this many updates of the message list, a checkpoint stores the whole list. It bounds the
writes a read replays: 20 rather than LangGraph's default 100, because a history page replays each
of its checkpoints separately (benchmarks/README.md, "Delta channels", has the trade-off)."""

# Ids for messages that arrive without one (a bare string or a `(role, text)` pair, which
# LangGraph does not stamp for custom reducers) are derived, not random: the list is rebuilt by
# replaying the stored writes on every read, and a random id would change from read to read.
_ID_NAMESPACE = uuid.UUID("5d1c8f0e-4a4b-4f6e-9a51-0c7b3f1e2d60")


def add_messages_batched(state: Sequence[Any], writes: Sequence[Any]) -> list[AnyMessage]:
    """Apply a batch of message writes to the conversation, as `add_messages` applies one.

    Each write is a message-like (message, dict, string, `(role, text)` pair) or a list of
    them. A message whose id is already in the list replaces it in place; `RemoveMessage(id)`
    deletes one; `RemoveMessage(REMOVE_ALL_MESSAGES)` clears the list. Chunks become messages.

    The batch is folded one message at a time over a dict keyed by id, so the reducer is
    batching-invariant as `DeltaChannel` requires:
    `add_messages_batched(add_messages_batched(s, xs), ys) == add_messages_batched(s, xs + ys)`.

    Raises:
        ValueError: a `RemoveMessage` names an id that is not in the list.
    """
    appended = _append_only(state, writes)
    return _fold(state, writes) if appended is None else appended


def _fold(state: Sequence[Any], writes: Sequence[Any]) -> list[AnyMessage]:
    by_id: dict[str, AnyMessage] = {}
    for message in _coerce(state):
        _put(by_id, message)
    for message in _coerce(_flatten(writes)):
        if isinstance(message, RemoveMessage):
            if message.id == REMOVE_ALL_MESSAGES:
                by_id.clear()
            elif message.id in by_id:
                del by_id[message.id]
            else:
                raise ValueError(
                    f"Attempting to delete a message with an ID that doesn't exist ('{message.id}')"
                )
        else:
            _put(by_id, message)
    return list(by_id.values())


class ConversationState(TypedDict):
    """The example graphs' state: the conversation so far."""

    messages: Annotated[
        list[AnyMessage],
        DeltaChannel(add_messages_batched, snapshot_frequency=SNAPSHOT_FREQUENCY),
    ]


def _append_only(state: Sequence[Any], writes: Sequence[Any]) -> list[AnyMessage] | None:
    # The common case, a turn adding new messages to a long list, without rebuilding the
    # list's index: the same result as the general fold, or None where that may differ.
    ids = _ids_of(state)
    if ids is None:
        return None
    added: list[AnyMessage] = []
    for message in _coerce(_flatten(writes)):
        if isinstance(message, RemoveMessage) or (message.id and message.id in ids):
            return None
        if not message.id:
            message = message.model_copy(update={"id": _derived_id(ids, message)})
        ids.add(message.id)  # type: ignore[arg-type]
        added.append(message)
    result = [*state, *added]
    _LINEAGE.remember(result, ids)
    return result


def _ids_of(state: Sequence[Any]) -> set[str] | None:
    # The ids of a list of whole messages with distinct ids, a set the caller may change; None
    # for any other list.
    known = _LINEAGE.take(state)
    if known is not None:
        return known
    kinds: set[type] = {type(message) for message in state}
    if not all(_is_whole_message(kind) for kind in kinds):
        return None
    ids = {message.id for message in state}
    if len(ids) != len(state) or None in ids or "" in ids:
        return None
    _LINEAGE.remember(state, ids)  # the next run restoring the same list finds it
    return set(ids)


class _Lineage:
    """The id sets of the message lists seen last, so appending to one of them, or to a copy
    of one (a delta channel restores each run's list from its snapshot as a new list of the
    same messages), does not walk the whole conversation: two passes over 600 messages
    scattered in memory cost a few hundred microseconds, several times a turn.

    A list is found by its length and its first and last messages. Its entry holds a copy of
    it, which it must equal: a pointer comparison when both hold the same messages, and
    unequal if a node changed the list in place rather than returning an update. Holding the
    messages also keeps their ids from being reused while the entry lives. Each caller gets its
    own copy of the set. Safe between threads."""

    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: dict[tuple[int, int, int], tuple[Sequence[Any], set[str]]] = {}
        self._lock = threading.Lock()

    def take(self, state: Sequence[Any]) -> set[str] | None:
        if not state:
            return None
        key = (len(state), id(state[0]), id(state[-1]))
        with self._lock:
            entry = self._entries.get(key)
        if entry is None or entry[0] != state:
            return None
        return set(entry[1])

    def remember(self, messages: Sequence[Any], ids: set[str]) -> None:
        if not messages:
            return
        key = (len(messages), id(messages[0]), id(messages[-1]))
        with self._lock:
            self._entries[key] = (list(messages), ids)
            if len(self._entries) > self._size:
                del self._entries[next(iter(self._entries))]


_LINEAGE = _Lineage(64)
"""A few lists per run in flight; each entry keeps one conversation alive."""


@functools.cache
def _is_whole_message(kind: type) -> bool:
    # By type, once per class: isinstance on pydantic models costs a microsecond, and this
    # runs over the whole conversation on every update.
    return issubclass(kind, BaseMessage) and not issubclass(kind, BaseMessageChunk)


def _flatten(writes: Sequence[Any]) -> Iterable[Any]:
    for write in writes:
        if isinstance(write, list):
            yield from write
        else:
            yield write


def _coerce(items: Iterable[Any]) -> Iterable[AnyMessage]:
    for item in items:
        if isinstance(item, BaseMessageChunk):
            yield message_chunk_to_message(item)  # type: ignore[misc]
        elif isinstance(item, BaseMessage):
            yield item  # type: ignore[misc]
        else:
            yield from convert_to_messages([item])  # type: ignore[misc]


def _put(by_id: dict[str, AnyMessage], message: AnyMessage) -> None:
    if not message.id:
        message = message.model_copy(update={"id": _derived_id(by_id, message)})
    # Assigning to an existing key keeps its position: a replaced message stays in place.
    by_id[message.id] = message  # type: ignore[index]


def _derived_id(by_id: Collection[str], message: AnyMessage) -> str:
    # Depends only on the list so far and the message, so every replay derives the same id.
    seed = f"{len(by_id)}:{message.type}:{message.content!r}"
    derived = str(uuid.uuid5(_ID_NAMESPACE, seed))
    while derived in by_id:
        derived = str(uuid.uuid5(_ID_NAMESPACE, derived))
    return derived
