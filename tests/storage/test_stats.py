"""What the metrics read of storage, on every backend: the number of pending runs, and the
connection pool (Postgres) or none (SQLite)."""

from __future__ import annotations

from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import NewRun, NewThread, RunOutcome


async def test_count_pending_runs_and_pool_stats(storage: Storage) -> None:
    assert await storage.count_pending_runs() == 0
    for thread_id in ("t1", "t2"):
        await storage.create_thread(
            NewThread(thread_id=thread_id, metadata={}, ttl=None), if_exists="raise"
        )
        await storage.create_run(
            NewRun(run_id=f"r-{thread_id}", thread_id=thread_id, assistant_id="a", graph_id="g")
        )
    assert await storage.count_pending_runs() == 2
    await storage.finish_run("r-t1", RunOutcome(status="success"), only_if_pending=True)
    assert await storage.count_pending_runs() == 1
    stats = storage.pool_stats()
    if stats is None:
        return  # SQLite: one writer and one reader connection, no pool
    assert set(stats) == {"open", "idle", "max", "waiting"}
    assert 1 <= stats["open"] <= stats["max"]
    assert stats["waiting"] == 0
