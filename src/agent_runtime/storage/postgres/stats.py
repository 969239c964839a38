"""What the metrics read of a Postgres storage: the run queue's depth and the pool's use."""

from __future__ import annotations

from collections.abc import Mapping

from agent_runtime.storage.postgres.database import PostgresDatabase


class PostgresStats:
    _db: PostgresDatabase

    async def count_pending_runs(self) -> int:
        # Served by the partial index `runs_pending_created`.
        row = await self._db.fetch_one("SELECT count(*) AS n FROM runs WHERE status = 'pending'")
        return 0 if row is None else int(row["n"])

    def pool_stats(self) -> Mapping[str, int] | None:
        # get_stats, not pop_stats: the cumulative counters stay for whoever else reads them.
        stats = self._db.pool.get_stats()
        return {
            "open": stats.get("pool_size", 0),
            "idle": stats.get("pool_available", 0),
            "max": stats.get("pool_max", self._db.pool_size),
            "waiting": stats.get("requests_waiting", 0),
        }
