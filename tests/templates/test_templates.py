"""Projects laid out like LangChain's templates, served unchanged: a `src/` package named by
`"dependencies": ["."]`, a context schema with defaults, and an `"env": ".env"` that does not
exist (the templates ship `.env.example` only)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ROOT, json_of, sdk_client, served

TEMPLATES = ROOT / "tests" / "fixtures" / "templates"


@asynccontextmanager
async def _client(project: str, database: Path) -> AsyncIterator[LangGraphClient]:
    config = TEMPLATES / project / "langgraph.json"
    async with served(config, database) as server, sdk_client(server) as sdk:
        yield sdk


@pytest.fixture
async def react_agent(database: Path) -> AsyncIterator[LangGraphClient]:
    assert not (TEMPLATES / "react_agent" / ".env").exists()
    async with _client("react_agent", database) as sdk:
        yield sdk


@pytest.fixture
async def new_project(database: Path) -> AsyncIterator[LangGraphClient]:
    async with _client("new_project", database) as sdk:
        yield sdk


@pytest.fixture
async def memory_agent(database: Path) -> AsyncIterator[LangGraphClient]:
    async with _client("memory_agent", database) as sdk:
        yield sdk


def _ask(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def test_react_agent_runs_without_context_on_its_defaults(
    react_agent: LangGraphClient,
) -> None:
    thread = await react_agent.threads.create()

    result = await react_agent.runs.wait(thread["thread_id"], "agent", input=_ask("hello"))

    assert isinstance(result, dict)
    reply = result["messages"][-1]
    assert reply["content"] == "[offline model] You said: hello"
    assert reply["response_metadata"]["model_name"] == "offline"
    [run] = await react_agent.runs.list(thread["thread_id"])
    assert (run["status"], json_of(run)["error"]) == ("success", None)


async def test_react_agent_context_from_run_assistant_and_environment(
    react_agent: LangGraphClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def model_name(assistant_id: str = "agent", context: dict[str, str] | None = None) -> str:
        result = await react_agent.runs.wait(None, assistant_id, input=_ask("hi"), context=context)
        assert isinstance(result, dict)
        name: str = result["messages"][-1]["response_metadata"]["model_name"]
        return name

    assert await model_name(context={}) == "offline"
    assert await model_name(context={"model": "offline/from-run"}) == "from-run"
    assistant = await react_agent.assistants.create(
        "agent", context={"model": "offline/from-assistant"}
    )
    assert await model_name(assistant["assistant_id"]) == "from-assistant"
    override = {"model": "offline/from-run"}
    assert await model_name(assistant["assistant_id"], context=override) == "from-run"
    # The template's __post_init__ reads MODEL when the field kept its default.
    monkeypatch.setenv("MODEL", "offline/from-env")
    assert await model_name() == "from-env"


async def test_react_agent_tool_reads_the_context(react_agent: LangGraphClient) -> None:
    result = await react_agent.runs.wait(
        None, "agent", input=_ask('search {"query": "langgraph"}'), context={}
    )

    assert isinstance(result, dict)
    tool_result = result["messages"][2]
    assert tool_result["type"] == "tool"
    assert "langgraph is documented here." in tool_result["content"]
    assert result["messages"][-1]["content"].startswith("The result is ")


async def test_new_project_typed_dict_context(new_project: LangGraphClient) -> None:
    without = await new_project.runs.wait(None, "agent", input={"changeme": "x"})
    given = await new_project.runs.wait(
        None, "agent", input={}, context={"my_configurable_param": "blue"}
    )

    assert without == {"changeme": "output from call_model. Configured with None"}
    assert given == {"changeme": "output from call_model. Configured with blue"}


async def test_memory_agent_stores_and_recalls_by_meaning(memory_agent: LangGraphClient) -> None:
    ada = {"user_id": "ada"}
    for content in ("User drinks green tea every morning", "User plays chess on weekends"):
        upsert = f'upsert_memory {{"content": "{content}", "context": "said in chat"}}'
        await memory_agent.runs.wait(None, "memory_agent", input=_ask(upsert), context=ada)

    searched = await memory_agent.store.search_items(["memories", "ada"], query="green tea")
    found = [json_of(item) for item in searched["items"]]
    assert [item["value"]["content"] for item in found] == [
        "User drinks green tea every morning",
        "User plays chess on weekends",
    ]
    assert found[0]["score"] > found[1]["score"]

    result = await memory_agent.runs.wait(
        None, "memory_agent", input=_ask("do I drink green tea every morning"), context=ada
    )
    assert isinstance(result, dict)
    assert result["recalled"][0] == found[0]["key"]
    stranger = await memory_agent.runs.wait(
        None,
        "memory_agent",
        input=_ask("do I drink green tea every morning"),
        context={"user_id": "bob"},
    )
    assert isinstance(stranger, dict)
    assert stranger["recalled"] == []
