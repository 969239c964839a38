"""Example graph: a tool-calling agent that loops model -> tools -> model until it answers.

The tools (`calculator`, `current_time`) live in tools.py beside this file and work offline.
The model is chosen as in chat.py: context `model`, then `configurable.model`, then offline.
The conversation lives in a delta channel (state.py beside this file).
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

from typing import NotRequired

from graphs.state import ConversationState
from graphs.tools import TOOLS
from langchain_core.messages import AnyMessage
from langchain_core.runnables import RunnableConfig
from langgraph.config import get_config
from langgraph.graph import START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.runtime import Runtime
from typing_extensions import TypedDict

from agent_runtime.models import DEFAULT_MODEL, load_chat_model


class AgentContext(TypedDict):
    """Settings for one run, sent as the run's `context`."""

    model: NotRequired[str]
    """A "provider:model" spec; defaults to the offline model."""


def select_model(context: AgentContext | None, config: RunnableConfig) -> str:
    """Return the run's model spec: context first, then `configurable.model`, then the default."""
    if context and context.get("model"):
        return context["model"]
    configured = config.get("configurable", {}).get("model")
    return configured if isinstance(configured, str) and configured else DEFAULT_MODEL


async def call_model(
    state: ConversationState, runtime: Runtime[AgentContext]
) -> dict[str, list[AnyMessage]]:
    model = load_chat_model(select_model(runtime.context, get_config())).bind_tools(TOOLS)
    return {"messages": [await model.ainvoke(state["messages"])]}


_builder = StateGraph(ConversationState, context_schema=AgentContext)
_builder.add_node("model", call_model)
_builder.add_node("tools", ToolNode(TOOLS))
_builder.add_edge(START, "model")
# tools_condition goes to "tools" when the reply has tool calls, else ends the run.
_builder.add_conditional_edges("model", tools_condition)
_builder.add_edge("tools", "model")

# Compiled without a checkpointer: the runtime attaches its own.
graph = _builder.compile(name="agent")
