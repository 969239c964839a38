"""Observability through the real CLI: `serve --workers 2` answers every scrape with the counters
of both processes added up (and the live gauges of each), and `--log-format json` prints a failed
run's lines as JSON carrying its ids and its error, and one access line a request with its
duration."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import httpx

from tests.conftest import ROOT, Database
from tests.observability.test_metrics import QUESTION, Samples, parse, value
from tests.runs.test_crash_recovery import ServerProcess, _until

CONFIG = ROOT / "tests" / "fixtures" / "observability" / "langgraph.json"
RUNS = 6


async def _scrape_fresh(url: str) -> Samples:
    # A new connection each time, so the scrapes land on either process.
    async with httpx.AsyncClient(base_url=url, timeout=10) as http:
        response = await http.get("/metrics")
        assert response.status_code == 200, response.text
        return parse(response.text)


async def test_serve_workers_add_up_the_metrics_of_every_process(
    tmp_path: Path, database: Database
) -> None:
    server = ServerProcess(tmp_path, database, config=CONFIG, args=("--workers", "2"))
    client = await server.start()
    try:
        for _ in range(RUNS):
            thread = await client.threads.create()
            await client.runs.wait(thread["thread_id"], "agent", input=QUESTION)
        pids: set[str] = set()
        for _ in range(10):
            samples = await _scrape_fresh(server.url)
            assert value(samples, "runs_created_total", graph="agent") == RUNS
            assert value(samples, "runs_finished_total", graph="agent", status="success") == RUNS
            count = value(samples, "run_duration_seconds_count", graph="agent", status="success")
            assert count == RUNS
            # Each live process reports its own free slots, labelled with its pid.
            free = {
                dict(labels)["pid"]: sample
                for (name, labels), sample in samples.items()
                if name == "agent_runtime_run_slots_free"
            }
            pids |= set(free)
        assert len(pids) == 2, pids
    finally:
        await server.terminate()


def _json_lines(output: list[str]) -> list[dict[str, Any]]:
    found = []
    for line in output:
        if line.startswith("{"):
            found.append(json.loads(line))
    return found


async def test_json_logs_carry_a_failed_runs_ids_and_error(
    tmp_path: Path, database: Database
) -> None:
    server = ServerProcess(tmp_path, database, config=CONFIG, args=("--log-format", "json"))
    client = await server.start()
    try:
        thread = await client.threads.create()
        await client.runs.wait(
            thread["thread_id"], "failing", input={"steps": []}, raise_error=False
        )
        [run] = await client.runs.list(thread["thread_id"])

        async def ended() -> bool:
            return any(line.get("event") == "run_finished" for line in _json_lines(server.output))

        await _until(ended, "the run's end line")
    finally:
        await server.terminate()
    lines = _json_lines(server.output)
    ids = {
        "run_id": run["run_id"],
        "thread_id": thread["thread_id"],
        "assistant_id": run["assistant_id"],
        "graph_id": "failing",
    }
    mine = [line for line in lines if line.get("run_id") == run["run_id"]]
    for line in mine:
        assert {key: line.get(key) for key in ids} == ids, line
    [failed] = [line for line in mine if line["level"] == "error"]
    assert failed["logger"] == "agent_runtime.runs"
    assert failed["error"]["type"] == "ValueError"
    assert failed["error"]["message"] == "the fixture graph failed on purpose"
    assert "Traceback" in failed["error"]["traceback"]
    [started] = [line for line in mine if line.get("event") == "run_started"]
    assert started["attempt"] == 1
    [finished] = [line for line in mine if line.get("event") == "run_finished"]
    assert finished["status"] == "error"
    assert finished["duration_ms"] > 0
    assert finished["run_error"] == "ValueError: the fixture graph failed on purpose"
    # uvicorn's access lines are JSON too, one a request, with how long its response took.
    access = [line for line in lines if line["logger"] == "uvicorn.access"]
    assert any(
        line["method"] == "POST" and line["path"] == "/threads" and line["status"] == 200
        for line in access
    )
    wait_path = f"/threads/{thread['thread_id']}/runs/wait"
    [waited] = [line for line in access if line["path"] == wait_path]
    assert (waited["method"], waited["status"]) == ("POST", 200)
    assert isinstance(waited["duration_ms"], float) and waited["duration_ms"] > 0
