"""Several processes on one database, each with a pool of its own (here: several storages in one
event loop, which is what processes look like to Postgres): one run runs per thread, and the
multitask strategies hold across them."""

from __future__ import annotations

import asyncio
from datetime import timedelta

from agent_runtime.errors import ConflictError
from agent_runtime.storage.postgres import PostgresStorage
from agent_runtime.storage.records import Claim, NewRun, NewThread, RunOutcome
from tests.storage.postgres.conftest import opened

PROCESSES = 4
LEASE = timedelta(seconds=30)


def _run(run_id: str, thread_id: str, **fields: object) -> NewRun:
    return NewRun(run_id=run_id, thread_id=thread_id, assistant_id="a", graph_id="g", **fields)  # type: ignore[arg-type]


async def test_one_claim_wins_across_processes(pg_uri: str) -> None:
    async with (
        opened(pg_uri) as a,
        opened(pg_uri) as b,
        opened(pg_uri) as c,
        opened(pg_uri) as d,
    ):
        storages = [a, b, c, d]
        for n in range(10):
            await a.create_thread(NewThread(thread_id=f"t{n}"), if_exists="raise")
            await a.create_run(_run(f"r{n}a", f"t{n}"))
            await a.create_run(_run(f"r{n}b", f"t{n}"))
        for n in range(10):
            claims = await asyncio.gather(
                *(
                    s.claim_next_run(f"t{n}", owner=f"p{i}", lease=LEASE)
                    for i, s in enumerate(storages)
                )
            )
            won = [claim for claim in claims if claim is not None]
            assert [run["run_id"] for run in won] == [f"r{n}a"]
        running = await b.search_runs(thread_id=None, statuses=["running"])
        assert len(running) == 10


async def test_reject_holds_across_processes(pg_uri: str) -> None:
    async with opened(pg_uri) as a, opened(pg_uri) as b:
        await a.create_thread(NewThread(thread_id="t"), if_exists="raise")
        results = await asyncio.gather(
            *(
                storage.create_run(_run(f"r{i}", "t", multitask_strategy="reject"))
                for i, storage in enumerate([a, b, a, b])
            ),
            return_exceptions=True,
        )
        created = [r for r in results if not isinstance(r, BaseException)]
        refused = [r for r in results if isinstance(r, ConflictError)]
        assert len(created) == 1 and len(refused) == 3
        assert {e.code for e in refused} == {"thread_busy"}


async def test_claimed_creates_on_an_idle_thread_start_one_run_across_processes(
    pg_uri: str,
) -> None:
    # Each creation would claim its run if the thread were idle (one statement when it is:
    # `storage.postgres.idle_create`); those that waited for the thread's lock find it busy.
    async with opened(pg_uri) as a, opened(pg_uri) as b, opened(pg_uri) as c:
        storages = [a, b, c]
        for n in range(10):
            await a.create_thread(NewThread(thread_id=f"t{n}"), if_exists="raise")
            created = await asyncio.gather(
                *(
                    storage.create_run(
                        _run(f"r{n}-{i}", f"t{n}"),
                        claim=Claim(owner=f"p{i}", lease=LEASE, durable=i % 2 == 0),
                    )
                    for i, storage in enumerate(storages * 2)
                )
            )
            statuses = sorted(made.run["status"] for made in created)
            assert statuses == ["pending"] * 5 + ["running"], statuses
            assert sum(made.brief is not None for made in created) == 1
            thread = await b.get_thread(f"t{n}", values=False)
            assert thread["status"] == "busy" and thread["run_count"] == 6


async def test_concurrent_creates_of_a_new_thread_create_it_once(pg_uri: str) -> None:
    async with opened(pg_uri) as a, opened(pg_uri) as b:
        await asyncio.gather(
            *(
                storage.create_run(_run(f"r{i}", "fresh", if_not_exists="create"))
                for i, storage in enumerate([a, b, a, b])
            )
        )
        thread = await a.get_thread("fresh")
        assert thread["run_count"] == 4 and thread["status"] == "busy"


async def test_a_reap_by_two_processes_charges_once(pg_uri: str) -> None:
    async with opened(pg_uri) as a, opened(pg_uri) as b:
        await a.create_thread(NewThread(thread_id="t"), if_exists="raise")
        await a.create_run(_run("r", "t"))
        # Claimed with no lease: the next reap takes it back, as a dead owner's.
        assert await a.claim_next_run("t", owner="dead") is not None
        reaped = await asyncio.gather(a.reap_expired_leases(), b.reap_expired_leases())
        assert sorted(map(len, reaped)) == [0, 1]
        assert await b.charged_attempts("r") == 1
        await a.finish_run("r", RunOutcome(status="success"))


async def test_claims_racing_finishes_run_each_thread_one_run_at_a_time(pg_uri: str) -> None:
    # Each process claims the next run of the thread as soon as it sees none running, and ends
    # what it claimed: every run runs once, in order, never beside another of its thread.
    async with (
        opened(pg_uri) as a,
        opened(pg_uri) as b,
        opened(pg_uri) as c,
        opened(pg_uri) as d,
    ):
        await a.create_thread(NewThread(thread_id="t"), if_exists="raise")
        queued = [f"r{n:02}" for n in range(12)]  # the order of creation, at equal times
        for run_id in queued:
            await a.create_run(_run(run_id, "t"))
        started: list[str] = []

        async def worker(storage: PostgresStorage, owner: str) -> None:
            while len(started) < len(queued):
                run = await storage.claim_next_run("t", owner=owner, lease=LEASE)
                if run is None:
                    await asyncio.sleep(0)
                    continue
                running = await storage.search_runs(thread_id="t", statuses=["running"])
                assert [r["run_id"] for r in running] == [run["run_id"]]
                started.append(run["run_id"])
                await storage.finish_run(run["run_id"], RunOutcome(status="success"))

        await asyncio.wait_for(
            asyncio.gather(*(worker(s, f"p{i}") for i, s in enumerate((a, b, c, d)))), 30
        )
        assert started == queued
