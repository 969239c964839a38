"""Tests for the example graphs, loaded by path as the runtime does, over a real SQLite saver."""

from __future__ import annotations

import importlib.util
import itertools
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph.pregel import Pregel
from langgraph.types import Command

GRAPHS = Path(__file__).resolve().parents[2] / "graphs"
_module_numbers = itertools.count()


def _load_module(filename: str) -> ModuleType:
    # Deliberately not registered in sys.modules: the example files must not depend on it.
    spec = importlib.util.spec_from_file_location(
        f"example_{Path(filename).stem}_{next(_module_numbers)}", GRAPHS / filename
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _thread(thread_id: str = "t1", **configurable: Any) -> RunnableConfig:
    return {"configurable": {"thread_id": thread_id, **configurable}}


@pytest.fixture
async def saver(tmp_path: Path) -> AsyncIterator[AsyncSqliteSaver]:
    async with AsyncSqliteSaver.from_conn_string(str(tmp_path / "checkpoints.sqlite")) as saver:
        yield saver


async def _graph(name: str, saver: AsyncSqliteSaver) -> Pregel[Any, Any, Any, Any]:
    graph: Pregel[Any, Any, Any, Any] = _load_module(f"{name}.py").graph
    assert graph.checkpointer is None
    return graph.copy(update={"checkpointer": saver})


async def test_chat_replies_with_default_offline_model(saver: AsyncSqliteSaver) -> None:
    chat = await _graph("chat", saver)

    result = await chat.ainvoke({"messages": [HumanMessage("hello")]}, _thread())

    reply = result["messages"][-1]
    assert isinstance(reply, AIMessage)
    assert reply.content == "[offline model] You said: hello"
    assert reply.response_metadata["model_name"] == "echo"
    assert len((await chat.aget_state(_thread())).values["messages"]) == 2


async def test_chat_takes_model_from_context(saver: AsyncSqliteSaver) -> None:
    chat = await _graph("chat", saver)

    result = await chat.ainvoke(
        {"messages": [HumanMessage("hi")]}, _thread(), context={"model": "offline:other"}
    )

    assert result["messages"][-1].response_metadata["model_name"] == "other"


async def test_chat_takes_model_from_configurable(saver: AsyncSqliteSaver) -> None:
    chat = await _graph("chat", saver)

    result = await chat.ainvoke(
        {"messages": [HumanMessage("hi")]}, _thread(model="offline:configured")
    )

    assert result["messages"][-1].response_metadata["model_name"] == "configured"


async def test_chat_prefers_context_over_configurable(saver: AsyncSqliteSaver) -> None:
    chat = await _graph("chat", saver)

    result = await chat.ainvoke(
        {"messages": [HumanMessage("hi")]},
        _thread(model="offline:configured"),
        context={"model": "offline:context"},
    )

    assert result["messages"][-1].response_metadata["model_name"] == "context"


async def test_chat_sends_system_prompt_without_storing_it(saver: AsyncSqliteSaver) -> None:
    chat = await _graph("chat", saver)

    result = await chat.ainvoke(
        {"messages": [HumanMessage("hi")]},
        _thread(),
        context={"system_prompt": "Answer in three words", "current_utc": "2026-01-01T00:00:00"},
    )

    # The offline model counts input words: "hi" (1), the prompt (4) and the time line (4).
    assert result["messages"][-1].usage_metadata["input_tokens"] == 9
    assert [type(message) for message in result["messages"]] == [HumanMessage, AIMessage]


def test_chat_system_prompt_carries_time_zone_and_language() -> None:
    build = _load_module("chat.py").build_system_prompt
    now = datetime(2026, 11, 21, 7, 30, tzinfo=UTC)
    assert build(None, None, now) == "Current time (UTC): 2026-11-21T07:30:00+00:00"
    from_thread = build(None, {"timezone": "Asia/Tokyo", "language": "Japanese"}, now)
    assert from_thread == (
        "Current time (UTC): 2026-11-21T07:30:00+00:00\n"
        "The user's time zone: Asia/Tokyo (local time 2026-11-21T16:30+09:00)\n"
        "Answer in this language: Japanese"
    )
    context = {"system_prompt": "Be brief.", "timezone": "Europe/Paris", "language": "French"}
    assert build(context, {"timezone": "Asia/Tokyo", "language": "Japanese"}, now) == (
        "Be brief.\n"
        "Current time (UTC): 2026-11-21T07:30:00+00:00\n"
        "The user's time zone: Europe/Paris (local time 2026-11-21T08:30+01:00)\n"
        "Answer in this language: French"
    )
    assert build({"timezone": "Mars/Olympus"}, None, now).endswith(
        "The user's time zone: Mars/Olympus (unknown zone)"
    )


async def test_chat_streams_reply_token_by_token(saver: AsyncSqliteSaver) -> None:
    chat = await _graph("chat", saver)
    chunks: list[AIMessageChunk] = []
    stream: AsyncIterator[Any] = chat.astream(
        {"messages": [HumanMessage("stream these words")]}, _thread(), stream_mode="messages"
    )

    async for message, metadata in stream:
        assert metadata["langgraph_node"] == "model"
        assert isinstance(message, AIMessageChunk)
        chunks.append(message)

    assert len(chunks) > 1
    assert "".join(str(chunk.content) for chunk in chunks) == (
        "[offline model] You said: stream these words"
    )
    stored = (await chat.aget_state(_thread())).values["messages"][-1]
    assert {chunk.id for chunk in chunks} == {stored.id}


async def test_agent_answers_arithmetic_with_calculator(saver: AsyncSqliteSaver) -> None:
    agent = await _graph("agent", saver)

    result = await agent.ainvoke({"messages": [HumanMessage("what is 2 + 3")]}, _thread())

    _, request, tool_result, answer = result["messages"]
    assert request.tool_calls[0]["name"] == "calculator"
    assert request.tool_calls[0]["args"] == {"expression": "2 + 3"}
    assert isinstance(tool_result, ToolMessage)
    assert (tool_result.content, tool_result.status) == ("5", "success")
    assert answer.content == "The result is 5."


async def test_agent_reports_tool_errors_as_error_messages(saver: AsyncSqliteSaver) -> None:
    agent = await _graph("agent", saver)

    result = await agent.ainvoke({"messages": [HumanMessage("calculate 1/0")]}, _thread())

    tool_result = result["messages"][2]
    assert (tool_result.content, tool_result.status) == ('"1/0" divides by zero', "error")
    assert result["messages"][-1].content == 'The calculator call failed: "1/0" divides by zero'


async def test_agent_tells_time_in_named_zone(saver: AsyncSqliteSaver) -> None:
    agent = await _graph("agent", saver)

    result = await agent.ainvoke(
        {"messages": [HumanMessage("what time is it in Asia/Tokyo")]}, _thread()
    )

    told = datetime.fromisoformat(str(result["messages"][2].content))
    assert told.utcoffset() is not None
    assert told.utcoffset().total_seconds() == 9 * 3600  # type: ignore[union-attr]


async def test_approval_interrupts_with_a_review_request(saver: AsyncSqliteSaver) -> None:
    approval = await _graph("approval", saver)

    await approval.ainvoke({"messages": [HumanMessage("what is 6 * 7")]}, _thread())

    state = await approval.aget_state(_thread())
    assert state.next == ("approve",)
    assert [interrupt.value for interrupt in state.interrupts] == [
        {
            "action_requests": [
                {
                    "name": "calculator",
                    "args": {"expression": "6 * 7"},
                    "description": 'Tool call calculator with {"expression": "6 * 7"}',
                }
            ],
            "review_configs": [
                {
                    "action_name": "calculator",
                    "allowed_decisions": ["approve", "edit", "reject", "respond"],
                }
            ],
        }
    ]
    assert state.tasks[0].interrupts == state.interrupts


@pytest.mark.parametrize(
    "answer",
    [
        {"decisions": [{"type": "approve"}]},
        [{"type": "accept", "args": None}],
        True,
        "approve",
        " Approve ",
        {"approved": True},
    ],
)
async def test_approval_runs_tools_once_approved(saver: AsyncSqliteSaver, answer: Any) -> None:
    approval = await _graph("approval", saver)
    await approval.ainvoke({"messages": [HumanMessage("what is 6 * 7")]}, _thread())

    result = await approval.ainvoke(Command(resume=answer), _thread())

    assert result["messages"][2].content == "42"
    assert result["messages"][-1].content == "The result is 42."
    assert (await approval.aget_state(_thread())).next == ()


EDITED = {"expression": "6 * 8"}


@pytest.mark.parametrize(
    "answer",
    [
        {"decisions": [{"type": "edit", "edited_action": {"name": "calculator", "args": EDITED}}]},
        [{"type": "edit", "args": {"action": "calculator", "args": EDITED}}],
    ],
)
async def test_approval_runs_an_edited_call(saver: AsyncSqliteSaver, answer: Any) -> None:
    approval = await _graph("approval", saver)
    await approval.ainvoke({"messages": [HumanMessage("what is 6 * 7")]}, _thread())

    result = await approval.ainvoke(Command(resume=answer), _thread())

    request, tool_result = result["messages"][1], result["messages"][2]
    assert request.tool_calls[0]["args"] == {"expression": "6 * 8"}
    assert (tool_result.content, tool_result.tool_call_id) == ("48", request.tool_calls[0]["id"])
    assert result["messages"][-1].content == "The result is 48."


@pytest.mark.parametrize(
    "answer",
    [
        {"decisions": [{"type": "reject"}]},
        [{"type": "ignore", "args": None}],
        False,
        "reject",
        "yes",
        {"approved": "true"},
        0,
        {"decisions": [{"type": "edit", "edited_action": {"name": "rm", "args": {}}}]},
    ],
)
async def test_approval_rejects_anything_else(saver: AsyncSqliteSaver, answer: Any) -> None:
    approval = await _graph("approval", saver)
    await approval.ainvoke({"messages": [HumanMessage("what is 6 * 7")]}, _thread())

    result = await approval.ainvoke(Command(resume=answer), _thread())

    rejection = result["messages"][2]
    assert isinstance(rejection, ToolMessage)
    assert rejection.content == "Rejected by a human: calculator was not run."
    assert (rejection.status, rejection.tool_call_id) == ("error", "call_1_0")
    assert result["messages"][-1].content == (
        "The calculator call failed: Rejected by a human: calculator was not run."
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"decisions": [{"type": "reject", "message": "too costly"}]},
        {"approved": False, "reason": "too costly"},
    ],
)
async def test_approval_rejection_carries_reason(saver: AsyncSqliteSaver, answer: Any) -> None:
    approval = await _graph("approval", saver)
    await approval.ainvoke({"messages": [HumanMessage("what is 6 * 7")]}, _thread())

    result = await approval.ainvoke(Command(resume=answer), _thread())

    assert result["messages"][2].content == (
        "Rejected by a human: calculator was not run. Reason: too costly"
    )


@pytest.mark.parametrize(
    "answer",
    [
        {"decisions": [{"type": "respond", "message": "about 40"}]},
        [{"type": "response", "args": "about 40"}],
    ],
)
async def test_approval_response_stands_in_for_the_tool(
    saver: AsyncSqliteSaver, answer: Any
) -> None:
    approval = await _graph("approval", saver)
    await approval.ainvoke({"messages": [HumanMessage("what is 6 * 7")]}, _thread())

    result = await approval.ainvoke(Command(resume=answer), _thread())

    response = result["messages"][2]
    assert isinstance(response, ToolMessage)
    assert (response.content, response.status) == ("about 40", "success")
    assert result["messages"][-1].content == "The result is about 40."


async def test_approval_decides_each_call_of_a_batch(saver: AsyncSqliteSaver) -> None:
    approval = await _graph("approval", saver)
    ask = "what is 2 + 2 and what time is it in UTC"
    await approval.ainvoke({"messages": [HumanMessage(ask)]}, _thread())
    state = await approval.aget_state(_thread())
    [pending] = state.interrupts
    assert [r["name"] for r in pending.value["action_requests"]] == ["calculator", "current_time"]

    decisions = [{"type": "approve"}, {"type": "reject", "message": "not now"}]
    result = await approval.ainvoke(Command(resume={"decisions": decisions}), _thread())

    results = {m.name: m for m in result["messages"] if isinstance(m, ToolMessage)}
    assert results["calculator"].content == "4"
    assert results["current_time"].content == (
        "Rejected by a human: current_time was not run. Reason: not now"
    )
    assert results["current_time"].status == "error"


async def test_approval_uses_model_from_context(saver: AsyncSqliteSaver) -> None:
    approval = await _graph("approval", saver)

    result = await approval.ainvoke(
        {"messages": [HumanMessage("hello")]}, _thread(), context={"model": "offline:gate"}
    )

    assert result["messages"][-1].response_metadata["model_name"] == "gate"


@pytest.mark.parametrize(
    ("expression", "value"),
    [("2 + 3", "5"), ("-(2 ** 3) // 3", "-3"), ("7 % 4 * 1.5", "4.5"), ("6 / 3", "2")],
)
async def test_calculator_evaluates_arithmetic(expression: str, value: str) -> None:
    tools = _load_module("tools.py")

    assert await tools.calculator.ainvoke({"expression": expression}) == value


@pytest.mark.parametrize(
    ("expression", "error"),
    [
        (
            "__import__('os').getcwd()",
            "\"__import__('os').getcwd()\" is not arithmetic; use numbers, + - * / // % **, "
            "unary + and -, and parentheses",
        ),
        (
            "2 +",
            '"2 +" is not arithmetic; use numbers, + - * / // % **, unary + and -, and parentheses',
        ),
        ("9 ** 9 ** 9", '"9 ** 9 ** 9" is too large to compute'),
        ("1" * 201, "The expression is longer than 200 characters"),
    ],
)
async def test_calculator_refuses_what_is_not_safe_arithmetic(expression: str, error: str) -> None:
    tools = _load_module("tools.py")

    assert await tools.calculator.ainvoke({"expression": expression}) == error


async def test_current_time_names_unknown_zone() -> None:
    tools = _load_module("tools.py")

    message = await tools.current_time.ainvoke(
        {"type": "tool_call", "name": "current_time", "args": {"timezone": "Mars/Base"}, "id": "c"}
    )

    assert message.status == "error"
    assert message.content == (
        'Unknown timezone "Mars/Base"; use an IANA name such as "Europe/Paris" or "UTC"'
    )


async def test_examples_publish_context_schema() -> None:
    schemas = {
        name: _load_module(f"{name}.py").graph.get_context_jsonschema()
        for name in ["chat", "agent", "approval"]
    }

    assert {name: sorted(schema["properties"]) for name, schema in schemas.items()} == {
        "chat": ["current_utc", "language", "model", "system_prompt", "timezone"],
        "agent": ["model"],
        "approval": ["model"],
    }
