"""Crons through langgraph_sdk's `client.crons` and raw HTTP, on a real server whose time a
`FakeClock` drives: the API's shapes and refusals, and each rule of firing (due, not due,
disabled, ended, time zones across a daylight-saving change, catch-up after downtime), each
fire an ordinary run. The scheduler's loop is stopped where a test steps time by hand and
calls `fire_due` itself, so that what fires is decided by the clock, not by timing."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import NotFoundError as SdkNotFound
from langgraph_sdk.errors import UnprocessableEntityError

from agent_runtime.clock import Clock, FakeClock
from agent_runtime.config import config_from_dict
from agent_runtime.crons.fire import fire_ids
from agent_runtime.crons.scheduler import CronScheduler
from tests.conftest import ROOT, Database, RunningServer, json_of, until

FIXTURES = ROOT / "tests" / "fixtures" / "runs" / "langgraph.json"
START = datetime(2026, 1, 1, tzinfo=UTC)  # a Thursday
HELLO: dict[str, Any] = {"messages": [{"role": "user", "content": "hello"}]}


@asynccontextmanager
async def serving(
    database: Database, clock: Clock
) -> AsyncIterator[tuple[RunningServer, LangGraphClient, httpx.AsyncClient]]:
    config = config_from_dict(
        json.loads(FIXTURES.read_text()), base_dir=FIXTURES.parent, database=database, environ={}
    )
    server = await RunningServer(config, clock=clock).start()
    sdk = get_client(url=server.url, api_key=None)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield server, sdk, http
    finally:
        await sdk.http.client.aclose()
        await server.stop()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(START)


@pytest.fixture
async def env(
    database: Database, clock: FakeClock
) -> AsyncIterator[tuple[RunningServer, LangGraphClient, httpx.AsyncClient]]:
    async with serving(database, clock) as served:
        yield served


async def stepped(server: RunningServer) -> CronScheduler:
    """The server's scheduler with its loop stopped: the test calls `fire_due`."""
    scheduler = server.services().crons
    assert scheduler is not None
    await scheduler.stop()
    return scheduler


async def step(server: RunningServer, clock: FakeClock, by: timedelta | float) -> int:
    """Advance the clock, fire what is due, and wait for the runs to end: a clock that jumps
    past the run lease while a run executes would have the reaper take the run back."""
    scheduler = server.services().crons
    assert scheduler is not None
    clock.advance(by)
    fired = await scheduler.fire_due()
    storage = server.services().storage

    async def idle() -> bool:
        return not await storage.search_runs(thread_id=None, statuses=("pending", "running"))

    await until(idle, within=10)
    return fired


async def runs_of(sdk: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    return [json_of(run) for run in await sdk.runs.list(thread_id, limit=100)]


async def settled(sdk: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    """The thread's runs once none is pending or running."""

    async def check() -> list[dict[str, Any]] | None:
        runs = await runs_of(sdk, thread_id)
        return runs if all(r["status"] not in ("pending", "running") for r in runs) else None

    return await until(check, within=10)


# The API


async def test_crons_through_the_sdk(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    thread = await sdk.threads.create()
    stateless = await sdk.crons.create(
        "chat",
        schedule="*/5 * * * *",
        input=HELLO,
        metadata={"team": "a"},
        on_run_completed="keep",
        timezone="Europe/Paris",
    )
    on_thread = await sdk.crons.create_for_thread(
        thread["thread_id"],
        "slow",
        schedule="0 9 * * 1-5",
        input={"steps": []},
        multitask_strategy="enqueue",
        end_time=START + timedelta(days=30),
    )
    cron = json_of(stateless)
    assert set(cron) == {
        "cron_id", "assistant_id", "thread_id", "on_run_completed", "end_time", "schedule",
        "timezone", "created_at", "updated_at", "payload", "user_id", "next_run_date",
        "metadata", "enabled",
    }  # fmt: skip
    assert cron["thread_id"] is None and cron["on_run_completed"] == "keep"
    assert cron["schedule"] == "*/5 * * * *" and cron["timezone"] == "Europe/Paris"
    assert cron["next_run_date"] == "2026-01-01T00:05:00+00:00"
    assert cron["payload"]["input"] == HELLO and cron["metadata"] == {"team": "a"}
    assert cron["enabled"] is True and cron["user_id"] is None and cron["end_time"] is None
    chat_id = (await sdk.assistants.get("chat"))["assistant_id"]
    assert cron["assistant_id"] == chat_id == cron["payload"]["assistant_id"]
    threaded = json_of(on_thread)
    assert threaded["thread_id"] == thread["thread_id"] and threaded["on_run_completed"] is None
    assert threaded["next_run_date"] == "2026-01-01T09:00:00+00:00"
    assert threaded["end_time"] == "2026-01-31T00:00:00+00:00"

    assert await sdk.crons.count() == 2
    assert await sdk.crons.count(assistant_id="chat") == 1
    assert await sdk.crons.count(thread_id=thread["thread_id"]) == 1
    assert await sdk.crons.count(metadata={"team": "a"}) == 1
    found = await sdk.crons.search(sort_by="next_run_date", sort_order="asc")
    assert [c["cron_id"] for c in found] == [cron["cron_id"], threaded["cron_id"]]
    picked = await sdk.crons.search(assistant_id="slow", select=["cron_id", "schedule"])
    assert picked == [{"cron_id": threaded["cron_id"], "schedule": "0 9 * * 1-5"}]
    assert await sdk.crons.search(enabled=False) == []
    assert await sdk.crons.search(assistant_id="no-such-graph") == []

    clock.advance(60)
    updated = json_of(
        await sdk.crons.update(
            cron["cron_id"], schedule="0 * * * *", enabled=False, metadata={"n": 1}, end_time=None
        )
    )
    assert updated["schedule"] == "0 * * * *" and updated["enabled"] is False
    assert updated["next_run_date"] == "2026-01-01T01:00:00+00:00"
    assert updated["metadata"] == {"team": "a", "n": 1}
    assert updated["updated_at"] > cron["updated_at"]
    assert await sdk.crons.search(enabled=False) == [updated]
    cleared = json_of(await sdk.crons.update(threaded["cron_id"], end_time=None))
    assert cleared["end_time"] is None

    await sdk.crons.delete(cron["cron_id"])
    assert await sdk.crons.count() == 1
    with pytest.raises(SdkNotFound):
        await sdk.crons.delete(cron["cron_id"])
    # Deleting the thread deletes its crons.
    await sdk.threads.delete(thread["thread_id"])
    assert await sdk.crons.count() == 0
    assert server.services().crons is not None


async def test_info_says_crons_are_on(env: Any) -> None:
    _, _, http = env
    assert (await http.get("/info")).json()["flags"]["crons"] is True


@pytest.mark.parametrize(
    ("body", "code", "detail"),
    [
        (
            {"schedule": "every day"},
            "invalid_schedule",
            'schedule: "every day" is not a cron expression',
        ),
        ({"schedule": "0 0 30 2 *"}, "invalid_schedule", 'schedule: "0 0 30 2 *" names no time'),
        ({"timezone": "Mars/Base"}, "invalid_timezone", 'timezone: "Mars/Base" is not an IANA'),
        ({"end_time": "next week"}, "invalid_end_time", 'end_time: "next week" is not an ISO'),
        ({"interrupt_before": ["nope"]}, "unknown_node", 'interrupt_before: graph "chat" has'),
        ({"webhook": "ftp://x"}, None, "webhook"),
        ({"on_completion": "keep"}, "validation_error", 'Unknown field "on_completion"'),
    ],
)
async def test_bad_crons_are_refused_by_name(
    env: Any, body: dict[str, Any], code: str | None, detail: str
) -> None:
    _, _, http = env
    response = await http.post(
        "/runs/crons", json={"assistant_id": "chat", "schedule": "* * * * *", **body}
    )
    assert response.status_code == 422, response.text
    if code is not None:
        assert response.json()["code"] == code
    assert detail in response.json()["detail"]


async def test_crons_on_missing_things_are_404s(env: Any) -> None:
    _, sdk, http = env
    missing = "00000000-0000-4000-8000-000000000000"
    assert (
        await http.post("/runs/crons", json={"assistant_id": "nope", "schedule": "* * * * *"})
    ).status_code == 404
    on_thread = await http.post(
        f"/threads/{missing}/runs/crons", json={"assistant_id": "chat", "schedule": "* * * * *"}
    )
    assert (on_thread.status_code, on_thread.json()["code"]) == (404, "thread_not_found")
    patched = await http.patch(f"/runs/crons/{missing}", json={"enabled": False})
    assert (patched.status_code, patched.json()["code"]) == (404, "cron_not_found")
    assert (await http.patch("/runs/crons/not-a-uuid", json={})).status_code == 422
    cron = await sdk.crons.create("chat", schedule="* * * * *")
    with pytest.raises(UnprocessableEntityError):
        await sdk.crons.update(cron["cron_id"], schedule="* * *")


# Firing


async def test_a_due_cron_fires_an_ordinary_run_on_its_thread(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    thread_id = (await sdk.threads.create())["thread_id"]
    cron = await sdk.crons.create_for_thread(
        thread_id, "chat", schedule="*/5 * * * *", input=HELLO, metadata={"from": "cron"}
    )
    clock.advance(timedelta(minutes=4, seconds=59))
    assert await server.services().crons.fire_due() == 0  # not due yet
    assert await runs_of(sdk, thread_id) == []

    clock.advance(1)  # the scheduler's loop wakes on the clock
    runs = await until(lambda: runs_of(sdk, thread_id))
    run_id, _ = fire_ids(json_of(cron), START + timedelta(minutes=5))
    assert [r["run_id"] for r in runs] == [run_id]
    parts = [p async for p in sdk.runs.join_stream(thread_id, run_id, last_event_id="-1")]
    assert parts[0].event == "metadata" and parts[-1].event == "end"
    (done,) = await settled(sdk, thread_id)
    assert done["status"] == "success" and done["metadata"] == {"from": "cron"}
    assert done["usage"] is not None and done["usage"]["total_tokens"] > 0
    state = await sdk.threads.get_state(thread_id)
    assert json_of(state["values"])["messages"][-1]["content"]
    moved = (await sdk.crons.search())[0]
    assert moved["next_run_date"] == "2026-01-01T00:10:00+00:00"


async def test_disabled_and_ended_crons_never_fire(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    scheduler = await stepped(server)
    thread_id = (await sdk.threads.create())["thread_id"]
    off = await sdk.crons.create_for_thread(
        thread_id, "chat", schedule="* * * * *", input=HELLO, enabled=False
    )
    ended = await sdk.crons.create_for_thread(
        thread_id, "chat", schedule="* * * * *", input=HELLO, end_time=START + timedelta(minutes=2)
    )
    assert json_of(off)["next_run_date"] == "2026-01-01T00:01:00+00:00"
    fired = 0
    for _ in range(5):
        fired += await step(server, clock, 60)
    assert fired == 2  # the ended cron at 00:01 and 00:02; the disabled one never
    runs = await settled(sdk, thread_id)
    assert sorted(r["run_id"] for r in runs) == sorted(
        fire_ids(json_of(ended), START + timedelta(minutes=m))[0] for m in (1, 2)
    )
    after = {c["cron_id"]: c for c in await sdk.crons.search()}
    assert after[ended["cron_id"]]["next_run_date"] is None

    # Enabled again, the disabled cron fires from now on, with no make-up for the past.
    enabled = json_of(await sdk.crons.update(off["cron_id"], enabled=True))
    assert enabled["next_run_date"] == "2026-01-01T00:06:00+00:00"
    assert await step(server, clock, 60) == 1
    assert scheduler is server.services().crons


async def test_catch_up_after_downtime_fires_once(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    scheduler = await stepped(server)
    thread_id = (await sdk.threads.create())["thread_id"]
    cron = await sdk.crons.create_for_thread(thread_id, "chat", schedule="0 * * * *", input=HELLO)
    clock.advance(timedelta(days=3, minutes=30))  # 72 fires missed
    assert await scheduler.fire_due() == 1
    assert await scheduler.fire_due() == 0
    (run,) = await settled(sdk, thread_id)
    assert run["run_id"] == fire_ids(json_of(cron), START + timedelta(hours=1))[0]
    # The next fire is the schedule's first time after now, not after the missed one.
    assert (await sdk.crons.search())[0]["next_run_date"] == "2026-01-04T01:00:00+00:00"


async def test_a_zone_fires_on_its_wall_clock_across_the_fall_back(database: Database) -> None:
    clock = FakeClock(datetime(2026, 10, 31, 12, tzinfo=UTC))
    async with serving(database, clock) as (server, sdk, _):
        await stepped(server)
        thread_id = (await sdk.threads.create())["thread_id"]
        await sdk.crons.create_for_thread(
            thread_id, "chat", schedule="30 1 * * *", timezone="America/New_York", input=HELLO
        )
        fired_at = []
        for _ in range(4 * 48):  # two days, a quarter of an hour at a time
            if await step(server, clock, timedelta(minutes=15)):
                fired_at.append(clock.now())
        # 01:30 EDT on Nov 1 (05:30 UTC), not again at 01:30 EST; then 01:30 EST on Nov 2.
        assert fired_at == [
            datetime(2026, 11, 1, 5, 30, tzinfo=UTC),
            datetime(2026, 11, 2, 6, 30, tzinfo=UTC),
        ]
        assert len(await settled(sdk, thread_id)) == 2


async def test_stateless_crons_delete_or_keep_their_threads(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    scheduler = await stepped(server)
    kept = json_of(
        await sdk.crons.create(
            "chat", schedule="* * * * *", input=HELLO, on_run_completed="keep", metadata={"k": 1}
        )
    )
    deleted = json_of(await sdk.crons.create("chat", schedule="* * * * *", input=HELLO))
    assert deleted["on_run_completed"] == "delete"
    assert await step(server, clock, 60) == 2
    assert scheduler is server.services().crons
    due = START + timedelta(minutes=1)
    kept_run, kept_thread = fire_ids(kept, due)
    gone_run, gone_thread = fire_ids(deleted, due)
    storage = server.services().storage
    await until(lambda: _status(storage, kept_run), within=10)
    assert (await sdk.runs.get(kept_thread, kept_run))["status"] == "success"
    thread = await sdk.threads.get(kept_thread)
    assert thread["metadata"]["k"] == 1
    assert kept_thread in [t["thread_id"] for t in await sdk.threads.search(metadata={"k": 1})]

    async def gone() -> bool:
        try:
            await sdk.threads.get(gone_thread)
        except SdkNotFound:
            return True
        return False

    await until(gone, within=10)
    assert gone_run != kept_run


async def _status(storage: Any, run_id: str) -> str | None:
    run = await storage.find_run(run_id)
    return None if run["status"] in ("pending", "running") else run["status"]


async def test_a_busy_thread_gets_the_crons_multitask_strategy(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    scheduler = await stepped(server)
    thread_id = (await sdk.threads.create())["thread_id"]
    await sdk.crons.create_for_thread(
        thread_id, "slow", schedule="* * * * *", input={"steps": []}, multitask_strategy="reject"
    )
    queued = await sdk.crons.create_for_thread(
        thread_id, "slow", schedule="* * * * *", input={"steps": []}, multitask_strategy="enqueue"
    )
    clock.advance(59)  # short of due; then a second, well within the busy run's lease
    busy = await sdk.runs.create(thread_id, "slow", input={"steps": []}, context={"delay": 1.0})
    await until(lambda: _running(sdk, thread_id, busy["run_id"]))
    clock.advance(1)
    assert await scheduler.fire_due() == 2  # both claimed; the rejected one makes no run
    runs = await settled(sdk, thread_id)
    queued_run = fire_ids(json_of(queued), START + timedelta(minutes=1))[0]
    assert sorted(r["run_id"] for r in runs) == sorted([busy["run_id"], queued_run])
    assert all(r["status"] == "success" for r in runs)
    # Both moved on: the refused fire is not retried.
    assert {c["next_run_date"] for c in await sdk.crons.search()} == {"2026-01-01T00:02:00+00:00"}


async def _running(sdk: LangGraphClient, thread_id: str, run_id: str) -> bool:
    return (await sdk.runs.get(thread_id, run_id))["status"] == "running"


async def test_a_failing_fire_is_visible_on_its_run(env: Any, clock: FakeClock) -> None:
    server, sdk, _ = env
    scheduler = await stepped(server)
    thread_id = (await sdk.threads.create())["thread_id"]
    await sdk.crons.create_for_thread(thread_id, "failing", schedule="* * * * *", input={})
    assert await step(server, clock, 60) == 1
    (run,) = await settled(sdk, thread_id)
    assert scheduler is server.services().crons
    assert run["status"] == "error"
    assert run["error"] == "ValueError: the fixture graph failed on purpose"


async def test_a_bad_thread_id_is_refused_even_beside_an_unknown_assistant(
    http: httpx.AsyncClient,
) -> None:
    # Found by the fuzz test: an unknown assistant answered `[]` before the thread id was read.
    body = {"assistant_id": "no-such-assistant", "thread_id": "not-a-uuid"}
    for path in ("/runs/crons/search", "/runs/crons/count"):
        answer = await http.post(path, json=body)
        assert answer.status_code == 422, answer.text
        assert "thread_id" in answer.json()["detail"]
