"""What `POST /threads/{id}/messages` takes: message dicts as LangChain reads them (OpenAI's
`role` or LangChain's `type`), checked one by one into LangChain messages with ids, each failure
a 4xx naming the message. Writing them to a thread belongs to `messages.py`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Annotated, Any, Literal, Required

from langchain_core.messages import BaseMessage, convert_to_messages
from pydantic import BeforeValidator, ConfigDict, Field, with_config
from typing_extensions import TypedDict

from agent_runtime.errors import ConflictError, InvalidRequestError
from agent_runtime.schema import Json
from agent_runtime.server.validation import closed

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


def new_messages(
    given: list[MessageInput], taken: set[str | None], thread_id: str
) -> list[BaseMessage]:
    """The given messages as LangChain messages, each with an id (generated when absent).

    Raises:
        InvalidRequestError: a message names no sender, misses a field its kind needs, cannot
            be read by LangChain, or repeats an id of the request.
        ConflictError: a message's id is one the thread already holds (`taken`).
    """
    added: list[BaseMessage] = []
    for index, item in enumerate(given):
        where = f"messages.{index}"
        if "role" not in item and "type" not in item:
            raise InvalidRequestError(
                f'{where}: a message needs "role" (user, assistant, system, tool) or "type" '
                "(human, ai, system, tool)",
                code="validation_error",
            )
        raw: Json = {"id": str(uuid.uuid4()), **item}
        if "role" in raw:
            raw.pop("type", None)
        try:
            [message] = convert_to_messages([raw])
        except KeyError as exc:
            kind = raw.get("role") or raw.get("type")
            raise InvalidRequestError(
                f'{where}: a {kind} message needs the field "{exc.args[0]}"',
                code="validation_error",
            ) from exc
        except (ValueError, TypeError) as exc:
            first = str(exc).splitlines()[0]
            raise InvalidRequestError(
                f"{where} is not a message LangChain can read: {first}", code="validation_error"
            ) from exc
        if message.id in taken:
            raise ConflictError(
                f'{where}: thread "{thread_id}" already holds a message with id "{message.id}"; '
                f"PATCH /threads/{thread_id}/messages/{message.id} edits it, or leave the id "
                "out to have one generated",
                code="message_exists",
            )
        if any(message.id == other.id for other in added):
            raise InvalidRequestError(
                f'{where}: the id "{message.id}" is given twice in the request',
                code="validation_error",
            )
        added.append(message)
    return added
