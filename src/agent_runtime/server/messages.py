"""The messages view: a thread's `messages` channel listed, read, added to, edited and deleted
one message at a time. Reads come from the graph's latest state, never the threads table; writes
go through the checkpointer as a new checkpoint, so history keeps every old version."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any

from langchain_core.messages import RemoveMessage
from langchain_core.runnables import RunnableConfig
from langgraph.channels import LastValue
from langgraph.errors import InvalidUpdateError
from pydantic import Field
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.encoding import to_jsonable
from agent_runtime.errors import (
    ConflictError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
)
from agent_runtime.lifecycle import require_editable
from agent_runtime.runs.executor import AnyGraph, state_outcome
from agent_runtime.schema import Json, Thread
from agent_runtime.server.assistants import resolve_assistant_id
from agent_runtime.server.message_input import NewMessages, new_messages
from agent_runtime.server.routing import Router, json_response
from agent_runtime.server.services import Services, services
from agent_runtime.server.snapshots import checkpoint_json
from agent_runtime.server.state import thread_graph
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import Offset, closed
from agent_runtime.storage.base import ThreadPatch

router = Router("thread messages")
CHANNEL = "messages"


@closed
class MessagesQuery(TypedDict, total=False):
    limit: Annotated[int, Field(ge=1, le=1000)]
    """At most this many messages (default 100)."""
    offset: Offset
    """Skip this many of the oldest messages first."""


@closed
class MessageEdit(TypedDict, total=False):
    content: str | list[Json]
    """The message's new content: text, or a list of content blocks."""
    metadata: Json
    """Keys merged into the message's `additional_kwargs["metadata"]`; the others stay."""


@router.get("/threads/{thread_id}/messages", query=MessagesQuery)
async def list_thread_messages(request: Request, query: MessagesQuery) -> Response:
    """The messages of the thread's latest state, oldest first (`limit` default 100, at most
    1000; `offset`). The `X-Pagination-Total` header counts them all; `X-Pagination-Next`,
    set while more remain, is the offset of the next page."""
    _, messages = await _readable(request)
    limit, offset = query.get("limit", 100), query.get("offset", 0)
    page = messages[offset : offset + limit]
    headers = {"X-Pagination-Total": str(len(messages))}
    if offset + limit < len(messages):
        headers["X-Pagination-Next"] = str(offset + limit)
    return json_response([to_jsonable(m) for m in page], headers=headers)


@router.post("/threads/{thread_id}/messages", body=NewMessages)
async def create_thread_messages(request: Request, body: NewMessages) -> Json:
    """Add messages to the end of the thread's conversation without running it, as a new
    checkpoint (like OpenAI Assistants' "create message").

    Answers 200 (as every create of this API and OpenAI's does) with `{"messages": [<the
    added messages as stored, with their ids>], "checkpoint": <the new checkpoint>}`. The
    update comes from the node that last wrote the state, as edits do, so an interrupted
    thread still waits where it waited, and a run with `{"messages": []}` as input answers
    them. On a thread with no checkpoint yet the messages are the graph's input, as LangGraph
    infers it: `next` then names the graph's first node (the thread shows as interrupted, as
    after `POST /threads/{id}/state`), and a run with no input answers them. A thread that has
    never run needs its graph: from `metadata.graph_id`, or `assistant_id` in the body.

    Raises:
        InvalidRequestError: a message is malformed, repeats an id, or the reducer refused it;
            or `assistant_id` names no graph this server serves.
        NotFoundError: the thread, or the assistant named, does not exist; or the graph has
            no `messages` channel.
        ConflictError: the thread is busy, locked or archived; it has never run and the body
            names no `assistant_id`; the graph is not the thread's; a message id is taken.
        PayloadTooLargeError: the thread would hold more than
            `limits.max_messages_per_thread` messages.
    """
    svc = services(request)
    thread = await svc.storage.get_thread(thread_id_of(request), values=False)
    thread_id = thread["thread_id"]
    require_editable(thread, doing="adding messages", action="have messages added")
    graph_ids = await _graph_ids(svc, thread, body.get("assistant_id"))
    if graph_ids is not None:
        # Stamped as a run stamps it: the thread's graph from now on.
        thread = {**thread, "metadata": {**thread["metadata"], **graph_ids}}
    graph, messages = await _conversation(svc, thread, for_reads=False)
    if graph is None:
        raise ConflictError(
            f'Thread "{thread_id}" has never run and names no graph, so it has no messages '
            'channel yet; send "assistant_id" with the messages, run it first, or create it '
            'with metadata {"graph_id": ...}',
            code="thread_has_no_graph",
        )
    added = new_messages(body["messages"], {_id_of(m) for m in messages}, thread_id)
    limit = svc.config.limits.max_messages_per_thread
    if len(messages) + len(added) > limit:
        raise PayloadTooLargeError(
            f"The thread would hold {len(messages) + len(added)} messages, over the limit of "
            f"{limit} (agent_runtime.limits.max_messages_per_thread in langgraph.json)",
            code="too_many_messages",
        )
    checkpoint = await _write(svc, thread, graph, added, [*messages, *added], graph_ids)
    _, stored = await _conversation(svc, thread, for_reads=False)
    ids = {message.id for message in added}
    return {
        "messages": [to_jsonable(m) for m in stored if _id_of(m) in ids],
        "checkpoint": checkpoint,
    }


@router.get("/threads/{thread_id}/messages/{message_id}")
async def get_thread_message(request: Request, _: None) -> Json:
    """One message of the thread's latest state, by id.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
    """
    thread, messages = await _readable(request)
    found: Json = to_jsonable(messages[_index(thread, messages, request)])
    return found


@router.patch("/threads/{thread_id}/messages/{message_id}", body=MessageEdit)
async def update_thread_message(request: Request, body: MessageEdit) -> Json:
    """Replace a message's content and/or merge keys into its metadata, as a new checkpoint.

    The message keeps its id and place. `metadata` is merged into the message's
    `additional_kwargs["metadata"]` (the only free-form slot LangChain messages carry);
    keys not named stay. Answers `{"message": <the updated message>, "checkpoint": <the new
    checkpoint>}`; the old version stays in the thread's history.

    Raises:
        InvalidRequestError: the body sets neither `content` nor `metadata`.
        NotFoundError: the thread, its messages channel, or the message does not exist.
        ConflictError: the thread is busy, locked or archived, or LangGraph cannot tell
            which node the edit comes from (its last step ran several nodes at once).
    """
    if "content" not in body and "metadata" not in body:
        raise InvalidRequestError(
            'The request body must set "content", "metadata" or both; it set neither',
            code="validation_error",
        )
    svc = services(request)
    thread, graph, messages = await _editable(svc, request)
    index = _index(thread, messages, request)
    edited = _edited(messages[index], body)
    after = [*messages[:index], edited, *messages[index + 1 :]]
    checkpoint = await _write(svc, thread, graph, edited, after)
    return {"message": to_jsonable(edited), "checkpoint": checkpoint}


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_thread_message(request: Request, _: None) -> Json:
    """Remove a message from the thread's state, as a new checkpoint; answers
    `{"checkpoint": <the new checkpoint>}`. The message stays in the thread's history.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
        ConflictError: the thread is busy, locked or archived.
    """
    svc = services(request)
    thread, graph, messages = await _editable(svc, request)
    index = _index(thread, messages, request)
    removal = RemoveMessage(id=request.path_params["message_id"])
    after = [*messages[:index], *messages[index + 1 :]]
    checkpoint = await _write(svc, thread, graph, removal, after)
    return {"checkpoint": checkpoint}


async def _conversation(
    svc: Services, thread: Thread, *, for_reads: bool
) -> tuple[AnyGraph | None, list[Any]]:
    graph = await thread_graph(svc, thread, for_reads=for_reads)
    if graph is None:
        return None, []
    if CHANNEL not in graph.channels:
        keys = ", ".join(graph.stream_channels_asis) or "none"
        raise NotFoundError(
            f'Graph "{thread["metadata"]["graph_id"]}" has no "{CHANNEL}" channel, so thread '
            f'"{thread["thread_id"]}" has no messages to show; its state keys are: {keys}',
            code="no_messages_channel",
        )
    snapshot = await graph.aget_state(_latest(thread["thread_id"]))
    values = snapshot.values if isinstance(snapshot.values, Mapping) else {}
    return graph, list(values.get(CHANNEL) or [])


async def _readable(request: Request) -> tuple[Thread, list[Any]]:
    svc = services(request)
    thread = await svc.storage.get_thread(thread_id_of(request), values=False)
    _graph, messages = await _conversation(svc, thread, for_reads=True)
    return thread, messages


async def _editable(svc: Services, request: Request) -> tuple[Thread, AnyGraph, list[Any]]:
    thread = await svc.storage.get_thread(thread_id_of(request), values=False)
    require_editable(thread, doing="editing its messages", action="have its messages edited")
    # The write graph for the read too: the edit must start from the state it replaces.
    graph, messages = await _conversation(svc, thread, for_reads=False)
    if graph is None:
        raise _not_found(thread, request)
    return thread, graph, messages


def _index(thread: Thread, messages: list[Any], request: Request) -> int:
    message_id = request.path_params["message_id"]
    for index, message in enumerate(messages):
        if _id_of(message) == message_id:
            return index
    raise _not_found(thread, request)


def _not_found(thread: Thread, request: Request) -> NotFoundError:
    thread_id = thread["thread_id"]
    return NotFoundError(
        f'Message "{request.path_params["message_id"]}" not found on thread "{thread_id}"; '
        f"GET /threads/{thread_id}/messages lists its messages",
        code="message_not_found",
    )


def _id_of(message: Any) -> str | None:
    found = message.get("id") if isinstance(message, Mapping) else getattr(message, "id", None)
    return found if isinstance(found, str) else None


def _edited(message: Any, edit: MessageEdit) -> Any:
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


async def _write(
    svc: Services,
    thread: Thread,
    graph: AnyGraph,
    change: Any,
    after: list[Any],
    graph_ids: Json | None = None,
) -> Json | None:
    thread_id = thread["thread_id"]
    # A reducer channel (add_messages or the examples' batched one) replaces by id, appends
    # new ids and understands RemoveMessage; a plain channel takes the whole list as its new
    # value.
    plain = isinstance(graph.channels[CHANNEL], LastValue)
    changes = change if isinstance(change, list) else [change]
    try:
        # No as_node: LangGraph attributes the update to the last node that finished a step
        # (on an interrupted thread, the one before the interrupt) and re-runs only that
        # node's edges, which lead where they led before, so `next` stays what it was.
        updated: RunnableConfig = await graph.aupdate_state(
            _latest(thread_id),
            {CHANNEL: after if plain else changes},
        )
    except InvalidUpdateError as exc:
        raise ConflictError(
            f'LangGraph cannot tell which node an edit of thread "{thread_id}" comes from '
            f"({exc}), as when its last step ran several nodes at once; send the change to "
            f"POST /threads/{thread_id}/state with an explicit as_node instead",
            code="ambiguous_update",
        ) from exc
    except ValueError as exc:
        # The channel's reducer refused the edit.
        raise InvalidRequestError(
            f"The edit cannot be applied: {exc}", code="invalid_update"
        ) from exc
    if graph_ids is not None:
        await svc.storage.update_thread(thread_id, ThreadPatch(metadata=graph_ids))
    await svc.storage.settle_thread(thread_id, await state_outcome(graph, thread_id))
    return checkpoint_json(updated)


def _latest(thread_id: str) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}}


async def _graph_ids(svc: Services, thread: Thread, assistant_id: str | None) -> Json | None:
    """The `graph_id` and `assistant_id` to stamp on a thread that has no graph yet; None
    when nothing is to be stamped."""
    if assistant_id is None:
        return None
    assistant = await svc.storage.get_assistant(resolve_assistant_id(svc, assistant_id))
    graph_id = assistant["graph_id"]
    if graph_id not in svc.registry:
        raise InvalidRequestError(
            f'assistant_id: assistant "{assistant["assistant_id"]}" runs graph "{graph_id}", '
            f"which this server does not serve; known graphs: {', '.join(svc.registry.graph_ids)}",
            code="graph_not_found",
        )
    current = thread["metadata"].get("graph_id")
    if isinstance(current, str) and current in svc.registry:
        if current != graph_id:
            raise ConflictError(
                f'Thread "{thread["thread_id"]}" runs graph "{current}", not "{graph_id}" '
                f'(of assistant_id "{assistant_id}"); leave assistant_id out to add to its '
                "conversation",
                code="graph_mismatch",
            )
        return None
    return {"graph_id": graph_id, "assistant_id": assistant["assistant_id"]}
