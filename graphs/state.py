"""The state the example graphs share: the conversation, kept in a delta channel.

A plain `add_messages` channel stores the whole message list in every checkpoint, so a thread's
storage grows with the square of its length. A `DeltaChannel` (beta in LangGraph) stores only
each step's new messages, plus a full snapshot every `SNAPSHOT_FREQUENCY` updates, and rebuilds
the list on read by replaying the writes since the last snapshot through `add_messages_batched`.
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

import functools
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
    if not all(_is_whole_message(kind) for kind in {type(message) for message in state}):
        return None
    ids = {message.id for message in state}
    if len(ids) != len(state) or None in ids or "" in ids:
        return None
    added: list[AnyMessage] = []
    for message in _coerce(_flatten(writes)):
        if isinstance(message, RemoveMessage) or (message.id and message.id in ids):
            return None
        if not message.id:
            message = message.model_copy(update={"id": _derived_id(ids, message)})
        ids.add(message.id)  # type: ignore[arg-type]
        added.append(message)
    return [*state, *added]


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
