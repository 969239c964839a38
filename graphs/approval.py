"""Example graph: the agent from agent.py, but a human approves each batch of tool calls first.

Before tools run, the graph interrupts with
`{"question": "Approve tool calls?", "tool_calls": [{"name", "args", "id"}, ...]}`.
Resume with `True`, `"approve"` (any case) or `{"approved": true}` to run them. Anything else
rejects them, optionally with a reason as `{"approved": false, "reason": "..."}`: each call
gets a ToolMessage (status "error") saying a human rejected it, and the model answers again.
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

from typing import Any, Literal

from graphs.state import ConversationState
from graphs.tools import TOOLS
from langchain_core.messages import AIMessage, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, interrupt

from graphs import agent as _agent


def is_approval(answer: Any) -> bool:
    """Return whether a resume value approves the pending tool calls; anything unknown rejects."""
    if answer is True:
        return True
    if isinstance(answer, str):
        return answer.strip().lower() == "approve"
    if isinstance(answer, dict):
        return answer.get("approved") is True
    return False


def ask_approval(state: ConversationState) -> Command[Literal["tools", "model"]]:
    request = state["messages"][-1]
    calls = request.tool_calls if isinstance(request, AIMessage) else []
    answer = interrupt(
        {
            "question": "Approve tool calls?",
            "tool_calls": [{"name": c["name"], "args": c["args"], "id": c["id"]} for c in calls],
        }
    )
    if is_approval(answer):
        return Command(goto="tools")
    reason = answer.get("reason") if isinstance(answer, dict) else None
    suffix = f" Reason: {reason}" if reason else ""
    rejections = [
        ToolMessage(
            content=f"Rejected by a human: {call['name']} was not run.{suffix}",
            tool_call_id=call["id"],
            name=call["name"],
            status="error",
        )
        for call in calls
    ]
    return Command(goto="model", update={"messages": rejections})


_builder = StateGraph(ConversationState, context_schema=_agent.AgentContext)
_builder.add_node("model", _agent.call_model)
_builder.add_node("approve", ask_approval)
_builder.add_node("tools", ToolNode(TOOLS))
_builder.add_edge(START, "model")
_builder.add_conditional_edges("model", tools_condition, {"tools": "approve", END: END})
_builder.add_edge("tools", "model")

# Compiled without a checkpointer: the runtime attaches its own.
graph = _builder.compile(name="approval")
