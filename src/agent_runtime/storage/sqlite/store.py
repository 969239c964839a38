"""LangGraph's SQLite store with semantic search that needs no SQLite extension.

LangGraph's own vector path loads sqlite-vec, which many Pythons cannot do (no
`enable_load_extension`). Here each item's embeddings live in a table of ours in the same file,
rewritten with the item in one transaction, and a query ranks the items under the namespace
prefix that pass the filter by cosine similarity (`storage.store_vectors`, shared with the
Postgres store). One path on every Python, so a database moves between them intact. All else
is `AsyncSqliteStore`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import cast

import aiosqlite
from langgraph.store.base import (
    GetOp,
    ListNamespacesOp,
    Op,
    PutOp,
    Result,
    SearchItem,
    SearchOp,
    TTLConfig,
)
from langgraph.store.sqlite.aio import AsyncSqliteStore
from langgraph.store.sqlite.base import _decode_ns_text, _group_ops, _row_to_search_item

from agent_runtime.storage.store_index import StoreIndex
from agent_runtime.storage.store_vectors import (
    VectorRow,
    embed_items,
    embed_queries,
    last_writes,
    namespace_text,
    rank,
)

_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_embeddings (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    field_name TEXT NOT NULL,
    embedding BLOB NOT NULL,
    norm REAL NOT NULL,
    PRIMARY KEY (prefix, key, field_name)
);
-- Deletes, TTL sweeps included, take the item's embeddings with them. A put replaces them
-- itself: SQLite's INSERT OR REPLACE fires no delete trigger.
CREATE TRIGGER IF NOT EXISTS store_embeddings_follow_deletes AFTER DELETE ON store
BEGIN
    DELETE FROM store_embeddings WHERE prefix = OLD.prefix AND key = OLD.key;
END;
"""


class RuntimeSqliteStore(AsyncSqliteStore):
    """`AsyncSqliteStore` whose semantic index is a table of ours, searched in Python."""

    def __init__(
        self, conn: aiosqlite.Connection, *, index: StoreIndex | None, ttl: TTLConfig | None
    ) -> None:
        # No index for the parent: its vector path would load sqlite-vec at setup.
        super().__init__(conn, ttl=ttl)
        # `BaseStore` precedes upstream's SQLite base in the MRO, so its `False` wins there
        # whatever the config; an item's `ttl` means something only with one.
        self.supports_ttl = bool(ttl)
        self.index = index
        self._embeddings_ready = False

    async def setup(self) -> None:
        await super().setup()
        async with self.lock:
            if not self._embeddings_ready:
                await self.conn.executescript(_SCHEMA)
                self._embeddings_ready = True

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        grouped, count = _group_ops(ops)
        results: list[Result] = [None] * count
        puts = cast(list[tuple[int, PutOp]], grouped.get(PutOp, []))
        searches = cast(list[tuple[int, SearchOp]], grouped.get(SearchOp, []))
        ranked = [(i, op) for i, op in searches if op.query and self.index]
        plain = [(i, op) for i, op in searches if not (op.query and self.index)]
        # Embedding calls a model, often over the network: before the transaction, not in it.
        final_puts = last_writes(puts)
        rows = await embed_items(self.index, final_puts)
        queries = await embed_queries(self.index, {op.query for _, op in ranked if op.query})
        async with self._cursor(transaction=True) as cur:
            if GetOp in grouped:
                await self._batch_get_ops(
                    cast(Sequence[tuple[int, GetOp]], grouped[GetOp]), results, cur
                )
            if plain:
                await self._batch_search_ops(plain, results, cur)
            for i, op in ranked:
                results[i] = await self._ranked_search(op, queries[cast(str, op.query)], cur)
            if ListNamespacesOp in grouped:
                await self._batch_list_namespaces_ops(
                    cast(Sequence[tuple[int, ListNamespacesOp]], grouped[ListNamespacesOp]),
                    results,
                    cur,
                )
            if puts:
                await self._batch_put_ops(puts, cur)
                await self._replace_embeddings(final_puts, rows, cur)
        return results

    async def _replace_embeddings(
        self, puts: Sequence[PutOp], rows: list[VectorRow], cur: aiosqlite.Cursor
    ) -> None:
        # Every put drops the item's old embeddings, indexed or not, so none outlive its text.
        await cur.executemany(
            "DELETE FROM store_embeddings WHERE prefix = ? AND key = ?",
            [(namespace_text(op.namespace), op.key) for op in puts],
        )
        if rows:
            await cur.executemany(
                "INSERT OR REPLACE INTO store_embeddings "
                "(prefix, key, field_name, embedding, norm) VALUES (?, ?, ?, ?, ?)",
                rows,
            )

    async def _ranked_search(
        self, op: SearchOp, query: list[float], cur: aiosqlite.Cursor
    ) -> list[SearchItem]:
        # The parent's plain search, unbounded, picks the candidates: its namespace and filter
        # semantics are then exactly those of a search without a query.
        unbounded = SearchOp(op.namespace_prefix, op.filter, -1, 0, None, False)
        [(candidates, params, _)], _ = self._prepare_batch_search_queries([(0, unbounded)])
        await cur.execute(
            "SELECT e.prefix, e.key, e.embedding, e.norm FROM "
            f"({candidates}) AS c JOIN store_embeddings AS e "
            "ON e.prefix = c.prefix AND e.key = c.key",
            params,
        )
        vectors = cast(list[tuple[str, str, bytes, float]], await cur.fetchall())
        best = await rank(query, vectors, op.offset + op.limit)
        page = best[op.offset :]
        if not page:
            return []
        await cur.execute(
            "SELECT prefix, key, value, created_at, updated_at FROM store "
            f"WHERE (prefix, key) IN (VALUES {','.join(['(?, ?)'] * len(page))})",
            [part for (prefix, key), _ in page for part in (prefix, key)],
        )
        found = {(row[0], row[1]): row for row in await cur.fetchall()}
        if op.refresh_ttl and self.ttl_config and self.ttl_config.get("refresh_on_read"):
            await cur.executemany(
                "UPDATE store SET expires_at = "
                "DATETIME(CURRENT_TIMESTAMP, '+' || ttl_minutes || ' minutes') "
                "WHERE prefix = ? AND key = ? AND ttl_minutes IS NOT NULL",
                [key for key, _ in page],
            )
        return [
            _row_to_search_item(
                _decode_ns_text(key[0]),
                {
                    "key": key[1],
                    "value": row[2],
                    "created_at": row[3],
                    "updated_at": row[4],
                    "score": score,
                },
                loader=self._deserializer,
            )
            for key, score in page
            if (row := found.get(key)) is not None
        ]
