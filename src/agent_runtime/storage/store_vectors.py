"""Semantic search without a database extension, for every backend's store: embedding items and
queries with the `store.index` embeddings, packing vectors for a table of the backend's, and
ranking candidates by cosine similarity in Python (an item scores its best field). The backends
keep the vectors in a table of theirs and pick the candidates; nothing here touches a database.
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import math
import operator
import sys
from array import array
from collections.abc import Callable, Sequence

from langgraph.store.base import PutOp, get_text_at_path

from agent_runtime.errors import ConfigError
from agent_runtime.storage.store_index import StoreIndex, field_paths

logger = logging.getLogger(__name__)

ItemKey = tuple[str, str]
"""An item's namespace as text (its labels joined by ".") and its key."""
VectorRow = tuple[str, str, str, bytes, float]
"""prefix, key, field name, float32 little-endian embedding, its Euclidean norm."""

_dot: Callable[[Sequence[float], Sequence[float]], float] = getattr(
    math, "sumprod", lambda a, b: sum(map(operator.mul, a, b))
)
"""`math.sumprod` (Python 3.12+) is a C loop, about ten times the pure-Python fallback."""


def namespace_text(namespace: tuple[str, ...]) -> str:
    """A namespace as LangGraph's SQL stores store it."""
    return ".".join(namespace)


def last_writes(puts: Sequence[tuple[int, PutOp]]) -> list[PutOp]:
    """As the stores write them: the last put of a (namespace, key) in a batch wins."""
    final: dict[tuple[tuple[str, ...], str], PutOp] = {}
    for _, op in puts:
        final[(op.namespace, op.key)] = op
    return list(final.values())


async def embed_items(index: StoreIndex | None, puts: Sequence[PutOp]) -> list[VectorRow]:
    """The vectors of every indexed field of the items put (none for a delete or `index=False`).

    Raises:
        ConfigError: the embeddings returned vectors of another size than `store.index.dims`.
    """
    if index is None:
        return []
    wanted: list[tuple[str, str, str, str]] = []
    for op in puts:
        if op.value is None or op.index is False:
            continue
        paths = index.fields if op.index is None else field_paths(op.index)
        prefix = namespace_text(op.namespace)
        for path, tokens in paths:
            texts = get_text_at_path(op.value, tokens)
            for n, text in enumerate(texts):
                wanted.append((prefix, op.key, f"{path}.{n}" if len(texts) > 1 else path, text))
    if not wanted:
        return []
    vectors = await index.embeddings.aembed_documents([text for *_, text in wanted])
    rows: list[VectorRow] = []
    for (prefix, key, field, _), vector in zip(wanted, vectors, strict=True):
        check_dims(index, vector, f'item "{key}" in namespace "{prefix}"')
        rows.append((prefix, key, field, pack(vector), math.hypot(*vector)))
    return rows


async def embed_queries(index: StoreIndex | None, queries: set[str]) -> dict[str, list[float]]:
    """Each query's vector, embedded concurrently.

    Raises:
        ConfigError: as `embed_items`.
    """
    if index is None or not queries:
        return {}
    ordered = sorted(queries)
    embed = index.embeddings.aembed_query
    vectors = await asyncio.gather(*(embed(query) for query in ordered))
    for query, vector in zip(ordered, vectors, strict=True):
        check_dims(index, vector, f'the query "{query}"')
    return dict(zip(ordered, vectors, strict=True))


def check_dims(index: StoreIndex, vector: Sequence[float], what: str) -> None:
    if len(vector) != index.dims:
        raise ConfigError(
            f"langgraph.json: store.index.dims is {index.dims}, but the embeddings "
            f"returned {len(vector)} numbers for {what}; set dims to {len(vector)}"
        )


async def rank(
    query: list[float], vectors: list[tuple[str, str, bytes, float]], count: int
) -> list[tuple[ItemKey, float]]:
    """The `count` best items for the query, best first; off the event loop (CPU-bound)."""
    return await asyncio.to_thread(_rank, query, vectors, count)


def _rank(
    query: list[float], vectors: list[tuple[str, str, bytes, float]], count: int
) -> list[tuple[ItemKey, float]]:
    query_norm = math.hypot(*query)
    best: dict[ItemKey, float] = {}
    stale = 0
    for prefix, key, blob, norm in vectors:
        vector = unpack(blob)
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


def pack(vector: Sequence[float]) -> bytes:
    floats = array("f", vector)
    if _SWAP:
        floats.byteswap()
    return floats.tobytes()


def unpack(blob: bytes) -> Sequence[float]:
    if not _SWAP:
        return memoryview(blob).cast("f")
    floats = array("f")
    floats.frombytes(blob)
    floats.byteswap()
    return floats
