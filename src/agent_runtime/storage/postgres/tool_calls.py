"""The tool-call log in Postgres: one row per call, written when the call ends."""

from __future__ import annotations

from typing import Any

from psycopg.rows import DictRow

from agent_runtime.schema import ToolCall
from agent_runtime.storage.postgres.database import PostgresDatabase, jsonb
from agent_runtime.storage.postgres.threads import thread_not_found


class PostgresToolCalls:
    _db: PostgresDatabase

    async def record_tool_call(self, thread_id: str, call: ToolCall) -> None:
        await self._db.write_returning(
            "INSERT INTO tool_calls (tool_call_id, thread_id, run_id, checkpoint_id, name, args,"
            " status, result, error, started_at, duration_ms)"
            " SELECT %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s WHERE EXISTS"
            " (SELECT 1 FROM threads WHERE thread_id = %s)"
            " ON CONFLICT (thread_id, run_id, tool_call_id) DO UPDATE SET"
            " checkpoint_id = excluded.checkpoint_id, name = excluded.name,"
            " args = excluded.args, status = excluded.status, result = excluded.result,"
            " error = excluded.error, started_at = excluded.started_at,"
            " duration_ms = excluded.duration_ms RETURNING 1",
            (
                call["id"],
                thread_id,
                call["run_id"],
                call["checkpoint_id"],
                call["name"],
                jsonb(call["args"]),
                call["status"],
                jsonb(call["result"]),
                call["error"],
                call["started_at"],
                call["duration_ms"],
                thread_id,
            ),
        )

    async def list_tool_calls(
        self, thread_id: str, *, run_id: str | None, name: str | None, limit: int, offset: int
    ) -> tuple[list[ToolCall], int]:
        if (
            await self._db.fetch_one("SELECT 1 FROM threads WHERE thread_id = %s", (thread_id,))
            is None
        ):
            raise thread_not_found(thread_id)
        clauses, params = ["thread_id = %s"], [thread_id]
        if run_id is not None:
            clauses.append("run_id = %s")
            params.append(run_id)
        if name is not None:
            clauses.append("name = %s")
            params.append(name)
        where = " AND ".join(clauses)
        rows = await self._db.fetch_all(
            f"SELECT *, count(*) OVER () AS total FROM tool_calls WHERE {where}"
            " ORDER BY started_at, tool_call_id LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        if rows:
            total = int(rows[0]["total"])
        else:
            found = await self._db.fetch_one(
                f"SELECT count(*) AS n FROM tool_calls WHERE {where}", params
            )
            total = 0 if found is None else int(found["n"])
        return [_call(row) for row in rows], total


def _call(row: DictRow) -> ToolCall:
    result: Any = row["result"]
    return {
        "id": row["tool_call_id"],
        "name": row["name"],
        "args": row["args"],
        "status": row["status"],
        "result": result,
        "error": row["error"],
        "run_id": row["run_id"],
        "checkpoint_id": row["checkpoint_id"],
        "started_at": row["started_at"],
        "duration_ms": row["duration_ms"],
    }
