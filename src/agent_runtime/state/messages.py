"""The messages view: a thread's `messages` channel listed, read, added to, edited and deleted
one message at a time. Reads come from the graph's latest state, never the threads table; writes
go through `write.write_state` as a new checkpoint, so history keeps every old version."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, RemoveMessage
from langgraph.channels import LastValue
from langgraph.errors import InvalidUpdateError

from agent_runtime.errors import (
    AgentRuntimeError,
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.executor import AnyGraph
from agent_runtime.schema import Json, Thread
from agent_runtime.state.checkpoint import latest_config, thread_graph
from agent_runtime.state.message_input import new_messages
from agent_runtime.state.write import Change, Written, write_state
from agent_runtime.storage.base import Storage

CHANNEL = "messages"
_DOING, _ACTION = "editing its messages", "have its messages edited"


async def list_messages(storage: Storage, registry: GraphRegistry, thread_id: str) -> list[Any]:
    """The messages of the thread's latest state, oldest first; none when its graph is unknown.

    Raises:
        NotFoundError: the thread, or its graph's messages channel, does not exist.
    """
    thread = await storage.get_thread(thread_id, values=False)
    _graph, messages = await _conversation(storage, registry, thread, for_reads=True)
    return messages


async def get_message(
    storage: Storage, registry: GraphRegistry, thread_id: str, message_id: str
) -> Any:
    """One message of the thread's latest state, by id.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
    """
    thread = await storage.get_thread(thread_id, values=False)
    _graph, messages = await _conversation(storage, registry, thread, for_reads=True)
    return messages[_index(thread, messages, message_id)]


async def add_messages(
    storage: Storage,
    registry: GraphRegistry,
    thread_id: str,
    given: Sequence[Mapping[str, Any]],
    *,
    assistant_id: str | None,
    resolve_assistant: Callable[[str], str],
    max_messages: int,
) -> Written[list[Any]]:
    """Add messages to the end of the thread's conversation without running it, as a new
    checkpoint; answers the added messages as stored, with their ids.

    A thread that has never run takes its graph from `assistant_id` (resolved to an assistant
    id by `resolve_assistant`) and is stamped with it, as a run stamps it.

    Raises:
        InvalidRequestError: a message is malformed, repeats an id, or the reducer refused it;
            or `assistant_id` names no graph this server serves.
        NotFoundError: the thread, or the assistant named, does not exist; or the graph has
            no `messages` channel.
        ConflictError: the thread is busy, locked or archived; it has never run and names no
            `assistant_id`; the graph is not the thread's; a message id is taken.
        PayloadTooLargeError: the thread would hold more than `max_messages` messages.
    """

    async def plan(thread: Thread) -> Change[tuple[AnyGraph, str, list[BaseMessage]]]:
        graph_ids = await _graph_ids(storage, registry, thread, assistant_id, resolve_assistant)
        if graph_ids is not None:
            # Stamped as a run stamps it: the thread's graph from now on.
            thread = {**thread, "metadata": {**thread["metadata"], **graph_ids}}
        graph, messages = await _conversation(storage, registry, thread, for_reads=False)
        if graph is None:
            raise ConflictError(
                f'Thread "{thread["thread_id"]}" has never run and names no graph, so it has no '
                'messages channel yet; send "assistant_id" with the messages, run it first, or '
                'create it with metadata {"graph_id": ...}',
                code="thread_has_no_graph",
            )
        added = new_messages(given, {_id_of(m) for m in messages}, thread["thread_id"])
        if len(messages) + len(added) > max_messages:
            raise PayloadTooLargeError(
                f"The thread would hold {len(messages) + len(added)} messages, over the limit "
                f"of {max_messages} (agent_runtime.limits.max_messages_per_thread in "
                "langgraph.json)",
                code="too_many_messages",
            )
        result = (graph, thread["thread_id"], added)
        return _change(thread, graph, added, [*messages, *added], result=result, stamp=graph_ids)

    written = await write_state(
        storage, thread_id, plan, doing="adding messages", action="have messages added"
    )
    graph, written_id, added = written.result
    stored = await _latest_messages(graph, written_id)
    ids = {message.id for message in added}
    return Written(result=[m for m in stored if _id_of(m) in ids], checkpoint=written.checkpoint)


async def edit_message(
    storage: Storage,
    registry: GraphRegistry,
    thread_id: str,
    message_id: str,
    edit: Mapping[str, Any],
) -> Written[Any]:
    """Replace a message's content (`edit["content"]`) and/or merge keys into its
    `additional_kwargs["metadata"]` (`edit["metadata"]`), as a new checkpoint; the message
    keeps its id and place. Answers the updated message.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
        ConflictError: the thread is busy, locked or archived, or LangGraph cannot tell
            which node the edit comes from (its last step ran several nodes at once).
    """

    async def plan(thread: Thread) -> Change[Any]:
        graph, messages = await _editable(storage, registry, thread, message_id)
        index = _index(thread, messages, message_id)
        edited = _edited(messages[index], edit)
        after = [*messages[:index], edited, *messages[index + 1 :]]
        return _change(thread, graph, edited, after, result=edited)

    return await write_state(storage, thread_id, plan, doing=_DOING, action=_ACTION)


async def delete_message(
    storage: Storage, registry: GraphRegistry, thread_id: str, message_id: str
) -> Written[None]:
    """Remove a message from the thread's state, as a new checkpoint; the message stays in
    the thread's history.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
        ConflictError: the thread is busy, locked or archived.
    """

    async def plan(thread: Thread) -> Change[None]:
        graph, messages = await _editable(storage, registry, thread, message_id)
        index = _index(thread, messages, message_id)
        after = [*messages[:index], *messages[index + 1 :]]
        return _change(thread, graph, RemoveMessage(id=message_id), after, result=None)

    return await write_state(storage, thread_id, plan, doing=_DOING, action=_ACTION)


async def _conversation(
    storage: Storage, registry: GraphRegistry, thread: Thread, *, for_reads: bool
) -> tuple[AnyGraph | None, list[Any]]:
    graph = await thread_graph(storage, registry, thread, for_reads=for_reads)
    if graph is None:
        return None, []
    if CHANNEL not in graph.channels:
        keys = ", ".join(graph.stream_channels_asis) or "none"
        raise NotFoundError(
            f'Graph "{thread["metadata"]["graph_id"]}" has no "{CHANNEL}" channel, so thread '
            f'"{thread["thread_id"]}" has no messages to show; its state keys are: {keys}',
            code="no_messages_channel",
        )
    return graph, await _latest_messages(graph, thread["thread_id"])


async def _latest_messages(graph: AnyGraph, thread_id: str) -> list[Any]:
    snapshot = await graph.aget_state(latest_config(thread_id))
    values = snapshot.values if isinstance(snapshot.values, Mapping) else {}
    return list(values.get(CHANNEL) or [])


async def _editable(
    storage: Storage, registry: GraphRegistry, thread: Thread, message_id: str
) -> tuple[AnyGraph, list[Any]]:
    # The write graph for the read too: the edit must start from the state it replaces.
    graph, messages = await _conversation(storage, registry, thread, for_reads=False)
    if graph is None:
        raise _not_found(thread, message_id)
    return graph, messages


def _index(thread: Thread, messages: list[Any], message_id: str) -> int:
    for index, message in enumerate(messages):
        if _id_of(message) == message_id:
            return index
    raise _not_found(thread, message_id)


def _not_found(thread: Thread, message_id: str) -> NotFoundError:
    thread_id = thread["thread_id"]
    return NotFoundError(
        f'Message "{message_id}" not found on thread "{thread_id}"; '
        f"GET /threads/{thread_id}/messages lists its messages",
        code="message_not_found",
    )


def _id_of(message: Any) -> str | None:
    found = message.get("id") if isinstance(message, Mapping) else getattr(message, "id", None)
    return found if isinstance(found, str) else None


def _edited(message: Any, edit: Mapping[str, Any]) -> Any:
    update: Json = {}
    if "content" in edit:
        update["content"] = edit["content"]
    if "metadata" in edit:
        extra = dict(_field(message, "additional_kwargs") or {})
        current = extra.get("metadata")
        extra["metadata"] = {
            **(current if isinstance(current, Mapping) else {}),
            **edit["metadata"],
        }
        update["additional_kwargs"] = extra
    if isinstance(message, Mapping):
        return {**message, **update}
    return message.model_copy(update=update)


def _field(message: Any, name: str) -> Any:
    return message.get(name) if isinstance(message, Mapping) else getattr(message, name, None)


def _change(
    thread: Thread,
    graph: AnyGraph,
    change: Any,
    after: list[Any],
    *,
    result: Any,
    stamp: Json | None = None,
) -> Change[Any]:
    thread_id = thread["thread_id"]
    # A reducer channel (add_messages or the examples' batched one) replaces by id, appends
    # new ids and understands RemoveMessage; a plain channel takes the whole list as its new
    # value.
    plain = isinstance(graph.channels[CHANNEL], LastValue)
    changes = change if isinstance(change, list) else [change]

    def refused(exc: Exception) -> AgentRuntimeError:
        if isinstance(exc, InvalidUpdateError):
            return ConflictError(
                f'LangGraph cannot tell which node an edit of thread "{thread_id}" comes from '
                f"({exc}), as when its last step ran several nodes at once; send the change to "
                f"POST /threads/{thread_id}/state with an explicit as_node instead",
                code="ambiguous_update",
            )
        # The channel's reducer refused the edit.
        return InvalidRequestError(f"The edit cannot be applied: {exc}", code="invalid_update")

    # No as_node: LangGraph attributes the update to the last node that finished a step (on an
    # interrupted thread, the one before the interrupt) and re-runs only that node's edges,
    # which lead where they led before, so `next` stays what it was.
    return Change(
        graph=graph,
        config=latest_config(thread_id),
        values={CHANNEL: after if plain else changes},
        refused=refused,
        stamp=stamp,
        result=result,
    )


async def _graph_ids(
    storage: Storage,
    registry: GraphRegistry,
    thread: Thread,
    assistant_id: str | None,
    resolve_assistant: Callable[[str], str],
) -> Json | None:
    """The `graph_id` and `assistant_id` to stamp on a thread that has no graph yet; None
    when nothing is to be stamped."""
    if assistant_id is None:
        return None
    assistant = await storage.get_assistant(resolve_assistant(assistant_id))
    registry.require_served(assistant, field="assistant_id")
    graph_id = assistant["graph_id"]
    current = thread["metadata"].get("graph_id")
    if isinstance(current, str) and current in registry:
        if current != graph_id:
            raise ConflictError(
                f'Thread "{thread["thread_id"]}" runs graph "{current}", not "{graph_id}" '
                f'(of assistant_id "{assistant_id}"); leave assistant_id out to add to its '
                "conversation",
                code="graph_mismatch",
            )
        return None
    return {"graph_id": graph_id, "assistant_id": assistant["assistant_id"]}
