"""LangGraph's Postgres store on our pool, with `store.index` served by pgvector where the
database has the `vector` extension, else by the same Python-side search as SQLite's store
(`storage.store_vectors`): each item's embeddings in a table of ours, replaced with the item in
one transaction, and candidates ranked by cosine similarity. TTLs are upstream's."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, cast

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
from langgraph.store.postgres.aio import AsyncPostgresStore
from langgraph.store.postgres.base import _decode_ns_bytes, _group_ops, _row_to_search_item
from psycopg import AsyncCursor
from psycopg.rows import DictRow

from agent_runtime.storage.postgres.database import Conn, PostgresDatabase
from agent_runtime.storage.store_index import StoreIndex
from agent_runtime.storage.store_vectors import (
    VectorRow,
    embed_items,
    embed_queries,
    last_writes,
    namespace_text,
    rank,
)

_FALLBACK_SCHEMA = """
CREATE TABLE IF NOT EXISTS store_embeddings (
    prefix TEXT NOT NULL,
    key TEXT NOT NULL,
    field_name TEXT NOT NULL,
    embedding BYTEA NOT NULL,
    norm DOUBLE PRECISION NOT NULL,
    PRIMARY KEY (prefix, key, field_name)
);
-- Deletes, TTL sweeps included, take the item's embeddings with them.
CREATE OR REPLACE FUNCTION store_embeddings_follow_deletes() RETURNS trigger AS $$
BEGIN
    DELETE FROM store_embeddings WHERE prefix = OLD.prefix AND key = OLD.key;
    RETURN OLD;
END;
$$ LANGUAGE plpgsql;
CREATE OR REPLACE TRIGGER store_embeddings_follow_deletes AFTER DELETE ON store
    FOR EACH ROW EXECUTE FUNCTION store_embeddings_follow_deletes();
"""


async def has_pgvector(conn: Conn) -> bool:
    """Whether the database can have the `vector` extension (installed, or installable)."""
    cursor = await conn.execute("SELECT 1 FROM pg_available_extensions WHERE name = 'vector'")
    return await cursor.fetchone() is not None


class RuntimePostgresStore(AsyncPostgresStore):
    """`AsyncPostgresStore` whose semantic index is pgvector (`vector=True`) or a table of
    ours searched in Python."""

    def __init__(
        self,
        database: PostgresDatabase,
        *,
        index: StoreIndex | None,
        ttl: TTLConfig | None,
        vector: bool,
    ) -> None:
        upstream: Any = None
        if index is not None and vector:
            upstream = {
                "dims": index.dims,
                "embed": index.embeddings,
                "fields": [path for path, _ in index.fields],
            }
        super().__init__(database.pool, index=upstream, ttl=ttl)
        self._database = database
        # Upstream says yes whatever its config; an item's `ttl` means something only with one.
        self.supports_ttl = bool(ttl)
        # The fallback's index; None when there is none or pgvector serves it.
        self.fallback = None if upstream is not None else index

    async def setup(self) -> None:
        with self._database.translated():
            await super().setup()
            if self.fallback is not None:
                async with self._database.connection() as conn:
                    await conn.execute(_FALLBACK_SCHEMA)

    async def abatch(self, ops: Iterable[Op]) -> list[Result]:
        if self.fallback is None:
            with self._database.translated():
                return await super().abatch(ops)
        return await self._fallback_batch(ops)

    async def _fallback_batch(self, ops: Iterable[Op]) -> list[Result]:
        grouped, count = _group_ops(ops)
        results: list[Result] = [None] * count
        puts = cast(list[tuple[int, PutOp]], grouped.get(PutOp, []))
        searches = cast(list[tuple[int, SearchOp]], grouped.get(SearchOp, []))
        ranked = [(i, op) for i, op in searches if op.query]
        plain = [(i, op) for i, op in searches if not op.query]
        # Embedding calls a model, often over the network: before the transaction, not in it.
        final_puts = last_writes(puts)
        rows = await embed_items(self.fallback, final_puts)
        queries = await embed_queries(self.fallback, {op.query for _, op in ranked if op.query})
        async with self._database.transaction() as conn:
            cur = conn.cursor()
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
                await _replace_embeddings(final_puts, rows, cur)
        return results

    async def _ranked_search(
        self, op: SearchOp, query: list[float], cur: AsyncCursor[DictRow]
    ) -> list[SearchItem]:
        # Upstream's plain search, unbounded (LIMIT NULL), picks the candidates: namespace,
        # filter and expiry semantics are then exactly those of a search without a query.
        unbounded = SearchOp(op.namespace_prefix, op.filter, cast(int, None), 0, None, False)
        [(candidates, params)], _ = self._prepare_batch_search_queries([(0, unbounded)])
        await cur.execute(
            "SELECT e.prefix, e.key, e.embedding, e.norm FROM "
            f"({candidates}) AS c JOIN store_embeddings AS e "
            "ON e.prefix = c.prefix AND e.key = c.key",
            params,
        )
        vectors = [
            (row["prefix"], row["key"], bytes(row["embedding"]), row["norm"])
            for row in await cur.fetchall()
        ]
        page = (await rank(query, vectors, op.offset + op.limit))[op.offset :]
        if not page:
            return []
        prefixes = [prefix for (prefix, _), _ in page]
        keys = [key for (_, key), _ in page]
        await cur.execute(
            "SELECT prefix, key, value, created_at, updated_at FROM store"
            " WHERE (prefix, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))",
            (prefixes, keys),
        )
        found = {(row["prefix"], row["key"]): row for row in await cur.fetchall()}
        if op.refresh_ttl and self.ttl_config and self.ttl_config.get("refresh_on_read"):
            await cur.execute(
                "UPDATE store SET expires_at = NOW() + (ttl_minutes || ' minutes')::interval"
                " WHERE (prefix, key) IN (SELECT * FROM unnest(%s::text[], %s::text[]))"
                " AND ttl_minutes IS NOT NULL",
                (prefixes, keys),
            )
        return [
            _row_to_search_item(
                _decode_ns_bytes(key[0]),
                cast(Any, {**row, "score": score}),
                loader=self._deserializer,
            )
            for key, score in page
            if (row := found.get(key)) is not None
        ]


async def _replace_embeddings(
    puts: Sequence[PutOp], rows: list[VectorRow], cur: AsyncCursor[DictRow]
) -> None:
    # Every put drops the item's old embeddings, indexed or not, so none outlive its text.
    await cur.executemany(
        "DELETE FROM store_embeddings WHERE prefix = %s AND key = %s",
        [(namespace_text(op.namespace), op.key) for op in puts],
    )
    if rows:
        await cur.executemany(
            "INSERT INTO store_embeddings (prefix, key, field_name, embedding, norm)"
            " VALUES (%s, %s, %s, %s, %s) ON CONFLICT (prefix, key, field_name)"
            " DO UPDATE SET embedding = excluded.embedding, norm = excluded.norm",
            rows,
        )
