"""What the metrics read of a SQLite storage: the run queue's depth. SQLite has no pool."""

from __future__ import annotations

from collections.abc import Mapping

from agent_runtime.storage.sqlite.database import SqliteDatabase


class SqliteStats:
    _db: SqliteDatabase

    async def count_pending_runs(self) -> int:
        # Served by the partial index `runs_pending_created`.
        row = await self._db.fetch_one("SELECT count(*) AS n FROM runs WHERE status = 'pending'")
        return int(row["n"])

    def pool_stats(self) -> Mapping[str, int] | None:
        return None
