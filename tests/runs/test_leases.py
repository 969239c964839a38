"""Leases between real `agent-runtime serve` processes on one SQLite file: a server started
beside a live one leaves its runs alone, and a run that kills its server in every attempt ends
`error` while the runs beside it finish. The crash fixture's lease is 1 s."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.config import config_from_dict
from agent_runtime.errors import ConfigError
from tests.conftest import Database, json_of
from tests.runs.test_crash_recovery import (
    CRASH_CONFIG,
    STEPS,
    ServerProcess,
    _ended,
    _history,
    _labelled,
    _steps,
    _until,
)

EXHAUSTED = (
    "RunAttemptsExhausted: The run did not finish in 3 attempts; the server stopped during "
    "each of them"
)


@pytest.mark.timeout(90)
async def test_a_second_server_leaves_the_first_ones_running_run_alone(
    tmp_path: Path, database: Database
) -> None:
    first, second = ServerProcess(tmp_path, database), ServerProcess(tmp_path, database)
    try:
        client = await first.start()
        thread_id = (await client.threads.create())["thread_id"]
        # About 4.6 s: several leases (1 s) pass while both servers are up.
        context: dict[str, Any] = {"first_delay": 0.1, "delay": 1.5, "label": "a:"}
        run = await client.runs.create(thread_id, "steps", input={"steps": []}, context=context)

        async def started() -> bool:
            return bool(await _steps(client, thread_id))

        await _until(started, "the run to checkpoint its first step")
        other = await second.start()

        async def ended_or_half_done() -> bool:
            found = await other.runs.get(thread_id, run["run_id"])
            # The second server sees it running under its first attempt, never re-queued.
            assert (found["status"], json_of(found)["attempt"]) in (
                ("running", 1),
                ("success", 1),
            )
            return found["status"] == "success" or len(await _steps(other, thread_id)) >= 3

        await _until(ended_or_half_done, "the run to pass its third step")
        ended = await _ended(client, thread_id, run["run_id"])
        assert (ended["status"], ended["attempt"], ended["error"]) == ("success", 1, None)
        assert await _steps(other, thread_id) == _labelled("a:", [1] * len(STEPS))
        # One checkpoint per step plus the input ones: no step ran twice, no fork.
        history = await _history(other, thread_id)
        assert len(history) == len(STEPS) + 2
        assert {c["metadata"].get("run_attempt") for c in history} == {1}
    finally:
        await second.kill()
        await first.kill()


@pytest.mark.timeout(120)
async def test_a_poison_run_ends_error_and_the_runs_beside_it_succeed(
    tmp_path: Path, database: Database
) -> None:
    server = ServerProcess(tmp_path, database)
    try:
        client = await server.start()
        healthy = []
        for i in range(5):
            thread_id = (await client.threads.create())["thread_id"]
            context: dict[str, Any] = {"first_delay": 0.1, "delay": 0.5, "label": f"{i}:"}
            run = await client.runs.create(thread_id, "steps", input={"steps": []}, context=context)
            healthy.append((thread_id, run["run_id"]))
        poison_thread = (await client.threads.create())["thread_id"]
        poison = await client.runs.create(
            poison_thread, "steps", input={"steps": []}, context={"die_after": 1.0}
        )
        for _ in range(3):
            assert await server.exited() == 70
            client = await server.start()

        ended = await _ended(client, poison_thread, poison["run_id"])
        assert (ended["status"], ended["attempt"], ended["error"]) == ("error", 4, EXHAUSTED)
        assert await _steps(client, poison_thread) == []
        for i, (thread_id, run_id) in enumerate(healthy):
            ended = await _ended(client, thread_id, run_id)
            # Each rode through at least one crash beside the poison run, and was not blamed.
            assert (ended["status"], ended["error"]) == ("success", None)
            assert ended["attempt"] >= 2
            steps = await _steps(client, thread_id)
            attempts = [int(step.rsplit("@", 1)[1]) for step in steps]
            assert steps == _labelled(f"{i}:", attempts)
            assert attempts == sorted(attempts)
    finally:
        await server.kill()


def test_the_lease_is_read_from_the_limits(tmp_path: Path) -> None:
    def limits(**values: Any) -> Any:
        data = {**json.loads(CRASH_CONFIG.read_text()), "agent_runtime": {"limits": values}}
        return config_from_dict(
            data, base_dir=CRASH_CONFIG.parent, database=tmp_path / "db.sqlite", environ={}
        ).limits

    assert limits().run_lease_seconds == 30.0
    assert limits(run_lease_seconds=1.5).run_lease_seconds == 1.5
    with pytest.raises(ConfigError) as caught:
        limits(run_lease_seconds=0)
    assert caught.value.detail == (
        "langgraph.json: agent_runtime.limits.run_lease_seconds: expected a positive number, got 0"
    )
