"""Crons across processes and in real time: two servers on one database (SQLite file or
Postgres) on one `FakeClock` fire each due cron exactly once between them, and a server on the
system clock fires a cron within 2 s of its time."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.clock import SYSTEM_CLOCK, FakeClock
from agent_runtime.crons.fire import fire_ids
from tests.conftest import Database, RunningServer, json_of, sdk_client, until
from tests.server.test_crons import HELLO, START, serving
from tests.services import fresh_postgres_database


@asynccontextmanager
async def shared(backend: str, tmp_path: Path) -> AsyncIterator[Database]:
    if backend == "sqlite":
        yield tmp_path / "shared.sqlite"
        return
    async with fresh_postgres_database(migrated=True) as uri:
        yield uri


async def _idle(*servers: RunningServer) -> bool:
    storage = servers[0].services().storage
    return not await storage.search_runs(thread_id=None, statuses=("pending", "running"))


@pytest.mark.parametrize("backend", ["sqlite", "postgres"])
async def test_two_processes_fire_each_cron_once(backend: str, tmp_path: Path) -> None:
    clock = FakeClock(START)
    async with (
        shared(backend, tmp_path) as database,
        serving(database, clock) as (first, sdk_a, _),
        serving(database, clock) as (second, sdk_b, _),
    ):
        thread_id = (await sdk_a.threads.create())["thread_id"]
        crons = [
            json_of(
                await sdk.crons.create_for_thread(
                    thread_id, "chat", schedule="* * * * *", input=HELLO
                )
            )
            for sdk in (sdk_a, sdk_b, sdk_a, sdk_b)
        ]
        kept = json_of(
            await sdk_b.crons.create(
                "chat", schedule="* * * * *", input=HELLO, on_run_completed="keep"
            )
        )
        storage = first.services().storage
        for minute in (1, 2, 3):
            # Both schedulers sleep on the clock: this wakes them together.
            clock.advance(60)
            due = START + timedelta(minutes=minute)

            async def fired(due: datetime = due) -> bool:
                runs = await sdk_a.runs.list(thread_id, limit=100)
                return len([r for r in runs if str(r["created_at"]) >= due.isoformat()]) == 4

            await until(fired, within=10)
            await until(lambda: _idle(first, second), within=10)
            # The fire of the stateless cron, on its own thread.
            assert (await storage.find_run(fire_ids(kept, due)[0]))["status"] == "success"
        await asyncio.sleep(0.2)  # a duplicate would have shown by now
        runs = await sdk_b.runs.list(thread_id, limit=100)
        expected = {
            fire_ids(cron, START + timedelta(minutes=m))[0] for cron in crons for m in (1, 2, 3)
        }
        assert sorted(r["run_id"] for r in runs) == sorted(expected)
        assert all(r["status"] == "success" for r in runs)
        for cron in await sdk_a.crons.search():
            assert cron["next_run_date"] == "2026-01-01T00:04:00+00:00"


async def test_a_cron_fires_within_two_seconds_of_its_time(database: Database) -> None:
    # A schedule with seconds (a sixth field), so the test waits seconds, not a minute.
    async with serving(database, SYSTEM_CLOCK) as (_, sdk, _):
        thread_id = (await sdk.threads.create())["thread_id"]
        target = (datetime.now(UTC) + timedelta(seconds=3)).replace(microsecond=0)
        cron = json_of(
            await sdk.crons.create_for_thread(
                thread_id, "chat", schedule=f"* * * * * {target.second}", input=HELLO
            )
        )
        assert cron["next_run_date"] == target.isoformat()

        async def first_run() -> Any:
            runs = await sdk.runs.list(thread_id)
            return runs[0] if runs else None

        run = await until(first_run, within=8)
        created = datetime.fromisoformat(run["created_at"])
        assert timedelta(0) <= created - target < timedelta(seconds=2)
        assert run["run_id"] == fire_ids(cron, target)[0]


async def test_an_api_process_schedules_and_an_executing_one_fires(tmp_path: Path) -> None:
    # `serve --role api` runs no scheduler: the crons it stores fire in the other processes,
    # which look at least every `POLL_SECONDS` of their clock.
    clock = FakeClock(START)
    database = tmp_path / "shared.sqlite"
    async with serving(database, clock) as (worker, _, _):
        config = replace(worker.config, role="api")
        api = await RunningServer(config, clock=clock).start()
        try:
            assert api.services().crons is None
            async with sdk_client(api) as sdk:
                thread_id = (await sdk.threads.create())["thread_id"]
                cron = json_of(
                    await sdk.crons.create_for_thread(
                        thread_id, "chat", schedule="* * * * *", input=HELLO
                    )
                )
                clock.advance(60)
                run = await until(lambda: _first_run(sdk, thread_id))
                assert run["run_id"] == fire_ids(cron, START + timedelta(minutes=1))[0]
        finally:
            await api.stop()


async def _first_run(sdk: Any, thread_id: str) -> Any:
    runs = await sdk.runs.list(thread_id)
    return runs[0] if runs else None
