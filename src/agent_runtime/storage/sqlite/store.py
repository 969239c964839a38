"""LangGraph's SQLite store with semantic search that needs no SQLite extension.

LangGraph's own vector path loads sqlite-vec, which many Pythons cannot do (no
`enable_load_extension`). Here each item's embeddings live in a table of ours in the same file,
rewritten with the item in one transaction, and a query ranks the items under the namespace
prefix that pass the filter by cosine similarity (an item scores its best field), in Python. One
path on every Python, so a database moves between them intact. All else is `AsyncSqliteStore`.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import operator
import sys
from array import array
from collections.abc import Callable, Iterable, Sequence
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
    get_text_at_path,
)
from langgraph.store.sqlite.aio import AsyncSqliteStore
from langgraph.store.sqlite.base import (
    _decode_ns_text,
    _group_ops,
    _namespace_to_text,
    _row_to_search_item,
)

from agent_runtime.errors import ConfigError
from agent_runtime.storage.store_index import StoreIndex, field_paths

logger = logging.getLogger(__name__)

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

_Key = tuple[str, str]
_Row = tuple[str, str, str, bytes, float]
"""prefix, key, field name, float32 little-endian embedding, its Euclidean norm."""

_dot: Callable[[Sequence[float], Sequence[float]], float] = getattr(
    math, "sumprod", lambda a, b: sum(map(operator.mul, a, b))
)
"""`math.sumprod` (Python 3.12+) is a C loop, about ten times the pure-Python fallback."""


class RuntimeSqliteStore(AsyncSqliteStore):
    """`AsyncSqliteStore` whose semantic index is a table of ours, searched in Python."""

    def __init__(
        self, conn: aiosqlite.Connection, *, index: StoreIndex | None, ttl: TTLConfig | None
    ) -> None:
        # No index for the parent: its vector path would load sqlite-vec at setup.
        super().__init__(conn, ttl=ttl)
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
        final_puts = _last_writes(puts)
        rows = await self._embed_items(final_puts)
        queries = await self._embed_queries({op.query for _, op in ranked if op.query})
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

    async def _embed_items(self, puts: Sequence[PutOp]) -> list[_Row]:
        if self.index is None:
            return []
        wanted: list[tuple[str, str, str, str]] = []
        for op in puts:
            if op.value is None or op.index is False:
                continue
            paths = self.index.fields if op.index is None else field_paths(op.index)
            prefix = _namespace_to_text(op.namespace)
            for path, tokens in paths:
                texts = get_text_at_path(op.value, tokens)
                for n, text in enumerate(texts):
                    wanted.append((prefix, op.key, f"{path}.{n}" if len(texts) > 1 else path, text))
        if not wanted:
            return []
        vectors = await self.index.embeddings.aembed_documents([text for *_, text in wanted])
        rows: list[_Row] = []
        for (prefix, key, field, _), vector in zip(wanted, vectors, strict=True):
            self._check_dims(vector, f'item "{key}" in namespace "{prefix}"')
            rows.append((prefix, key, field, _pack(vector), math.hypot(*vector)))
        return rows

    async def _embed_queries(self, queries: set[str]) -> dict[str, list[float]]:
        if self.index is None or not queries:
            return {}
        ordered = sorted(queries)
        embed = self.index.embeddings.aembed_query
        vectors = await asyncio.gather(*(embed(query) for query in ordered))
        for query, vector in zip(ordered, vectors, strict=True):
            self._check_dims(vector, f'the query "{query}"')
        return dict(zip(ordered, vectors, strict=True))

    def _check_dims(self, vector: Sequence[float], what: str) -> None:
        assert self.index is not None
        if len(vector) != self.index.dims:
            raise ConfigError(
                f"langgraph.json: store.index.dims is {self.index.dims}, but the embeddings "
                f"returned {len(vector)} numbers for {what}; set dims to {len(vector)}"
            )

    async def _replace_embeddings(
        self, puts: Sequence[PutOp], rows: list[_Row], cur: aiosqlite.Cursor
    ) -> None:
        # Every put drops the item's old embeddings, indexed or not, so none outlive its text.
        await cur.executemany(
            "DELETE FROM store_embeddings WHERE prefix = ? AND key = ?",
            [(_namespace_to_text(op.namespace), op.key) for op in puts],
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
        # Scoring is CPU-bound: off the event loop, so the server keeps answering meanwhile.
        best = await asyncio.to_thread(_rank, query, vectors, op.offset + op.limit)
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


def _last_writes(puts: Sequence[tuple[int, PutOp]]) -> list[PutOp]:
    # As the parent writes them: the last put of a (namespace, key) in a batch wins.
    final: dict[tuple[tuple[str, ...], str], PutOp] = {}
    for _, op in puts:
        final[(op.namespace, op.key)] = op
    return list(final.values())


def _rank(
    query: list[float], vectors: list[tuple[str, str, bytes, float]], count: int
) -> list[tuple[_Key, float]]:
    query_norm = math.hypot(*query)
    best: dict[_Key, float] = {}
    stale = 0
    for prefix, key, blob, norm in vectors:
        vector = _unpack(blob)
        if len(vector) != len(query):
            stale += 1
            continue
        score = _dot(query, vector) / (query_norm * norm) if query_norm and norm else 0.0
        item = (prefix, key)
        if item not in best or score > best[item]:
            best[item] = score
    if stale:
        logger.warning(
            "Store search skipped %d embeddings of another size than store.index.dims (%d); "
            "put those items again to index them with the current embeddings",
            stale,
            len(query),
        )
    # Ties go by namespace and key, so that equal scores page the same way every time.
    return heapq.nsmallest(count, best.items(), key=lambda item: (-item[1], item[0]))


_SWAP = sys.byteorder != "little"


def _pack(vector: Sequence[float]) -> bytes:
    floats = array("f", vector)
    if _SWAP:
        floats.byteswap()
    return floats.tobytes()


def _unpack(blob: bytes) -> Sequence[float]:
    if not _SWAP:
        return memoryview(blob).cast("f")
    floats = array("f")
    floats.frombytes(blob)
    floats.byteswap()
    return floats
