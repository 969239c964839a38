"""Example graph: the agent from agent.py, but a human reviews each batch of tool calls first.

Before tools run, the graph interrupts with LangChain's human-in-the-loop request, the shape
agent-chat-ui and the Agent Inbox render with buttons:

    {"action_requests": [{"name": "calculator", "args": {...}, "description": "..."}, ...],
     "review_configs": [{"action_name": "calculator",
                         "allowed_decisions": ["approve", "edit", "reject", "respond"]}, ...]}

Resume with `{"decisions": [decision, ...]}`, one per action request in order (a single decision
applies to every request; a request left without one is rejected):

- `{"type": "approve"}` runs the call as the model wrote it;
- `{"type": "edit", "edited_action": {"name": ..., "args": {...}}}` runs it as edited (the model's
  message is rewritten to match, so the history shows what ran);
- `{"type": "reject", "message": "..."}` does not run it: the model is told a human rejected it,
  with the reason when one is given, and answers again;
- `{"type": "respond", "message": "..."}` does not run it either: the message stands in for the
  tool's result.

The Agent Inbox's older response list (`[{"type": "accept" | "edit" | "response" | "ignore",
"args": ...}]`) and the plain answers of earlier versions of this example (`True`, `"approve"`,
`{"approved": true}` approve everything; `{"approved": false, "reason": "..."}` rejects it) are
understood too. Anything else rejects every call.
"""

# No `from __future__ import annotations`: the runtime loads this file by path and LangGraph
# evaluates these annotations at run time, which strings could not resolve.

import json
from typing import Any, Literal

from graphs.state import ConversationState
from graphs.tools import TOOLS
from langchain_core.messages import AIMessage, AnyMessage, ToolCall, ToolMessage
from langgraph.graph import END, START, StateGraph
from langgraph.prebuilt import ToolNode, tools_condition
from langgraph.types import Command, Send, interrupt

from graphs import agent as _agent

DECISIONS = ["approve", "edit", "reject", "respond"]
"""What a reviewer may decide about each call, as the request's `review_configs` offer it."""

Decision = dict[str, Any]


def review_request(calls: list[ToolCall]) -> dict[str, Any]:
    """The interrupt value for these tool calls: one action request and review config each."""
    return {
        "action_requests": [
            {
                "name": call["name"],
                "args": call["args"],
                "description": f"Tool call {call['name']} with {json.dumps(call['args'])}",
            }
            for call in calls
        ],
        "review_configs": [
            {"action_name": name, "allowed_decisions": list(DECISIONS)}
            for name in dict.fromkeys(call["name"] for call in calls)
        ],
    }


def read_decisions(answer: Any, count: int) -> list[Decision]:
    """One decision per call from a resume value in any of the understood shapes."""
    if isinstance(answer, dict) and isinstance(answer.get("decisions"), list):
        given = [_decision(item) for item in answer["decisions"]]
    elif isinstance(answer, list):
        given = [_decision(item) for item in answer]
    elif answer is True or (isinstance(answer, str) and answer.strip().lower() == "approve"):
        given = [{"type": "approve"}]
    elif isinstance(answer, dict) and "approved" in answer:
        reason = answer.get("reason")
        given = [
            {"type": "approve"}
            if answer["approved"] is True
            else {"type": "reject", "message": reason if isinstance(reason, str) else None}
        ]
    else:
        given = [{"type": "reject", "message": None}]
    if len(given) == 1:
        return given * count
    missing: Decision = {"type": "reject", "message": "no decision was given for this call"}
    return [given[i] if i < len(given) else missing for i in range(count)]


def _decision(item: Any) -> Decision:
    if not isinstance(item, dict):
        return {"type": "reject", "message": None}
    kind = item.get("type")
    args = item.get("args")
    # The Agent Inbox's HumanResponse: accept, edit (args is the action), response, ignore.
    if kind == "accept":
        return {"type": "approve"}
    if kind == "edit" and "edited_action" not in item and isinstance(args, dict):
        action = {"name": args.get("action"), "args": args.get("args")}
        return {"type": "edit", "edited_action": action}
    if kind == "response":
        return {"type": "respond", "message": args if isinstance(args, str) else None}
    if kind == "ignore":
        return {"type": "reject", "message": None}
    if kind in DECISIONS:
        return item
    return {"type": "reject", "message": None}


def _edited(call: ToolCall, decision: Decision) -> ToolCall | None:
    action = decision.get("edited_action")
    if not isinstance(action, dict) or not isinstance(action.get("args"), dict):
        return None
    name = action.get("name") or call["name"]
    if name not in {tool.name for tool in TOOLS}:
        return None
    return {**call, "name": name, "args": action["args"]}


def _not_run(call: ToolCall, decision: Decision) -> ToolMessage:
    message = decision.get("message")
    if decision["type"] == "respond" and isinstance(message, str):
        return ToolMessage(content=message, tool_call_id=call["id"], name=call["name"])
    reason = f" Reason: {message}" if isinstance(message, str) and message else ""
    return ToolMessage(
        content=f"Rejected by a human: {call['name']} was not run.{reason}",
        tool_call_id=call["id"],
        name=call["name"],
        status="error",
    )


def review(state: ConversationState) -> Command[Literal["tools", "model"]]:
    request = state["messages"][-1]
    calls = list(request.tool_calls) if isinstance(request, AIMessage) else []
    decisions = read_decisions(interrupt(review_request(calls)), len(calls))
    to_run: list[ToolCall] = []
    update: list[AnyMessage] = []
    edits: dict[int, ToolCall] = {}
    for index, (call, decision) in enumerate(zip(calls, decisions, strict=True)):
        edited = _edited(call, decision) if decision["type"] == "edit" else None
        if edited is not None:
            edits[index] = edited
            to_run.append(edited)
        elif decision["type"] == "approve":
            to_run.append(call)
        else:
            update.append(_not_run(call, decision))
    if edits:
        # The model's message says what will run (same id, so the reducer replaces it).
        rewritten = [edits.get(index, call) for index, call in enumerate(calls)]
        update.insert(0, request.model_copy(update={"tool_calls": rewritten}))
    if not to_run:
        return Command(goto="model", update={"messages": update})
    # One Send per call to run, so calls that were rejected are never executed.
    sends = [
        Send("tools", {"__type": "tool_call_with_context", "tool_call": call, "state": state})
        for call in to_run
    ]
    return Command(goto=sends, update={"messages": update})


_builder = StateGraph(ConversationState, context_schema=_agent.AgentContext)
_builder.add_node("model", _agent.call_model)
_builder.add_node("approve", review)
_builder.add_node("tools", ToolNode(TOOLS))
_builder.add_edge(START, "model")
_builder.add_conditional_edges("model", tools_condition, {"tools": "approve", END: END})
_builder.add_edge("tools", "model")

# Compiled without a checkpointer: the runtime attaches its own.
graph = _builder.compile(name="approval")
