"""Assistants and their immutable versions in Postgres."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from psycopg.rows import DictRow

from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.schema import Assistant, AssistantVersion, Json, OnConflict
from agent_runtime.storage.filters import AuthFilter, auth_containments
from agent_runtime.storage.postgres.database import Conn, PostgresDatabase, jsonb
from agent_runtime.storage.postgres.threads import delete_thread_rows
from agent_runtime.storage.records import AssistantPatch, AssistantQuery, NewAssistant

_FIELDS = "graph_id, config, context, metadata, name, description"
_SORTABLE = frozenset({"assistant_id", "graph_id", "name", "created_at", "updated_at"})


class PostgresAssistants:
    _db: PostgresDatabase
    _now: Callable[[], datetime]

    async def create_assistant(self, new: NewAssistant, *, if_exists: OnConflict) -> Assistant:
        now = self._now()
        values = (
            new.graph_id,
            jsonb(new.config),
            jsonb(new.context),
            jsonb(new.metadata),
            new.name,
            new.description,
        )
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                f"INSERT INTO assistants (assistant_id, {_FIELDS}, version, created_at,"
                " updated_at) VALUES (%s, %s, %s, %s, %s, %s, %s, 1, %s, %s)"
                " ON CONFLICT (assistant_id) DO NOTHING RETURNING assistant_id",
                (new.assistant_id, *values, now, now),
            )
            if await cursor.fetchone() is None:
                if if_exists == "do_nothing":
                    return _assistant(await _select(conn, new.assistant_id))
                raise ConflictError(
                    f'Assistant "{new.assistant_id}" already exists; pass if_exists="do_nothing" '
                    "to get the existing one",
                    code="assistant_exists",
                )
            await conn.execute(
                f"INSERT INTO assistant_versions (assistant_id, version, {_FIELDS}, created_at)"
                " VALUES (%s, 1, %s, %s, %s, %s, %s, %s, %s)",
                (new.assistant_id, *values, now),
            )
            row = await _select(conn, new.assistant_id)
        return _assistant(row)

    async def get_assistant(self, assistant_id: str) -> Assistant:
        row = await self._db.fetch_one(
            "SELECT * FROM assistants WHERE assistant_id = %s", (assistant_id,)
        )
        if row is None:
            raise _not_found(assistant_id)
        return _assistant(row)

    async def update_assistant(self, assistant_id: str, patch: AssistantPatch) -> Assistant:
        now = self._now()
        async with self._db.transaction() as conn:
            current = await _select(conn, assistant_id, lock=True)
            if current is None:
                raise _not_found(assistant_id)
            cursor = await conn.execute(
                "SELECT max(version) AS v FROM assistant_versions WHERE assistant_id = %s",
                (assistant_id,),
            )
            latest = await cursor.fetchone()
            version = int(latest["v"] if latest else 0) + 1
            metadata = dict(current["metadata"])
            metadata.update(patch.metadata or {})
            values = (
                patch.graph_id or current["graph_id"],
                jsonb(current["config"] if patch.config is None else patch.config),
                jsonb(current["context"] if patch.context is None else patch.context),
                jsonb(metadata),
                current["name"] if patch.name is None else patch.name,
                current["description"] if patch.description is None else patch.description,
            )
            await conn.execute(
                f"INSERT INTO assistant_versions (assistant_id, version, {_FIELDS}, created_at)"
                " VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
                (assistant_id, version, *values, now),
            )
            await _set_current(conn, assistant_id, values, version, now)
            row = await _select(conn, assistant_id)
        return _assistant(row)

    async def delete_assistant(
        self,
        assistant_id: str,
        *,
        delete_threads: bool = False,
        thread_auth: AuthFilter | None = None,
    ) -> None:
        async with self._db.transaction() as conn:
            cursor = await conn.execute(
                "DELETE FROM assistants WHERE assistant_id = %s", (assistant_id,)
            )
            if cursor.rowcount == 0:
                raise _not_found(assistant_id)
            if delete_threads:
                wanted = [{"assistant_id": assistant_id}, *auth_containments(thread_auth)]
                where = " AND ".join("metadata @> %s" for _ in wanted)
                cursor = await conn.execute(
                    f"SELECT thread_id FROM threads WHERE {where} ORDER BY thread_id FOR UPDATE",
                    [jsonb(each) for each in wanted],
                )
                thread_ids = [row["thread_id"] for row in await cursor.fetchall()]
                await delete_thread_rows(conn, thread_ids)

    async def search_assistants(self, query: AssistantQuery) -> list[Assistant]:
        where, params = _where(query)
        if query.sort_by not in _SORTABLE:
            raise ValueError(f"cannot sort assistants by {query.sort_by!r}")
        order = "ASC" if query.sort_order == "asc" else "DESC"
        rows = await self._db.fetch_all(
            f"SELECT * FROM assistants {where} ORDER BY {query.sort_by} {order}, assistant_id"
            f" {order} LIMIT %s OFFSET %s",
            [*params, query.limit, query.offset],
        )
        return [_assistant(row) for row in rows]

    async def count_assistants(self, query: AssistantQuery) -> int:
        where, params = _where(query)
        row = await self._db.fetch_one(f"SELECT count(*) AS n FROM assistants {where}", params)
        return 0 if row is None else int(row["n"])

    async def list_assistant_versions(
        self, assistant_id: str, *, metadata: Json | None, limit: int, offset: int
    ) -> list[AssistantVersion]:
        await self.get_assistant(assistant_id)
        clauses: list[str] = ["assistant_id = %s"]
        params: list[Any] = [assistant_id]
        if metadata:
            clauses.append("metadata @> %s")
            params.append(jsonb(metadata))
        rows = await self._db.fetch_all(
            f"SELECT * FROM assistant_versions WHERE {' AND '.join(clauses)}"
            " ORDER BY version DESC LIMIT %s OFFSET %s",
            [*params, limit, offset],
        )
        return [_version(row) for row in rows]

    async def set_latest_assistant_version(self, assistant_id: str, version: int) -> Assistant:
        now = self._now()
        async with self._db.transaction() as conn:
            if await _select(conn, assistant_id, lock=True) is None:
                raise _not_found(assistant_id)
            cursor = await conn.execute(
                f"SELECT {_FIELDS} FROM assistant_versions WHERE assistant_id = %s"
                " AND version = %s",
                (assistant_id, version),
            )
            found = await cursor.fetchone()
            if found is None:
                raise NotFoundError(
                    f'Assistant "{assistant_id}" has no version {version}',
                    code="assistant_version_not_found",
                )
            values = (
                found["graph_id"],
                jsonb(found["config"]),
                jsonb(found["context"]),
                jsonb(found["metadata"]),
                found["name"],
                found["description"],
            )
            await _set_current(conn, assistant_id, values, version, now)
            row = await _select(conn, assistant_id)
        return _assistant(row)


async def _set_current(
    conn: Conn, assistant_id: str, values: tuple[Any, ...], version: int, now: datetime
) -> None:
    await conn.execute(
        "UPDATE assistants SET graph_id = %s, config = %s, context = %s, metadata = %s,"
        " name = %s, description = %s, version = %s, updated_at = %s WHERE assistant_id = %s",
        (*values, version, now, assistant_id),
    )


async def _select(conn: Conn, assistant_id: str, *, lock: bool = False) -> Any:
    cursor = await conn.execute(
        "SELECT * FROM assistants WHERE assistant_id = %s" + (" FOR UPDATE" if lock else ""),
        (assistant_id,),
    )
    return await cursor.fetchone()


def _where(query: AssistantQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.graph_id is not None:
        clauses.append("graph_id = %s")
        params.append(query.graph_id)
    if query.name:
        clauses.append("strpos(lower(name), lower(%s)) > 0")
        params.append(query.name)
    if query.metadata:
        clauses.append("metadata @> %s")
        params.append(jsonb(query.metadata))
    for expected in auth_containments(query.auth):
        clauses.append("metadata @> %s")
        params.append(jsonb(expected))
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _not_found(assistant_id: str) -> NotFoundError:
    return NotFoundError(f'Assistant "{assistant_id}" not found', code="assistant_not_found")


def _assistant(row: DictRow) -> Assistant:
    # An assistant is its current version plus when it last changed.
    return {**_version(row), "updated_at": row["updated_at"]}


def _version(row: DictRow) -> AssistantVersion:
    return {
        "assistant_id": row["assistant_id"],
        "graph_id": row["graph_id"],
        "config": row["config"],
        "context": row["context"],
        "metadata": row["metadata"],
        "name": row["name"],
        "description": row["description"],
        "version": row["version"],
        "created_at": row["created_at"],
    }
