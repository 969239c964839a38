"""What a semantic store search costs without sqlite-vec: `store.asearch(prefix, query=...)` on
the runtime's store (`SqliteStorage`, one SQLite file in a temporary folder) over N items of D
dimensions, all under the searched prefix, so every search scores every item.

A script, not a test: it prints the median and p90 wall time of a search (limit 10) and the
part of it spent ranking in Python. The embeddings are seeded random vectors made in-process, so
the figures are the store's cost alone, without an embedding model's.

    .venv/bin/python benchmarks/bench_store_search.py [--items 1000 10000] [--dims 256 1536]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import statistics
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings
from langgraph.store.base import PutOp

from agent_runtime.storage import store_vectors
from agent_runtime.storage.sqlite import SqliteStorage

BATCH = 500


class SeededEmbeddings(Embeddings):
    """A vector per text, random but the same every time for the same text."""

    def __init__(self, dims: int) -> None:
        self.dims = dims

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return [self.embed_query(text) for text in texts]

    def embed_query(self, text: str) -> list[float]:
        rng = random.Random(zlib.crc32(text.encode()))
        return [rng.random() - 0.5 for _ in range(self.dims)]


async def measure(items: int, dims: int, searches: int, folder: Path) -> dict[str, float]:
    index = {"dims": dims, "embed": SeededEmbeddings(dims), "fields": ["text"]}
    storage = SqliteStorage(folder / f"store-{items}-{dims}.sqlite", store_config={"index": index})
    await storage.setup()
    ranking: list[float] = []
    rank = store_vectors._rank

    def timed_rank(
        query: list[float], vectors: list[tuple[str, str, bytes, float]], count: int
    ) -> list[tuple[tuple[str, str], float]]:
        started = time.perf_counter()
        try:
            return rank(query, vectors, count)
        finally:
            ranking.append(time.perf_counter() - started)

    try:
        store = storage.store
        for start in range(0, items, BATCH):
            ops = [
                PutOp(("docs",), f"item-{n}", {"text": f"document number {n}"})
                for n in range(start, min(start + BATCH, items))
            ]
            await store.abatch(ops)
        store_vectors._rank = timed_rank
        await store.asearch(("docs",), query="warm-up", limit=10)
        ranking.clear()
        times = []
        for n in range(searches):
            started = time.perf_counter()
            found = await store.asearch(("docs",), query=f"query {n}", limit=10)
            times.append(time.perf_counter() - started)
            assert len(found) == 10 and found[0].score is not None
        size = storage.path.stat().st_size + _wal_size(storage.path)
    finally:
        store_vectors._rank = rank
        await storage.close()
    return {
        "median_ms": statistics.median(times) * 1000,
        "p90_ms": _p90(times) * 1000,
        "rank_ms": statistics.median(ranking) * 1000,
        "db_mb": size / 1e6,
    }


def _p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.9))]


def _wal_size(path: Path) -> int:
    wal = path.with_name(path.name + "-wal")
    return wal.stat().st_size if wal.exists() else 0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--items", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--dims", type=int, nargs="+", default=[256, 1536])
    parser.add_argument("--searches", type=int, default=15)
    args = parser.parse_args()
    dot: Callable[..., Any] = store_vectors._dot
    print(
        f"Python {sys.version.split()[0]}, dot product: {getattr(dot, '__name__', dot)}, "
        f"load average {os.getloadavg()[0]:.2f}"
    )
    print(f"{'items':>7} {'dims':>5} {'median':>8} {'p90':>8} {'ranking':>8} {'db':>6}")
    with tempfile.TemporaryDirectory() as folder:
        for items in args.items:
            for dims in args.dims:
                row = asyncio.run(measure(items, dims, args.searches, Path(folder)))
                print(
                    f"{items:>7} {dims:>5} {row['median_ms']:>5.1f} ms {row['p90_ms']:>5.1f} ms "
                    f"{row['rank_ms']:>5.1f} ms {row['db_mb']:>3.0f} MB"
                )


if __name__ == "__main__":
    main()
