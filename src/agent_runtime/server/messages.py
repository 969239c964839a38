"""The messages view routes: a thread's `messages` channel listed, read, added to, edited and
deleted one message at a time, each a call into `state.messages`. Writes make a new checkpoint,
so history keeps every old version."""

from __future__ import annotations

from collections.abc import Mapping
from functools import partial
from typing import Annotated, Any, Literal, Required

from pydantic import BeforeValidator, ConfigDict, Field, with_config
from starlette.requests import Request
from starlette.responses import Response
from typing_extensions import TypedDict

from agent_runtime.encoding import to_jsonable
from agent_runtime.errors import InvalidRequestError
from agent_runtime.schema import Json
from agent_runtime.server.assistants import resolve_assistant_id
from agent_runtime.server.routing import Router, json_response
from agent_runtime.server.services import services
from agent_runtime.server.threads import thread_id_of
from agent_runtime.server.validation import Offset, closed
from agent_runtime.state import (
    add_messages,
    delete_message,
    edit_message,
    get_message,
    list_messages,
)

router = Router("thread messages")

# What LangChain's message coercion accepts as a dict's `role` (OpenAI's names) or `type`.
MessageKind = Literal["human", "user", "ai", "assistant", "system", "developer", "tool", "function"]


# Open: LangChain messages carry more keys (`name`, `tool_calls`, `tool_call_id`,
# `additional_kwargs`, ...), which pass through to the message as LangChain reads them.
@with_config(ConfigDict(extra="allow"))
class MessageInput(TypedDict, total=False):
    role: MessageKind
    """OpenAI's name for the sender (`user`, `assistant`, `system`, `developer`, `tool`)."""
    type: MessageKind
    """LangChain's name for the sender (`human`, `ai`, `system`, `tool`); `role` wins."""
    content: Required[str | list[Json]]
    """Text, or a list of content blocks."""
    id: Annotated[str, Field(min_length=1)]
    """Kept as given (it must not name a message the thread holds); generated when absent."""


def _listed(value: Any) -> Any:
    # One message object stands for a list of one, as LangGraph's add_messages reads it.
    return [value] if isinstance(value, Mapping) else value


@closed
class NewMessages(TypedDict, total=False):
    messages: Required[
        Annotated[
            list[MessageInput],
            BeforeValidator(_listed),
            Field(min_length=1, max_length=1000),
        ]
    ]
    """The messages to add, oldest first; one message object is read as a list of one."""
    assistant_id: Annotated[str, Field(min_length=1)]
    """For a thread that has never run: the assistant (id or graph name) whose graph's
    `messages` channel takes the messages. On a thread that has a graph it must name the
    same graph."""


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
    svc = services(request)
    messages = await list_messages(svc.storage, svc.registry, thread_id_of(request))
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
    written = await add_messages(
        svc.storage,
        svc.registry,
        thread_id_of(request),
        body["messages"],
        assistant_id=body.get("assistant_id"),
        resolve_assistant=partial(resolve_assistant_id, svc),
        max_messages=svc.config.limits.max_messages_per_thread,
    )
    return {
        "messages": [to_jsonable(m) for m in written.result],
        "checkpoint": written.checkpoint,
    }


@router.get("/threads/{thread_id}/messages/{message_id}")
async def get_thread_message(request: Request, _: None) -> Json:
    """One message of the thread's latest state, by id.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
    """
    svc = services(request)
    message = await get_message(
        svc.storage, svc.registry, thread_id_of(request), request.path_params["message_id"]
    )
    found: Json = to_jsonable(message)
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
    written = await edit_message(
        svc.storage, svc.registry, thread_id_of(request), request.path_params["message_id"], body
    )
    return {"message": to_jsonable(written.result), "checkpoint": written.checkpoint}


@router.delete("/threads/{thread_id}/messages/{message_id}")
async def delete_thread_message(request: Request, _: None) -> Json:
    """Remove a message from the thread's state, as a new checkpoint; answers
    `{"checkpoint": <the new checkpoint>}`. The message stays in the thread's history.

    Raises:
        NotFoundError: the thread, its messages channel, or the message does not exist.
        ConflictError: the thread is busy, locked or archived.
    """
    svc = services(request)
    written = await delete_message(
        svc.storage, svc.registry, thread_id_of(request), request.path_params["message_id"]
    )
    return {"checkpoint": written.checkpoint}
