"""LangSmith tracing as LangChain does it: on when its variables are set, with nothing of ours
turning it off; a run's `langsmith_tracer` (the SDK's `langsmith_tracing`) sets the project and
dataset example of that run's tracer; refused, saying why, when tracing is off. The fixture graph
reports the tracers its run was given; nothing reaches LangSmith (its endpoint is a closed port,
and the assertions are on the tracer's settings)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest
from langsmith import utils as langsmith_utils

from tests.conftest import Database, RunningServer, json_of, sdk_client
from tests.observability.test_metrics import observability_config


def _forget_environment() -> None:
    # langsmith caches what it read of the environment.
    cached: Any = langsmith_utils.get_env_var
    cached.cache_clear()


@pytest.fixture
def langsmith_on(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setenv("LANGSMITH_TRACING", "true")
    monkeypatch.setenv("LANGSMITH_API_KEY", "lsv2-test-not-a-key")
    monkeypatch.setenv("LANGSMITH_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("LANGSMITH_PROJECT", "from-the-environment")
    # Sampled out: the tracer is attached and configured, and sends nothing.
    monkeypatch.setenv("LANGSMITH_TRACING_SAMPLING_RATE", "0")
    _forget_environment()
    yield
    _forget_environment()


@pytest.fixture
async def served(database: Database) -> AsyncIterator[RunningServer]:
    running = await RunningServer(observability_config(database, metrics=False)).start()
    try:
        yield running
    finally:
        await running.stop()


async def test_runs_trace_to_langsmith_when_its_variables_say_so(
    langsmith_on: None, served: RunningServer
) -> None:
    example = str(uuid.uuid4())
    async with sdk_client(served) as sdk:
        thread = await sdk.threads.create()
        plain = json_of(await sdk.runs.wait(thread["thread_id"], "traced", input={}))
        routed = json_of(
            await sdk.runs.wait(
                thread["thread_id"],
                "traced",
                input={},
                langsmith_tracing={"project_name": "evals", "example_id": example},
            )
        )
    # LangChain's own tracer, untouched: it files under LANGSMITH_PROJECT (None: read when sent).
    [default] = plain["tracers"]
    assert default["project_name"] in (None, "from-the-environment")
    assert default["example_id"] is None
    assert routed["tracers"] == [{"project_name": "evals", "example_id": example}]


async def test_langsmith_tracer_is_refused_when_tracing_is_off(
    monkeypatch: pytest.MonkeyPatch, served: RunningServer
) -> None:
    for name in ("LANGSMITH_TRACING", "LANGCHAIN_TRACING_V2", "LANGSMITH_TRACING_V2"):
        monkeypatch.delenv(name, raising=False)
    _forget_environment()
    async with httpx.AsyncClient(base_url=served.url) as http:
        thread = (await http.post("/threads", json={})).json()
        response = await http.post(
            f"/threads/{thread['thread_id']}/runs",
            json={"assistant_id": "traced", "langsmith_tracer": {"project_name": "evals"}},
        )
    assert response.status_code == 422
    assert response.json()["code"] == "unsupported_field"
    assert "LANGSMITH_TRACING=true" in response.json()["detail"]


async def test_langsmith_tracer_fields_are_validated(
    langsmith_on: None, served: RunningServer
) -> None:
    async with httpx.AsyncClient(base_url=served.url) as http:
        response = await http.post(
            "/runs/wait",
            json={"assistant_id": "traced", "langsmith_tracer": {"example_id": "not-a-uuid"}},
        )
        unknown = await http.post(
            "/runs/wait", json={"assistant_id": "traced", "langsmith_tracer": {"project": "x"}}
        )
    assert response.status_code == 422
    assert "example_id" in response.json()["detail"]
    assert unknown.status_code == 422
