"""The tool-call log in SQLite: one row per call, written when the call ends."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from agent_runtime.encoding import dumps_text, loads
from agent_runtime.schema import ToolCall
from agent_runtime.storage.sqlite.database import SqliteDatabase
from agent_runtime.storage.sqlite.threads import thread_not_found


class SqliteToolCalls:
    _db: SqliteDatabase

    async def record_tool_call(self, thread_id: str, call: ToolCall) -> None:
        async with self._db.transaction() as conn:
            await conn.execute(
                "INSERT OR REPLACE INTO tool_calls (tool_call_id, thread_id, run_id,"
                " checkpoint_id, name, args, status, result, error, started_at, duration_ms)"
                " SELECT ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ? WHERE EXISTS"
                " (SELECT 1 FROM threads WHERE thread_id = ?)",
                (
                    call["id"],
                    thread_id,
                    call["run_id"],
                    call["checkpoint_id"],
                    call["name"],
                    dumps_text(call["args"]),
                    call["status"],
                    dumps_text(call["result"]),
                    call["error"],
                    call["started_at"].isoformat(),
                    call["duration_ms"],
                    thread_id,
                ),
            )

    async def list_tool_calls(
        self, thread_id: str, *, run_id: str | None, name: str | None, limit: int, offset: int
    ) -> tuple[list[ToolCall], int]:
        if (
            await self._db.fetch_one("SELECT 1 FROM threads WHERE thread_id = ?", (thread_id,))
            is None
        ):
            raise thread_not_found(thread_id)
        clauses, params = ["thread_id = ?"], [thread_id]
        if run_id is not None:
            clauses.append("run_id = ?")
            params.append(run_id)
        if name is not None:
            clauses.append("name = ?")
            params.append(name)
        where = " AND ".join(clauses)
        rows = await self._db.fetch_all(
            f"SELECT * FROM tool_calls WHERE {where} ORDER BY started_at, tool_call_id"
            " LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        total = await self._db.fetch_one(f"SELECT COUNT(*) FROM tool_calls WHERE {where}", params)
        return [_call(row) for row in rows], int(total[0])


def _call(row: Any) -> ToolCall:
    return {
        "id": row["tool_call_id"],
        "name": row["name"],
        "args": loads(row["args"]),
        "status": row["status"],
        "result": None if row["result"] is None else loads(row["result"]),
        "error": row["error"],
        "run_id": row["run_id"],
        "checkpoint_id": row["checkpoint_id"],
        "started_at": datetime.fromisoformat(row["started_at"]),
        "duration_ms": row["duration_ms"],
    }
