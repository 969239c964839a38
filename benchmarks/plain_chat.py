"""The example chat graph's node on LangGraph's plain `MessagesState`, which stores the whole
message list in every checkpoint: what `bench_delta.py` compares the delta channel with, in
process and served as graph "plain"."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.runtime import Runtime

# The example graphs import each other as `graphs.*`: the server's "." dependency allows it, and
# so does this, for the benchmark that imports this file by itself.
_ROOT = str(Path(__file__).resolve().parents[1])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
chat = importlib.import_module("graphs.chat")


async def call_model(state: MessagesState, runtime: Runtime[Any]) -> dict[str, Any]:
    reply: dict[str, Any] = await chat.call_model(state, runtime)
    return reply


_builder = StateGraph(MessagesState, context_schema=chat.ChatContext)
_builder.add_node("model", call_model)
_builder.add_edge(START, "model")
_builder.add_edge("model", END)
graph = _builder.compile(name="chat_plain")
