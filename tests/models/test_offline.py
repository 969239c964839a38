"""Tests for the offline chat model: replies, streaming, usage, tool calls and scripts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest
from langchain_core.callbacks import get_usage_metadata_callback
from langchain_core.messages import (
    AIMessage,
    AIMessageChunk,
    BaseMessage,
    HumanMessage,
    SystemMessage,
    ToolMessage,
)
from langchain_core.tools import tool

from agent_runtime.models import OfflineChatModel


@tool
def calculator(expression: str) -> str:
    """Evaluate arithmetic."""
    return expression


@tool
def current_time(timezone: str = "UTC") -> str:
    """Tell the time."""
    return timezone


@tool
def search(query: str) -> str:
    """Search the web."""
    return query


async def _stream(model: Any, prompt: Any) -> list[AIMessageChunk]:
    return [chunk async for chunk in model.astream(prompt)]


def _merge(chunks: list[AIMessageChunk]) -> AIMessageChunk:
    merged = chunks[0]
    for chunk in chunks[1:]:
        merged = merged + chunk
    return merged


async def test_offline_echoes_last_human_message() -> None:
    model = OfflineChatModel()
    messages: list[BaseMessage] = [
        SystemMessage("be brief"),
        HumanMessage("first"),
        AIMessage("ok"),
        HumanMessage("hello there"),
    ]

    reply = await model.ainvoke(messages)

    assert reply.content == "[offline model] You said: hello there"
    assert reply.response_metadata == {"model_name": "offline", "finish_reason": "stop"}


async def test_offline_is_deterministic() -> None:
    first = await OfflineChatModel().ainvoke("same input")
    second = await OfflineChatModel().ainvoke("same input")

    assert first.content == second.content
    assert first.usage_metadata == second.usage_metadata


async def test_offline_says_it_is_not_an_llm() -> None:
    model = OfflineChatModel()

    assert model._llm_type == "agent-runtime-offline"
    assert "not a language model" in (OfflineChatModel.__doc__ or "")


async def test_offline_answers_without_human_message() -> None:
    reply = await OfflineChatModel().ainvoke([SystemMessage("rules")])

    assert reply.content == "[offline model] There is no human message to answer."


async def test_offline_streams_word_by_word() -> None:
    chunks = await _stream(OfflineChatModel(), "one two  three")

    assert [chunk.content for chunk in chunks] == [
        "[offline ",
        "model] ",
        "You ",
        "said: ",
        "one ",
        "two  ",
        "three",
    ]
    assert len({chunk.id for chunk in chunks}) == 1
    assert chunks[0].id is not None


async def test_offline_stream_aggregates_to_invoke_reply() -> None:
    model = OfflineChatModel()

    merged = _merge(await _stream(model, "hello world"))
    reply = await model.ainvoke("hello world")

    assert merged.content == reply.content
    assert merged.usage_metadata == reply.usage_metadata
    assert merged.response_metadata == reply.response_metadata


async def test_offline_stream_puts_usage_on_last_chunk_only() -> None:
    chunks = await _stream(OfflineChatModel(), "hello world")

    assert all(chunk.usage_metadata is None for chunk in chunks[:-1])
    assert all(chunk.response_metadata == {} for chunk in chunks[:-1])
    assert chunks[-1].usage_metadata == {"input_tokens": 2, "output_tokens": 6, "total_tokens": 8}
    assert chunks[-1].response_metadata == {"model_name": "offline", "finish_reason": "stop"}


async def test_offline_counts_usage_as_words() -> None:
    messages: list[BaseMessage] = [SystemMessage("two words"), HumanMessage("three more words")]

    reply = await OfflineChatModel().ainvoke(messages)

    # Output: "[offline model] You said: three more words" is 7 words.
    assert reply.usage_metadata == {"input_tokens": 5, "output_tokens": 7, "total_tokens": 12}


async def test_offline_counts_a_changed_message_anew() -> None:
    # Counts are remembered per message object and per conversation prefix; an edited copy of a
    # message, or a message given other content or tool calls outside a remembered prefix, is
    # counted again rather than served a stale count.
    human = HumanMessage("one two")
    ai = AIMessage("three")
    model = OfflineChatModel()
    first = await model.ainvoke([SystemMessage("sys"), human, ai, HumanMessage("x")])
    assert first.usage_metadata is not None and first.usage_metadata["input_tokens"] == 5
    edited = human.model_copy(update={"content": "one two three four"})
    ai.tool_calls = [{"name": "search", "args": {"query": "a b"}, "id": "c1", "type": "tool_call"}]
    second = await model.ainvoke([SystemMessage("sys"), edited, ai, HumanMessage("x")])
    # 1 + 4 + 1 word and its call: 1 + the words of '{"query": "a b"}' (3), + 1.
    assert second.usage_metadata is not None and second.usage_metadata["input_tokens"] == 11


async def test_offline_counts_a_growing_conversation_as_a_whole() -> None:
    model = OfflineChatModel()
    conversation: list[BaseMessage] = []
    for turn in range(5):
        conversation.append(HumanMessage(f"turn {turn} " + "word " * turn))
        reply = await model.ainvoke([SystemMessage("be brief"), *conversation])
        expected = 2 + sum(len(str(m.content).split()) for m in conversation)
        assert reply.usage_metadata is not None
        assert reply.usage_metadata["input_tokens"] == expected
        conversation.append(reply)
    # A prompt that drops the start of the conversation is counted afresh.
    short = await model.ainvoke(conversation[2:])
    assert short.usage_metadata is not None
    assert short.usage_metadata["input_tokens"] == sum(
        len(str(m.content).split()) for m in conversation[2:]
    )


async def test_offline_reports_model_name_in_metadata_and_usage() -> None:
    model = OfflineChatModel(model_name="cheap")

    with get_usage_metadata_callback() as usage:
        reply = await model.ainvoke("hi")
        _merge(await _stream(model, "hi"))

    assert reply.response_metadata["model_name"] == "cheap"
    assert usage.usage_metadata == {
        "cheap": {"input_tokens": 2, "output_tokens": 10, "total_tokens": 12}
    }


async def test_offline_calls_calculator_for_arithmetic() -> None:
    model = OfflineChatModel().bind_tools([calculator, current_time])

    for prompt, expression in [
        ("What is 2 + 3?", "2 + 3"),
        ("calculate 2*3", "2*3"),
        ("compute (1 + 2) ** 3.", "(1 + 2) ** 3"),
    ]:
        reply = await model.ainvoke(prompt)
        assert reply.tool_calls == [
            {
                "name": "calculator",
                "args": {"expression": expression},
                "id": "call_1_0",
                "type": "tool_call",
            }
        ]
        assert reply.content == ""
        assert reply.response_metadata["finish_reason"] == "tool_calls"


async def test_offline_calls_current_time_for_time_word() -> None:
    model = OfflineChatModel().bind_tools([calculator, current_time])

    plain = await model.ainvoke("What time is it?")
    zoned = await model.ainvoke("What's the time in Asia/Tokyo?")

    assert [(call["name"], call["args"]) for call in plain.tool_calls] == [("current_time", {})]
    assert [(call["name"], call["args"]) for call in zoned.tool_calls] == [
        ("current_time", {"timezone": "Asia/Tokyo"})
    ]


async def test_offline_calls_named_tool_with_json_arguments() -> None:
    model = OfflineChatModel().bind_tools([search])

    with_args = await model.ainvoke('please search {"query": "langgraph"}')
    bare = await model.ainvoke("use search")

    assert with_args.tool_calls[0]["args"] == {"query": "langgraph"}
    assert bare.tool_calls[0]["args"] == {}


async def test_offline_calls_several_tools_in_bind_order() -> None:
    model = OfflineChatModel().bind_tools([calculator, current_time])
    messages: list[BaseMessage] = [AIMessage("hi"), HumanMessage("what time is it and 6 / 2?")]

    reply = await model.ainvoke(messages)

    assert [(call["name"], call["id"]) for call in reply.tool_calls] == [
        ("calculator", "call_2_0"),
        ("current_time", "call_2_1"),
    ]


async def test_offline_echoes_when_no_rule_matches_bound_tools() -> None:
    reply = await OfflineChatModel().bind_tools([calculator]).ainvoke("hello")

    assert reply.tool_calls == []
    assert reply.content == "[offline model] You said: hello"


async def test_offline_calls_no_tools_when_none_are_bound() -> None:
    reply = await OfflineChatModel().ainvoke("what is 2 + 3")

    assert reply.tool_calls == []


async def test_offline_streams_tool_calls() -> None:
    model = OfflineChatModel().bind_tools([calculator])

    merged = _merge(await _stream(model, "what is 2 + 3"))

    assert merged.tool_calls == [
        {
            "name": "calculator",
            "args": {"expression": "2 + 3"},
            "id": "call_1_0",
            "type": "tool_call",
        }
    ]
    assert merged.response_metadata["finish_reason"] == "tool_calls"
    # Output counts the call's name and JSON arguments: calculator {"expression": "2 + 3"}.
    assert merged.usage_metadata is not None
    assert merged.usage_metadata["output_tokens"] == 5


async def test_offline_summarises_tool_results() -> None:
    request = AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": "call_1_0"}])
    messages: list[BaseMessage] = [
        HumanMessage("what is 2 + 3"),
        request,
        ToolMessage("5", tool_call_id="call_1_0", name="calculator"),
    ]

    reply = await OfflineChatModel().bind_tools([calculator]).ainvoke(messages)

    assert reply.content == "The result is 5."
    assert reply.tool_calls == []


async def test_offline_summarises_failed_tool_results() -> None:
    messages: list[BaseMessage] = [
        HumanMessage("go"),
        AIMessage("", tool_calls=[{"name": "calculator", "args": {}, "id": "a"}]),
        ToolMessage("bad input", tool_call_id="a", name="calculator", status="error"),
        ToolMessage("7.", tool_call_id="b", name="calculator"),
    ]

    reply = await OfflineChatModel().ainvoke(messages)

    assert reply.content == "The calculator call failed: bad input The result is 7."


async def test_offline_plays_script_in_order() -> None:
    call = {"name": "calculator", "args": {"expression": "1+1"}, "id": "x"}
    model = OfflineChatModel(responses=[AIMessage("", tool_calls=[call]), "two words"])

    first = await model.ainvoke("anything")
    chunks = await _stream(model, "anything")

    assert first.tool_calls[0]["args"] == {"expression": "1+1"}
    assert [chunk.content for chunk in chunks] == ["two ", "words"]
    assert chunks[-1].usage_metadata == {"input_tokens": 1, "output_tokens": 2, "total_tokens": 3}


async def test_offline_script_keeps_given_usage_and_metadata() -> None:
    scripted = AIMessage(
        "cut",
        response_metadata={"finish_reason": "length"},
        usage_metadata={"input_tokens": 10, "output_tokens": 1, "total_tokens": 11},
    )

    reply = await OfflineChatModel(responses=[scripted]).ainvoke("x")

    assert reply.response_metadata == {"model_name": "offline", "finish_reason": "length"}
    assert reply.usage_metadata == {"input_tokens": 10, "output_tokens": 1, "total_tokens": 11}


async def test_offline_script_raises_when_exhausted() -> None:
    model = OfflineChatModel(responses=["only"])
    await model.ainvoke("x")

    with pytest.raises(ValueError) as error:
        await model.ainvoke("x")

    assert str(error.value) == "OfflineChatModel script exhausted after 1 responses"


async def test_offline_script_is_shared_through_bound_tools() -> None:
    model = OfflineChatModel(responses=["a", "b"])

    await model.ainvoke("x")
    reply = await model.bind_tools([calculator]).ainvoke("x")

    assert reply.content == "b"


async def test_offline_delays_between_streamed_chunks() -> None:
    model = OfflineChatModel(responses=["a b c d e"], delay_per_token=0.02)

    started = time.perf_counter()
    chunks = await _stream(model, "x")
    elapsed = time.perf_counter() - started

    assert len(chunks) == 5
    assert elapsed >= 0.08


async def test_offline_stream_can_be_cancelled_mid_reply() -> None:
    model = OfflineChatModel(responses=["a b c d e f g h"], delay_per_token=0.05)
    received: list[str] = []

    async def consume() -> None:
        async for chunk in model.astream("x"):
            received.append(str(chunk.content))

    task = asyncio.create_task(consume())
    await asyncio.sleep(0.12)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task

    assert 0 < len(received) < 8


async def test_offline_sync_invoke_matches_async() -> None:
    model = OfflineChatModel()

    assert model.invoke("sync").content == (await model.ainvoke("sync")).content
    assert "".join(str(chunk.content) for chunk in model.stream("sync")) == (
        "[offline model] You said: sync"
    )
