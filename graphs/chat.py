"""Example graph: one model turn over the conversation, with an optional system prompt.

The model is the run's context key `model` (or `configurable.model`), a "provider:model" spec
such as "openai:gpt-4o"; without one it is the offline stand-in, so the example needs no key.
The conversation lives in a delta channel (state.py beside this file).
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

from datetime import UTC, datetime
from typing import Any, NotRequired
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from graphs.state import ConversationState
from langchain_core.messages import AnyMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from agent_runtime.models import DEFAULT_MODEL, load_chat_model


# typing_extensions' TypedDict, not typing's: pydantic needs it on Python 3.11 to publish
# the context's JSON schema.
class ChatContext(TypedDict):
    """Settings for one run, sent as the run's `context`."""

    model: NotRequired[str]
    """A "provider:model" spec; defaults to the offline model."""
    system_prompt: NotRequired[str]
    """Instructions placed before the conversation."""
    timezone: NotRequired[str]
    """The user's IANA time zone ("Europe/Paris"); else the thread's metadata `timezone`."""
    language: NotRequired[str]
    """The language to answer in; else the thread's metadata `language`."""
    current_utc: NotRequired[str]
    """The time to give as now (ISO 8601); defaults to the clock, which tests pin this way."""


def select_model(context: ChatContext | None, config: RunnableConfig) -> str:
    """Return the run's model spec: context first, then `configurable.model`, then the default."""
    if context and context.get("model"):
        return context["model"]
    configured = config.get("configurable", {}).get("model")
    return configured if isinstance(configured, str) and configured else DEFAULT_MODEL


def build_system_prompt(
    context: ChatContext | None, thread_metadata: dict[str, Any] | None, now: datetime
) -> str:
    """The run's system prompt: its instructions, then the current time, the user's time zone
    and language, each from the run's context first and the thread's metadata second."""
    context = context or {}
    metadata = thread_metadata or {}
    lines = [context["system_prompt"]] if context.get("system_prompt") else []
    current = context.get("current_utc") or now.astimezone(UTC).isoformat(timespec="seconds")
    lines.append(f"Current time (UTC): {current}")
    zone = context.get("timezone") or metadata.get("timezone")
    if isinstance(zone, str) and zone:
        lines.append(f"The user's time zone: {zone}{_local_time(current, zone)}")
    language = context.get("language") or metadata.get("language")
    if isinstance(language, str) and language:
        lines.append(f"Answer in this language: {language}")
    return "\n".join(lines)


def _local_time(current_utc: str, zone: str) -> str:
    try:
        moment = datetime.fromisoformat(current_utc).astimezone(ZoneInfo(zone))
    except (ValueError, ZoneInfoNotFoundError):
        return " (unknown zone)"
    return f" (local time {moment.isoformat(timespec='minutes')})"


async def call_model(
    state: ConversationState, runtime: Runtime[ChatContext]
) -> dict[str, list[AnyMessage]]:
    config = get_config()
    model = load_chat_model(select_model(runtime.context, config))
    # The runtime passes the thread's metadata in `configurable.thread_metadata`.
    thread_metadata = config.get("configurable", {}).get("thread_metadata")
    prompt = build_system_prompt(runtime.context, thread_metadata, datetime.now(UTC))
    messages = [SystemMessage(prompt), *state["messages"]]
    return {"messages": [await model.ainvoke(messages)]}


_builder = StateGraph(ConversationState, context_schema=ChatContext)
_builder.add_node("model", call_model)
_builder.add_edge(START, "model")
_builder.add_edge("model", END)

# Compiled without a checkpointer: the runtime attaches its own.
graph = _builder.compile(name="chat")
