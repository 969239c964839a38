"""Waiting on and reading runs for the run-control tests: poll until a run or thread reaches a
state, start a slow run, read which run wrote each checkpoint."""

from __future__ import annotations

from collections.abc import Awaitable
from typing import Any

import httpx
from langchain_core.runnables import RunnableConfig
from langgraph_sdk.client import LangGraphClient

from tests.conftest import RunningServer, json_of, until

EMPTY: dict[str, Any] = {"steps": []}
THREE = ["one", "two", "three"]
MISSING = "00000000-0000-4000-8000-000000000000"


async def status_of(client: LangGraphClient, thread_id: str, run_id: str) -> str:
    return (await client.runs.get(thread_id, run_id))["status"]


async def until_status(
    client: LangGraphClient, thread_id: str, run_id: str, *wanted: str, within: float = 5.0
) -> str:
    async def check() -> str | None:
        status = await status_of(client, thread_id, run_id)
        return status if status in wanted else None

    return await until(check, within=within)


async def until_steps(client: LangGraphClient, thread_id: str, steps: list[str]) -> None:
    """Wait until the thread's latest checkpoint holds exactly `steps`."""

    async def check() -> bool:
        state = await client.threads.get_state(thread_id)
        return json_of(state["values"]).get("steps") == steps

    await until(check)


async def thread_status(client: LangGraphClient, thread_id: str) -> str:
    return (await client.threads.get(thread_id))["status"]


async def start_slow(
    client: LangGraphClient, thread_id: str, *, delay: float, **kwargs: Any
) -> dict[str, Any]:
    run = await client.runs.create(
        thread_id, "slow", input=EMPTY, context={"delay": delay}, **kwargs
    )
    return dict(run)


async def checkpoint_run_ids(server: RunningServer, thread_id: str) -> list[str | None]:
    """The `run_id` in the metadata of every checkpoint of the thread, read below HTTP."""
    graph = await server.services().registry.get_graph("slow")
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    return [
        (state.metadata or {}).get("run_id") async for state in graph.aget_state_history(config)
    ]


async def is_(value: Awaitable[str], wanted: str) -> bool:
    return await value == wanted


def body_of(response: httpx.Response) -> dict[str, Any]:
    """An error body, after checking that it is JSON and not an event stream."""
    assert response.headers["content-type"].startswith("application/json")
    found: dict[str, Any] = response.json()
    return found


async def until_busy(client: LangGraphClient, thread_id: str) -> None:
    """Wait until the thread's run has started (the thread is `busy`)."""
    await until(lambda: is_(thread_status(client, thread_id), "busy"))
