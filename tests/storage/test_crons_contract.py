"""The cron part of the storage contract, on every backend: rows, search and count, the claim
that gives each due cron to one claimer only, and crons going with their thread."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.storage.base import Storage
from agent_runtime.storage.cron_records import CronPatch, CronQuery, NewCron
from agent_runtime.storage.filters import AuthFilter
from agent_runtime.storage.records import NewThread
from agent_runtime.storage.sqlite import SqliteStorage
from tests.services import fresh_postgres_database
from tests.storage.conftest import TEST_POOL_SIZE

LEASE = timedelta(seconds=30)


def _cron(cron_id: str, clock: FakeClock, **fields: object) -> NewCron:
    values: dict[str, object] = {
        "cron_id": cron_id,
        "assistant_id": "a",
        "thread_id": None,
        "user_id": None,
        "schedule": "* * * * *",
        "timezone": None,
        "end_time": None,
        "payload": {"assistant_id": "a", "input": {"n": 1}},
        "metadata": {},
        "on_run_completed": "delete",
        "enabled": True,
        "next_run_date": clock.wall + timedelta(minutes=1),
    }
    values.update(fields)
    return NewCron(**values)  # type: ignore[arg-type]


async def test_cron_rows_round_trip(storage: Storage, clock: FakeClock) -> None:
    end = clock.wall + timedelta(days=1)
    created = await storage.create_cron(
        _cron("c1", clock, end_time=end, metadata={"team": "x"}, timezone="Europe/Paris")
    )
    assert created["cron_id"] == "c1" and created["thread_id"] is None
    assert created["end_time"] == end and created["timezone"] == "Europe/Paris"
    assert created["payload"] == {"assistant_id": "a", "input": {"n": 1}}
    assert created["enabled"] is True and created["on_run_completed"] == "delete"
    assert await storage.get_cron("c1") == created
    with pytest.raises(ConflictError):
        await storage.create_cron(_cron("c1", clock))

    later = clock.wall + timedelta(hours=1)
    patched = await storage.update_cron(
        "c1",
        CronPatch(
            schedule="0 * * * *",
            enabled=False,
            metadata={"team": "y"},
            clear_end_time=True,
            reschedule=True,
            next_run_date=later,
        ),
    )
    assert patched["schedule"] == "0 * * * *" and patched["enabled"] is False
    assert patched["end_time"] is None and patched["next_run_date"] == later
    assert patched["metadata"] == {"team": "y"} and patched["updated_at"] > created["updated_at"]
    untouched = await storage.update_cron("c1", CronPatch(payload={"assistant_id": "b"}))
    assert untouched["next_run_date"] == later and untouched["schedule"] == "0 * * * *"

    await storage.delete_cron("c1")
    for missing in (
        storage.get_cron("c1"),
        storage.update_cron("c1", CronPatch(enabled=True)),
        storage.delete_cron("c1"),
    ):
        with pytest.raises(NotFoundError) as caught:
            await missing
        assert caught.value.detail == 'Cron "c1" not found'


async def test_thread_crons_need_their_thread_and_go_with_it(
    storage: Storage, clock: FakeClock
) -> None:
    with pytest.raises(NotFoundError):
        await storage.create_cron(_cron("c1", clock, thread_id="t-missing"))
    await storage.create_thread(NewThread(thread_id="t1"), if_exists="raise")
    await storage.create_cron(_cron("c1", clock, thread_id="t1", on_run_completed=None))
    await storage.create_cron(_cron("c2", clock))
    await storage.delete_thread("t1")
    with pytest.raises(NotFoundError):
        await storage.get_cron("c1")
    assert (await storage.get_cron("c2"))["cron_id"] == "c2"


async def test_search_and_count_crons(storage: Storage, clock: FakeClock) -> None:
    await storage.create_thread(NewThread(thread_id="t1"), if_exists="raise")
    await storage.create_cron(_cron("c1", clock, metadata={"team": "x", "n": 1}))
    await storage.create_cron(_cron("c2", clock, assistant_id="b", metadata={"team": "y"}))
    await storage.create_cron(_cron("c3", clock, thread_id="t1", enabled=False, end_time=None))

    async def ids(**query: object) -> list[str]:
        found = await storage.search_crons(CronQuery(**query))  # type: ignore[arg-type]
        return [cron["cron_id"] for cron in found]

    assert await ids() == ["c3", "c2", "c1"]  # newest first
    assert await ids(sort_by="cron_id", sort_order="asc") == ["c1", "c2", "c3"]
    assert await ids(assistant_id="a") == ["c3", "c1"]
    assert await ids(thread_id="t1") == ["c3"]
    assert await ids(enabled=False) == ["c3"]
    assert await ids(metadata={"team": "x"}) == ["c1"]
    assert await ids(metadata={"team": "x"}, auth=AuthFilter.parse({"team": "y"})) == []
    assert await ids(auth=AuthFilter.parse({"team": {"$eq": "y"}})) == ["c2"]
    assert await ids(limit=1, offset=1) == ["c2"]
    # NULLs last either way, on both backends.
    assert await ids(sort_by="thread_id", sort_order="asc") == ["c3", "c1", "c2"]
    assert await ids(sort_by="thread_id", sort_order="desc") == ["c3", "c2", "c1"]
    assert await storage.count_crons(CronQuery()) == 3
    assert await storage.count_crons(CronQuery(assistant_id="a", enabled=True)) == 1
    assert (
        await storage.count_crons(
            CronQuery(metadata={"team": "y"}, auth=AuthFilter.parse({"team": "y"}))
        )
        == 1
    )
    assert await storage.count_crons(CronQuery(auth=AuthFilter.parse({"team": "z"}))) == 0


async def test_claim_takes_due_crons_once(storage: Storage, clock: FakeClock) -> None:
    due = clock.wall + timedelta(minutes=1)
    await storage.create_cron(_cron("due", clock, next_run_date=due))
    await storage.create_cron(_cron("later", clock, next_run_date=due + timedelta(hours=1)))
    await storage.create_cron(_cron("off", clock, next_run_date=due, enabled=False))
    await storage.create_cron(
        _cron("ended", clock, next_run_date=due, end_time=due - timedelta(seconds=1))
    )
    await storage.create_cron(_cron("never", clock, next_run_date=None))
    assert await storage.next_cron_time() == due
    assert await storage.claim_due_crons("p1", lease=LEASE, limit=10) == []  # not due yet

    clock.advance(timedelta(minutes=1))
    claimed = await storage.claim_due_crons("p1", lease=LEASE, limit=10)
    assert [c["cron_id"] for c in claimed] == ["due"]
    assert await storage.claim_due_crons("p2", lease=LEASE, limit=10) == []  # held by p1
    # While held, the earliest time to look again is the end of the claim.
    held_until = await storage.next_cron_time()
    assert held_until is not None and clock.wall < held_until <= clock.wall + LEASE

    following = due + timedelta(minutes=1)
    await storage.release_cron("due", "p2", fired=due, next_run_date=following)  # not p2's
    assert (await storage.get_cron("due"))["next_run_date"] == due
    await storage.release_cron("due", "p1", fired=due, next_run_date=following)
    assert (await storage.get_cron("due"))["next_run_date"] == following
    assert await storage.claim_due_crons("p2", lease=LEASE, limit=10) == []
    assert await storage.next_cron_time() == following


async def test_a_lapsed_claim_lets_another_claimer_fire(storage: Storage, clock: FakeClock) -> None:
    due = clock.wall
    await storage.create_cron(_cron("c", clock, next_run_date=due))
    assert len(await storage.claim_due_crons("dead", lease=LEASE, limit=10)) == 1
    clock.advance(LEASE - timedelta(seconds=1))
    assert await storage.claim_due_crons("p2", lease=LEASE, limit=10) == []
    clock.advance(timedelta(seconds=2))
    again = await storage.claim_due_crons("p2", lease=LEASE, limit=10)
    assert [c["next_run_date"] for c in again] == [due]


async def test_release_keeps_a_reschedule_made_during_the_fire(
    storage: Storage, clock: FakeClock
) -> None:
    due = clock.wall
    await storage.create_cron(_cron("c", clock, next_run_date=due))
    await storage.claim_due_crons("p1", lease=LEASE, limit=10)
    moved = due + timedelta(days=1)
    await storage.update_cron(
        "c", CronPatch(schedule="0 0 * * *", reschedule=True, next_run_date=moved)
    )
    await storage.release_cron("c", "p1", fired=due, next_run_date=due + timedelta(minutes=1))
    assert (await storage.get_cron("c"))["next_run_date"] == moved


@pytest.fixture(params=["sqlite", "postgres"])
async def two_storages(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[tuple[Storage, Storage]]:
    """Two storages on one database, as two processes have."""
    if request.param == "sqlite":
        path = tmp_path / "shared.sqlite"
        pair: tuple[Storage, Storage] = (
            SqliteStorage(path, clock=clock),
            SqliteStorage(path, clock=clock),
        )
        for each in pair:
            await each.setup()
        try:
            yield pair
        finally:
            for each in pair:
                await each.close()
        return
    from agent_runtime.storage.postgres import PostgresStorage

    async with fresh_postgres_database() as uri:
        pair = (
            PostgresStorage(uri, pool_size=TEST_POOL_SIZE, clock=clock),
            PostgresStorage(uri, pool_size=TEST_POOL_SIZE, clock=clock),
        )
        for each in pair:
            await each.setup()
        try:
            yield pair
        finally:
            for each in pair:
                await each.close()


async def test_claimers_on_one_database_split_due_crons(
    two_storages: tuple[Storage, Storage], clock: FakeClock
) -> None:
    first, second = two_storages
    due = clock.wall
    for n in range(20):
        await first.create_cron(_cron(f"c{n:02}", clock, next_run_date=due))
    clock.advance(1)
    claims = await asyncio.gather(
        *[
            storage.claim_due_crons(f"p{i}", lease=LEASE, limit=3)
            for i, storage in enumerate([first, second] * 4)
        ]
    )
    taken = [cron["cron_id"] for claim in claims for cron in claim]
    assert len(taken) == len(set(taken)) == 20
    assert all(len(claim) <= 3 for claim in claims)
