"""Event ids across attempts, on the in-process event log: a run handed over mid-stream to a
second run manager on the same SQLite file (a process that stopped or died) numbers its new
attempt's events past every id of the first, so a client reconnecting with the last id it saw
misses none of them. (tests/runs/test_cluster.py checks the same across real processes.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_runtime.encoding import loads
from agent_runtime.streaming.eventlog import ATTEMPT_ID_SPAN
from tests.conftest import until
from tests.runs.harness import build_harness

EMPTY: dict[str, Any] = {"steps": []}


@pytest.mark.timeout(30)
async def test_a_resumed_run_numbers_its_events_past_the_first_attempts(database: Path) -> None:
    first = await build_harness(database)
    try:
        tid = await first.thread()
        run = await first.manager.create(
            first.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5}, stream_mode="updates")
        )
        seen = []
        async for event in first.events.subscribe(run["run_id"], after=-1):
            seen.append(event)
            if event.event == "updates":
                break  # one step done: the client's connection drops here
        last_seen = seen[-1].id
        assert [e.id for e in seen] == [1, 2]
    finally:
        await first.manager.stop()
        await first.storage.close()

    second = await build_harness(database)
    try:
        final, _ = await second.manager.wait(run)
        assert final is not None
        assert (final["status"], final["attempt"]) == ("success", 2)
        await until(lambda: second.events.exists(run["run_id"]))
        resumed = [e async for e in second.events.subscribe(run["run_id"], after=last_seen)]
    finally:
        await second.manager.stop()
        await second.storage.close()
    ids = [e.id for e in resumed]
    assert ids == sorted(set(ids))
    assert ids[0] == ATTEMPT_ID_SPAN + 1
    assert (resumed[0].event, loads(resumed[0].data)) == (
        "metadata",
        {"run_id": run["run_id"], "attempt": 2},
    )
    # The rest of the run, step by step, then its end: nothing skipped.
    assert [e.event for e in resumed] == ["metadata", "updates", "updates", "end"]
