"""Example graph: one model turn over the conversation, with an optional system prompt.

The model is the run's context key `model` (or `configurable.model`), a "provider:model" spec
such as "openai:gpt-4o"; without one it is the offline stand-in, so the example needs no key.
The conversation lives in a delta channel (state.py beside this file).
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import NotRequired

from langchain_core.messages import AnyMessage, SystemMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.graph import END, START, StateGraph
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from agent_runtime.models import DEFAULT_MODEL, load_chat_model


def _load_sibling(filename: str) -> ModuleType:
    # The runtime loads graph files by path, so graphs/ is not on sys.path and a bare
    # `import state` would fail; load the sibling by path too, under a name unique to us.
    path = Path(__file__).with_name(filename)
    spec = importlib.util.spec_from_file_location(f"{__name__}_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"Cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


ConversationState = _load_sibling("state.py").ConversationState


# typing_extensions' TypedDict, not typing's: pydantic needs it on Python 3.11 to publish
# the context's JSON schema.
class ChatContext(TypedDict):
    """Settings for one run, sent as the run's `context`."""

    model: NotRequired[str]
    """A "provider:model" spec; defaults to the offline model."""
    system_prompt: NotRequired[str]
    """Instructions placed before the conversation."""


def select_model(context: ChatContext | None, config: RunnableConfig) -> str:
    """Return the run's model spec: context first, then `configurable.model`, then the default."""
    if context and context.get("model"):
        return context["model"]
    configured = config.get("configurable", {}).get("model")
    return configured if isinstance(configured, str) and configured else DEFAULT_MODEL


def build_system_prompt(context: ChatContext | None) -> str | None:
    """Return the system prompt for this run, or None to send the conversation alone."""
    return (context or {}).get("system_prompt") or None


async def call_model(
    state: ConversationState, runtime: Runtime[ChatContext]
) -> dict[str, list[AnyMessage]]:
    model = load_chat_model(select_model(runtime.context, get_config()))
    prompt = build_system_prompt(runtime.context)
    messages = [SystemMessage(prompt), *state["messages"]] if prompt else state["messages"]
    return {"messages": [await model.ainvoke(messages)]}


_builder = StateGraph(ConversationState, context_schema=ChatContext)
_builder.add_node("model", call_model)
_builder.add_edge(START, "model")
_builder.add_edge("model", END)

# Compiled without a checkpointer: the runtime attaches its own.
graph = _builder.compile(name="chat")
