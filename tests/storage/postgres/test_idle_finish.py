"""A run created on an idle thread ends in one statement while its thread is unchanged
(`storage.postgres.idle_finish`), and the slow way, with the same result, whenever anything
changed the thread meanwhile: a run queued behind it, an edit, a writer holding the thread's
lock while the finish waits."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import psycopg
import pytest

from agent_runtime.storage.postgres import PostgresStorage
from agent_runtime.storage.postgres.database import PostgresDatabase, connection_kwargs
from agent_runtime.storage.postgres.idle_finish import IdleStart, IdleStarts
from agent_runtime.storage.records import Claim, NewRun, NewThread, RunOutcome, ThreadPatch
from agent_runtime.usage import model_usage, summarize
from tests.storage.postgres.conftest import opened

LEASE = timedelta(seconds=30)
CLAIM = Claim(owner="p", lease=LEASE, durable=False)


def _run(run_id: str, thread_id: str = "t", **fields: Any) -> NewRun:
    return NewRun(run_id=run_id, thread_id=thread_id, assistant_id="a", graph_id="g", **fields)


@pytest.fixture
async def storage(pg_uri: str) -> AsyncIterator[PostgresStorage]:
    async with opened(pg_uri) as storage:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        yield storage


@pytest.fixture
def transactions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every transaction the storage opens, by the function that opened it."""
    opened: list[str] = []
    transaction = PostgresDatabase.transaction

    def counted(self: PostgresDatabase) -> Any:
        opened.append("transaction")
        return transaction(self)

    monkeypatch.setattr(PostgresDatabase, "transaction", counted)
    return opened


def _outcome(**fields: Any) -> RunOutcome:
    usage = summarize({"m": model_usage(10, 5, {"input_per_million": 1.0})})
    return RunOutcome(**{"status": "success", "values": {"n": 1}, "usage": usage, **fields})


async def test_an_unchanged_thread_ends_its_run_in_one_statement(
    storage: PostgresStorage, transactions: list[str]
) -> None:
    for turn in range(2):
        created = await storage.create_run(_run(f"r{turn}"), claim=CLAIM)
        assert created.run["status"] == "running"
        finished = await storage.finish_run(f"r{turn}", _outcome(values={"turn": turn}))
        assert finished is not None and finished.next_due is None
        assert finished.run["status"] == "success"
    assert transactions == []
    thread = await storage.get_thread("t")
    assert thread["status"] == "idle" and thread["values"] == {"turn": 1}
    assert thread["usage"] is not None and thread["usage"]["total_tokens"] == 30  # summed
    interrupted = await storage.create_run(_run("r2"), claim=CLAIM)
    interrupts: dict[str, Any] = {"task": [{"value": "ok?", "id": "i"}]}
    await storage.finish_run(
        interrupted.run["run_id"],
        RunOutcome(status="interrupted", thread_status="interrupted", interrupts=interrupts),
    )
    thread = await storage.get_thread("t")
    assert thread["status"] == "interrupted" and thread["interrupts"] == interrupts
    assert thread["values"] == {"turn": 1}  # None kept them
    assert transactions == []


async def test_a_run_queued_behind_it_makes_the_finish_take_the_transaction(
    storage: PostgresStorage, transactions: list[str]
) -> None:
    await storage.create_run(_run("r1"), claim=CLAIM)
    queued = await storage.create_run(_run("r2", multitask_strategy="enqueue"))
    assert queued.run["status"] == "pending"
    count = len(transactions)
    finished = await storage.finish_run("r1", _outcome())
    assert len(transactions) == count + 1
    assert finished is not None and finished.next_due == queued.run["created_at"]
    thread = await storage.get_thread("t")
    assert thread["status"] == "busy" and thread["values"] == {"n": 1}


async def test_an_edit_of_the_thread_makes_the_finish_take_the_transaction(
    storage: PostgresStorage, transactions: list[str]
) -> None:
    await storage.create_run(_run("r1"), claim=CLAIM)
    await storage.update_thread("t", ThreadPatch(metadata={"edited": True}))
    count = len(transactions)
    finished = await storage.finish_run("r1", _outcome())
    assert len(transactions) == count + 1
    assert finished is not None and finished.run["status"] == "success"
    thread = await storage.get_thread("t")
    assert thread["status"] == "idle" and thread["metadata"]["edited"] is True
    assert thread["usage"] is not None and thread["usage"]["total_tokens"] == 15


async def test_a_run_queued_while_the_finish_waits_for_the_lock_keeps_the_thread_busy(
    storage: PostgresStorage, pg_uri: str, transactions: list[str]
) -> None:
    # Another process holds the thread's lock and queues a run; the finish, waiting for the
    # lock, must see the thread's new version and take the transaction, whose snapshot sees
    # the queued run.
    await storage.create_run(_run("r1"), claim=CLAIM)
    async with await psycopg.AsyncConnection.connect(pg_uri, **connection_kwargs()) as other:
        async with other.transaction():
            await other.execute("SELECT 1 FROM threads WHERE thread_id = 't' FOR UPDATE")
            await other.execute(
                "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at,"
                " status, metadata, kwargs, multitask_strategy, attempt)"
                " SELECT 'r2', thread_id, assistant_id, created_at, updated_at, 'pending',"
                " metadata, kwargs, 'enqueue', 0 FROM runs WHERE run_id = 'r1'"
            )
            await other.execute(
                "UPDATE threads SET status = 'busy', run_count = run_count + 1"
                " WHERE thread_id = 't'"
            )
            finishing = asyncio.create_task(storage.finish_run("r1", _outcome()))
            await asyncio.sleep(0.3)
            assert not finishing.done()  # waiting for the lock
        finished = await finishing
    assert finished is not None and finished.next_due is not None
    assert transactions == ["transaction"]
    thread = await storage.get_thread("t")
    assert thread["status"] == "busy"
    assert (await storage.get_run("t", "r2"))["status"] == "pending"


async def test_a_run_another_process_created_ends_the_slow_way(
    storage: PostgresStorage, pg_uri: str, transactions: list[str]
) -> None:
    async with opened(pg_uri) as other:
        await other.create_run(_run("r1"), claim=CLAIM)
    finished = await storage.finish_run("r1", _outcome())
    assert finished is not None and transactions == ["transaction"]
    assert (await storage.get_thread("t"))["status"] == "idle"


def test_the_remembered_runs_are_bounded() -> None:
    starts = IdleStarts(size=3)
    for n in range(5):
        starts.add(f"r{n}", IdleStart("t", str(n), None))
    assert len(starts) == 3
    assert starts.pop("r0") is None and starts.pop("r1") is None
    assert starts.pop("r4") == IdleStart("t", "4", None)
    assert starts.pop("r4") is None
