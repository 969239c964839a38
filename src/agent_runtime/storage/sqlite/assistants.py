"""Assistants and their immutable versions in SQLite."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiosqlite

from agent_runtime.encoding import dumps_text, loads
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.schema import Assistant, AssistantVersion, Json, OnConflict
from agent_runtime.storage.filters import AuthFilter, auth_containments
from agent_runtime.storage.records import AssistantPatch, AssistantQuery, NewAssistant
from agent_runtime.storage.sqlite.containment import containment_sql
from agent_runtime.storage.sqlite.database import SqliteDatabase, fetch_row
from agent_runtime.storage.sqlite.threads import delete_thread_rows

_FIELDS = "graph_id, config, context, metadata, name, description"


class SqliteAssistants:
    _db: SqliteDatabase
    _now: Callable[[], datetime]

    async def create_assistant(self, new: NewAssistant, *, if_exists: OnConflict) -> Assistant:
        now = self._now().isoformat()
        async with self._db.transaction() as conn:
            existing = await _select(conn, new.assistant_id)
            if existing is not None:
                if if_exists == "do_nothing":
                    return _assistant(existing)
                raise ConflictError(
                    f'Assistant "{new.assistant_id}" already exists; pass if_exists="do_nothing" '
                    "to get the existing one",
                    code="assistant_exists",
                )
            values = (
                new.graph_id,
                dumps_text(new.config),
                dumps_text(new.context),
                dumps_text(new.metadata),
                new.name,
                new.description,
            )
            await conn.execute(
                f"INSERT INTO assistants (assistant_id, {_FIELDS}, version, created_at, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, 1, ?, ?)",
                (new.assistant_id, *values, now, now),
            )
            await conn.execute(
                f"INSERT INTO assistant_versions (assistant_id, version, {_FIELDS}, created_at)"
                " VALUES (?, 1, ?, ?, ?, ?, ?, ?, ?)",
                (new.assistant_id, *values, now),
            )
            row = await _select(conn, new.assistant_id)
        return _assistant(row)

    async def get_assistant(self, assistant_id: str) -> Assistant:
        row = await self._db.fetch_one(
            "SELECT * FROM assistants WHERE assistant_id = ?", (assistant_id,)
        )
        if row is None:
            raise _not_found(assistant_id)
        return _assistant(row)

    async def update_assistant(self, assistant_id: str, patch: AssistantPatch) -> Assistant:
        now = self._now().isoformat()
        async with self._db.transaction() as conn:
            current = await _select(conn, assistant_id)
            if current is None:
                raise _not_found(assistant_id)
            async with conn.execute(
                "SELECT MAX(version) FROM assistant_versions WHERE assistant_id = ?",
                (assistant_id,),
            ) as cursor:
                (latest,) = await cursor.fetchone()  # type: ignore[misc]
            metadata = loads(current["metadata"])
            if patch.metadata is not None:
                metadata.update(patch.metadata)
            values = (
                patch.graph_id or current["graph_id"],
                current["config"] if patch.config is None else dumps_text(patch.config),
                current["context"] if patch.context is None else dumps_text(patch.context),
                dumps_text(metadata),
                current["name"] if patch.name is None else patch.name,
                current["description"] if patch.description is None else patch.description,
            )
            version = int(latest) + 1
            await conn.execute(
                f"INSERT INTO assistant_versions (assistant_id, version, {_FIELDS}, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (assistant_id, version, *values, now),
            )
            await conn.execute(
                "UPDATE assistants SET graph_id = ?, config = ?, context = ?, metadata = ?,"
                " name = ?, description = ?, version = ?, updated_at = ? WHERE assistant_id = ?",
                (*values, version, now, assistant_id),
            )
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
                "DELETE FROM assistants WHERE assistant_id = ?", (assistant_id,)
            )
            if cursor.rowcount == 0:
                raise _not_found(assistant_id)
            if delete_threads:
                clauses: list[str] = []
                params: list[Any] = []
                for expected in ({"assistant_id": assistant_id}, *auth_containments(thread_auth)):
                    sql, extra = containment_sql("metadata", expected)
                    clauses.append(sql)
                    params.extend(extra)
                select = "SELECT thread_id FROM threads WHERE " + " AND ".join(clauses)
                async with conn.execute(select, params) as c:
                    thread_ids = [row[0] for row in await c.fetchall()]
                await delete_thread_rows(conn, thread_ids)

    async def search_assistants(self, query: AssistantQuery) -> list[Assistant]:
        where, params = _where(query)
        order = "ASC" if query.sort_order == "asc" else "DESC"
        rows = await self._db.fetch_all(
            f"SELECT * FROM assistants {where} ORDER BY {query.sort_by} {order}, assistant_id"
            f" {order} LIMIT ? OFFSET ?",
            [*params, query.limit, query.offset],
        )
        return [_assistant(row) for row in rows]

    async def count_assistants(self, query: AssistantQuery) -> int:
        where, params = _where(query)
        row = await self._db.fetch_one(f"SELECT COUNT(*) FROM assistants {where}", params)
        return int(row[0])

    async def list_assistant_versions(
        self, assistant_id: str, *, metadata: Json | None, limit: int, offset: int
    ) -> list[AssistantVersion]:
        await self.get_assistant(assistant_id)
        clauses, params = ["assistant_id = ?"], [assistant_id]
        if metadata:
            sql, extra = containment_sql("metadata", metadata)
            clauses.append(sql)
            params.extend(extra)
        rows = await self._db.fetch_all(
            f"SELECT * FROM assistant_versions WHERE {' AND '.join(clauses)}"
            " ORDER BY version DESC LIMIT ? OFFSET ?",
            [*params, limit, offset],
        )
        return [_version(row) for row in rows]

    async def set_latest_assistant_version(self, assistant_id: str, version: int) -> Assistant:
        now = self._now().isoformat()
        async with self._db.transaction() as conn:
            if await _select(conn, assistant_id) is None:
                raise _not_found(assistant_id)
            async with conn.execute(
                f"SELECT {_FIELDS} FROM assistant_versions WHERE assistant_id = ? AND version = ?",
                (assistant_id, version),
            ) as cursor:
                found = await cursor.fetchone()
            if found is None:
                raise NotFoundError(
                    f'Assistant "{assistant_id}" has no version {version}',
                    code="assistant_version_not_found",
                )
            await conn.execute(
                "UPDATE assistants SET graph_id = ?, config = ?, context = ?, metadata = ?,"
                " name = ?, description = ?, version = ?, updated_at = ? WHERE assistant_id = ?",
                (*tuple(found), version, now, assistant_id),
            )
            row = await _select(conn, assistant_id)
        return _assistant(row)


async def _select(conn: aiosqlite.Connection, assistant_id: str) -> Any:
    return await fetch_row(conn, "SELECT * FROM assistants WHERE assistant_id = ?", (assistant_id,))


def _where(query: AssistantQuery) -> tuple[str, list[Any]]:
    clauses: list[str] = []
    params: list[Any] = []
    if query.graph_id is not None:
        clauses.append("graph_id = ?")
        params.append(query.graph_id)
    if query.name:
        clauses.append("instr(lower(name), lower(?)) > 0")
        params.append(query.name)
    for expected in (query.metadata, *auth_containments(query.auth)):
        if expected:
            sql, extra = containment_sql("metadata", expected)
            clauses.append(sql)
            params.extend(extra)
    return ("WHERE " + " AND ".join(clauses) if clauses else ""), params


def _not_found(assistant_id: str) -> NotFoundError:
    return NotFoundError(f'Assistant "{assistant_id}" not found', code="assistant_not_found")


def _assistant(row: Any) -> Assistant:
    # An assistant is its current version plus when it last changed.
    return {**_version(row), "updated_at": datetime.fromisoformat(row["updated_at"])}


def _version(row: Any) -> AssistantVersion:
    return {
        "assistant_id": row["assistant_id"],
        "graph_id": row["graph_id"],
        "config": loads(row["config"]),
        "context": loads(row["context"]),
        "metadata": loads(row["metadata"]),
        "name": row["name"],
        "description": row["description"],
        "version": row["version"],
        "created_at": datetime.fromisoformat(row["created_at"]),
    }
