"""Retention in Postgres: which threads have expired (their TTL, inactivity, age) and pruning
them, by deleting them or by keeping only each namespace's latest checkpoint. Locked threads
are held: never swept, never pruned. Each thread is pruned in a transaction of its own, with its
row locked, so a run cannot start on it meanwhile."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

from agent_runtime.schema import Json
from agent_runtime.storage.postgres.checkpoint_tables import (
    KEEP_LATEST_ISOLATION,
    keep_latest_checkpoints,
    uses_delta_channels,
)
from agent_runtime.storage.postgres.database import Conn, PostgresDatabase
from agent_runtime.storage.postgres.threads import delete_thread_rows, lock_thread
from agent_runtime.storage.records import PruneResult, PruneStrategy, RetentionPolicy


class PostgresRetention:
    _db: PostgresDatabase
    _now: Callable[[], datetime]

    async def sweep_expired_threads(self, policy: RetentionPolicy | None = None) -> int:
        now = self._now()
        policy = policy or RetentionPolicy()
        clauses = ["(expires_at IS NOT NULL AND expires_at <= %s)"]
        params: list[object] = [now]
        if policy.inactivity is not None:
            clauses.append("updated_at <= %s")
            params.append(now - policy.inactivity)
        if policy.max_age is not None:
            clauses.append("created_at <= %s")
            params.append(now - policy.max_age)
        rows = await self._db.fetch_all(
            f"SELECT thread_id, ttl, expires_at FROM threads WHERE ({' OR '.join(clauses)})"
            " AND status <> 'busy' AND lifecycle <> 'locked' ORDER BY thread_id",
            params,
        )
        by_strategy: dict[PruneStrategy, list[str]] = {"delete": [], "keep_latest": []}
        for row in rows:
            strategy = policy.strategy
            if row["expires_at"] is not None and row["expires_at"] <= now:
                # A thread's own TTL names its own strategy.
                strategy = _ttl_strategy(row["ttl"]) or strategy
            by_strategy[strategy].append(row["thread_id"])
        swept = 0
        for strategy, thread_ids in by_strategy.items():
            if thread_ids:
                result = await self.prune_threads(thread_ids, strategy=strategy)
                swept += len(result.pruned)
        return swept

    async def prune_threads(
        self, thread_ids: Sequence[str], *, strategy: PruneStrategy
    ) -> PruneResult:
        pruned: list[str] = []
        skipped: dict[str, str] = {}
        for thread_id in dict.fromkeys(thread_ids):
            async with self._db.transaction() as conn:
                if strategy == "keep_latest":
                    await conn.execute(KEEP_LATEST_ISOLATION)
                reason = await _refusal(conn, thread_id, strategy)
                if reason is not None:
                    skipped[thread_id] = reason
                    continue
                if strategy == "delete":
                    await delete_thread_rows(conn, [thread_id])
                else:
                    await keep_latest_checkpoints(conn, thread_id)
                    await conn.execute(
                        "UPDATE threads SET expires_at = NULL WHERE thread_id = %s", (thread_id,)
                    )
                pruned.append(thread_id)
        return PruneResult(pruned=pruned, skipped=skipped)


def _ttl_strategy(ttl: Json | None) -> PruneStrategy | None:
    if not ttl:
        return None
    return "keep_latest" if ttl.get("strategy") == "keep_latest" else "delete"


async def _refusal(conn: Conn, thread_id: str, strategy: PruneStrategy) -> str | None:
    row = await lock_thread(conn, thread_id)
    if row is None:
        return "not found"
    if row["lifecycle"] == "locked":
        return "locked threads are held; unlock it first"
    if row["status"] == "busy":
        return "a run is active on it"
    # A DeltaChannel rebuilds values from older checkpoints' writes, so keeping only the
    # latest checkpoint would lose them.
    if strategy == "keep_latest" and await uses_delta_channels(conn, thread_id):
        return "keep_latest cannot prune a thread that uses a DeltaChannel"
    return None
