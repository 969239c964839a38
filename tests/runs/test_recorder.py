"""The run recorder as LangChain calls it: usage from a real chat model call, and no fallback
that renders the conversation as text on every call."""

from __future__ import annotations

from typing import Any

import pytest
from langchain_core.callbacks import AsyncCallbackHandler, AsyncCallbackManager
from langchain_core.callbacks import manager as callback_manager
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, get_buffer_string

from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.runs.recorder import RunRecorder
from agent_runtime.schema import ToolCall

CONVERSATION: list[BaseMessage] = [
    HumanMessage("hello there", id="h1"),
    AIMessage("hi", id="a1"),
    HumanMessage("tell me more", id="h2"),
]


class _Bare(AsyncCallbackHandler):
    """A handler without `on_chat_model_start`: LangChain falls back to `on_llm_start`."""


async def _ignore(call: ToolCall) -> None:
    return None


@pytest.fixture
def rendered(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    """Every conversation LangChain's callback manager renders as text for `on_llm_start`."""
    calls: list[Any] = []
    real = get_buffer_string

    def spy(messages: Any, **kwargs: Any) -> str:
        calls.append(messages)
        return real(messages, **kwargs)

    monkeypatch.setattr(callback_manager, "get_buffer_string", spy)
    return calls


async def test_recorder_spares_the_text_rendering_of_the_conversation(
    rendered: list[Any],
) -> None:
    recorder = RunRecorder(run_id="r1", pricing={}, save_tool_call=_ignore)
    model = OfflineChatModel()
    reply = await model.ainvoke(CONVERSATION, {"callbacks": [recorder]})
    assert reply.usage_metadata is not None
    assert rendered == []
    usage = recorder.usage()
    assert usage is not None
    assert usage["input_tokens"] == reply.usage_metadata["input_tokens"]
    assert usage["output_tokens"] == reply.usage_metadata["output_tokens"]


async def test_handlers_without_chat_start_make_langchain_render(rendered: list[Any]) -> None:
    # The control: the spy sees the fallback the recorder avoids.
    manager = AsyncCallbackManager(handlers=[_Bare()])
    await manager.on_chat_model_start({}, [CONVERSATION])
    assert rendered == [CONVERSATION]
