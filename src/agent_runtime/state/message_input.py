"""Messages to add to a thread, as dicts LangChain reads (OpenAI's `role` or LangChain's `type`),
checked one by one into LangChain messages with ids, each failure a 4xx naming the message.
Writing them to a thread belongs to `messages.py`."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from langchain_core.messages import BaseMessage, convert_to_messages

from agent_runtime.errors import ConflictError, InvalidRequestError
from agent_runtime.schema import Json


def new_messages(
    given: Sequence[Mapping[str, Any]], taken: set[str | None], thread_id: str
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
