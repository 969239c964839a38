"""`GET /metrics` after known runs on a real server, through langgraph_sdk: counts by graph
and status, tokens and cost by model (the offline model's, priced in the fixture), a histogram's
count, stream and HTTP series by route template; off unless asked for; behind the API key."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from agent_runtime.config import RuntimeConfig, load_config
from tests.conftest import ROOT, Database, RunningServer, example_config, json_of, sdk_client, until

CONFIG = ROOT / "tests" / "fixtures" / "observability" / "langgraph.json"
QUESTION: dict[str, Any] = {"messages": [{"role": "user", "content": "what is 2 + 3"}]}
Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def observability_config(database: Database, **changes: Any) -> RuntimeConfig:
    config = load_config(CONFIG, database=database, environ={})
    return replace(config, **{"metrics": True, **changes})


async def scrape(http: httpx.AsyncClient, **headers: str) -> Samples:
    response = await http.get("/metrics", headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return parse(response.text)


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    """The sample with exactly these labels, or None."""
    return samples.get((f"agent_runtime_{name}", frozenset(labels.items())))


@pytest.fixture
async def metered(database: Database) -> AsyncIterator[RunningServer]:
    running = await RunningServer(observability_config(database)).start()
    try:
        yield running
    finally:
        await running.stop()


async def test_metrics_count_runs_tokens_streams_and_requests(metered: RunningServer) -> None:
    async with sdk_client(metered) as sdk, httpx.AsyncClient(base_url=metered.url) as http:
        usages: list[Mapping[str, Any]] = []
        for _ in range(2):
            thread = await sdk.threads.create()
            await sdk.runs.wait(thread["thread_id"], "agent", input=QUESTION)
            [run] = await sdk.runs.list(thread["thread_id"])
            usages.append(json_of(run)["usage"])
        thread = await sdk.threads.create()
        events = [
            part.event
            async for part in sdk.runs.stream(thread["thread_id"], "agent", input=QUESTION)
        ]
        [run] = await sdk.runs.list(thread["thread_id"])
        usages.append(json_of(run)["usage"])
        failing = await sdk.threads.create()
        await sdk.runs.wait(failing["thread_id"], "failing", input={"steps": []}, raise_error=False)

        wait_route = {"method": "POST", "route": "/threads/{thread_id}/runs/wait"}

        async def waits_counted() -> Samples | None:
            found = await scrape(http)
            return (
                found
                if value(found, "http_requests_total", **wait_route, status="200") == 3
                else None
            )

        samples = await until(waits_counted)

    assert value(samples, "runs_created_total", graph="agent") == 3
    assert value(samples, "runs_created_total", graph="failing") == 1
    assert value(samples, "runs_started_total", graph="agent") == 3
    assert value(samples, "runs_finished_total", graph="agent", status="success") == 3
    assert value(samples, "runs_finished_total", graph="failing", status="error") == 1
    assert value(samples, "run_duration_seconds_count", graph="agent", status="success") == 3
    assert value(samples, "run_queue_wait_seconds_count", graph="agent") == 3
    # The offline model reports itself as "echo"; the fixture prices it.
    echo = [usage["by_model"]["echo"] for usage in usages]
    inputs = sum(used["input_tokens"] for used in echo)
    outputs = sum(used["output_tokens"] for used in echo)
    assert inputs > 0
    assert value(samples, "model_tokens_total", model="echo", direction="input") == inputs
    assert value(samples, "model_tokens_total", model="echo", direction="output") == outputs
    cost = value(samples, "model_cost_usd_total", model="echo")
    assert cost == pytest.approx(sum(used["cost_usd"] for used in echo))
    assert cost == pytest.approx((inputs * 2.0 + outputs * 4.0) / 1_000_000)
    # One stream: its events as the client read them.
    assert value(samples, "stream_events_sent_total", event="metadata") == 1
    assert value(samples, "stream_events_sent_total", event="values") == events.count("values")
    assert value(samples, "streams_open") == 0
    assert value(samples, "runs_pending") == 0
    assert value(samples, "runs_active") == 0
    assert value(samples, "run_slots_free") == 10
    assert value(samples, "http_request_duration_seconds_count", **wait_route) == 3
    routes = {dict(labels)["route"] for name, labels in samples if "http_requests" in name}
    assert "/threads" in routes
    uuid = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}")
    assert not [route for route in routes if uuid.search(route)]


async def test_metrics_label_unknown_paths_without_the_path(metered: RunningServer) -> None:
    async with httpx.AsyncClient(base_url=metered.url) as http:
        assert (await http.get("/no/such/3f1e2d4c-0000-0000-0000-000000000000")).status_code == 404

        async def counted() -> float | None:
            found = await scrape(http)
            return value(
                found, "http_requests_total", method="GET", route="unmatched", status="404"
            )

        assert await until(counted) == 1


async def test_metrics_queue_depth_counts_pending_runs(database: Database) -> None:
    # An API-only process queues runs and never executes them.
    running = await RunningServer(observability_config(database, role="api")).start()
    try:
        async with sdk_client(running) as sdk, httpx.AsyncClient(base_url=running.url) as http:
            for _ in range(2):
                thread = await sdk.threads.create()
                await sdk.runs.create(thread["thread_id"], "agent", input=QUESTION)
            samples = await scrape(http)
    finally:
        await running.stop()
    assert value(samples, "runs_pending") == 2
    assert value(samples, "runs_created_total", graph="agent") == 2
    assert value(samples, "runs_started_total", graph="agent") is None
    # No slots in a process that executes nothing.
    assert value(samples, "run_slots_free") == 0


async def test_metrics_are_off_unless_asked_for(server: RunningServer) -> None:
    assert server.config.metrics is None
    async with httpx.AsyncClient(base_url=server.url) as http:
        response = await http.get("/metrics")
    assert response.status_code == 404


async def test_metrics_need_the_api_key(database: Database, tmp_path: Path) -> None:
    config = replace(example_config(database), metrics=True, api_key="secret")
    running = await RunningServer(config).start()
    try:
        async with httpx.AsyncClient(base_url=running.url) as http:
            refused = await http.get("/metrics")
            assert refused.status_code == 401
            assert refused.json()["code"] == "unauthorized" or "x-api-key" in refused.text
            samples = await scrape(http, **{"x-api-key": "secret"})
    finally:
        await running.stop()
    assert value(samples, "http_requests_total", method="GET", route="/metrics", status="401") == 1
