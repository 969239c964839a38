"""`threads.search` at limit 10 as the thread count grows: is it cheap, and flat in the count?

A script, not a test. For each thread count (1,000 / 5,000 / 20,000 by default) it fills a fresh
database in-process through the runtime's storage (not timed): every thread has metadata (a
`user_id` shared by 5 threads, a `source` half the threads share, a `graph_id` all share), and
every other thread has values (a short conversation), usage and a finished-run status. Then it
starts `agent-runtime serve` on that database and times, through HTTP with `langgraph_sdk`,
`client.threads.search(..., limit=10)` in these shapes:

- unfiltered (the SDK's default: newest first by `created_at`)
- by a common metadata key (`{"source": "web"}`: half the threads)
- by a rare metadata key (`{"user_id": ...}`: 5 threads, whatever the count)
- sorted by `updated_at`

Each figure is the median wall time of a call seen by the client, and the server's CPU time per
call (all its threads, from /proc). "floor" in `--json` is the 1,000-thread figure: the ratio
says how flat the search is in the thread count; the target is 5 ms a call.

    .venv/bin/python benchmarks/bench_search.py [--backend sqlite|postgres] [--quick]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
from bench_runs import fresh_database, process_cpu_seconds, stop_server
from bench_scale import start_server
from langgraph_sdk import get_client

from agent_runtime.schema import Usage
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import NewThread, RunOutcome
from agent_runtime.storage.sqlite import SqliteStorage

TARGET_MS = 5.0
FLAT_RATIO = 1.5
"""At most this much slower at N threads than at 1,000 counts as flat."""
THREADS_PER_USER = 5
SOURCES = ("web", "web", "api", "slack")
BATCH = 50


Results = dict[int, dict[str, tuple[float, float]]]
"""Per thread count, per shape: median wall time of a call and the server's CPU per call (ms)."""


@dataclass(frozen=True, slots=True)
class Shape:
    name: str
    kwargs: Callable[[int], dict[str, Any]]
    """The search's arguments for a database of N threads."""


SHAPES = (
    Shape("unfiltered", lambda n: {}),
    Shape("metadata, common key", lambda n: {"metadata": {"source": "web"}}),
    Shape("metadata, rare key", lambda n: {"metadata": {"user_id": _user(n // 2, n)}}),
    Shape("sort_by updated_at", lambda n: {"sort_by": "updated_at", "sort_order": "desc"}),
)


def _user(index: int, threads: int) -> str:
    return f"user-{index % max(1, threads // THREADS_PER_USER):06d}"


class SteppingClock:
    """Each reading one millisecond after the last, from a fixed start: distinct, ordered stamps
    spread as a busy server's would be."""

    def __init__(self) -> None:
        self.moment = datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        self.moment += timedelta(milliseconds=1)
        return self.moment

    def monotonic(self) -> float:
        return time.monotonic()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(seconds)


async def fill(storage: Storage, threads: int) -> None:
    """`threads` threads; every other one with values, usage and an idle status after a run."""

    async def one(index: int) -> None:
        thread_id = str(uuid.UUID(int=index + 1, version=4))
        metadata = {
            "user_id": _user(index, threads),
            "source": SOURCES[index % len(SOURCES)],
            "graph_id": "chat",
            "title": f"conversation {index}",
        }
        await storage.create_thread(
            NewThread(thread_id=thread_id, metadata=metadata), if_exists="raise"
        )
        if index % 2 == 0:
            messages = [
                {"type": "human", "content": f"question {index}", "id": f"m{index}-1"},
                {"type": "ai", "content": f"answer {index} " * 20, "id": f"m{index}-2"},
            ]
            usage: Usage = {
                "input_tokens": 10,
                "output_tokens": 40,
                "total_tokens": 50,
                "cost_usd": None,
                "by_model": {},
            }
            outcome = RunOutcome(status="success", values={"messages": messages}, usage=usage)
            await storage.settle_thread(thread_id, outcome)

    for start in range(0, threads, BATCH):
        await asyncio.gather(*(one(i) for i in range(start, min(start + BATCH, threads))))


@contextlib.asynccontextmanager
async def filled_database(
    backend: str, threads: int, folder: Path, postgres: str
) -> AsyncIterator[str]:
    """A fresh database of `threads` threads; yields what `serve --database` takes."""
    clock = SteppingClock()
    if backend == "sqlite":
        path = folder / f"search-{threads}-{uuid.uuid4().hex[:6]}.sqlite"
        storage: Storage = SqliteStorage(path, clock=clock, synchronous="normal")
        await storage.setup()
        try:
            await fill(storage, threads)
        finally:
            await storage.close()
        yield str(path)
        return
    from agent_runtime.storage.postgres import PostgresStorage

    async with fresh_database(postgres) as uri:
        storage = PostgresStorage(uri, clock=clock)
        await storage.setup()
        try:
            await fill(storage, threads)
        finally:
            await storage.close()
        # What autovacuum does within a minute of such a load: the planner's statistics.
        async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
            await conn.execute("ANALYZE")
        yield uri


async def time_searches(
    url: str, pid: int, threads: int, calls: int, warmup: int
) -> dict[str, tuple[float, float]]:
    """Per shape: median wall time of a call (ms) and the server's CPU per call (ms)."""
    client = get_client(url=url, api_key=None)
    found: dict[str, tuple[float, float]] = {}
    try:
        for shape in SHAPES:
            kwargs = shape.kwargs(threads)

            async def call(kwargs: dict[str, Any] = kwargs) -> Any:
                return await client.threads.search(limit=10, **kwargs)

            for _ in range(warmup):
                result = await call()
            expected = THREADS_PER_USER if "rare" in shape.name else 10
            assert len(result) == expected, (shape.name, len(result))
            found[shape.name] = await _timed(call, pid, calls)
    finally:
        await client.http.client.aclose()
    return found


async def _timed(call: Callable[[], Awaitable[Any]], pid: int, calls: int) -> tuple[float, float]:
    times = []
    cpu_before = process_cpu_seconds(pid)
    for _ in range(calls):
        started = time.perf_counter()
        await call()
        times.append(time.perf_counter() - started)
    cpu = process_cpu_seconds(pid) - cpu_before
    return statistics.median(times) * 1000, cpu / calls * 1000


async def measure(args: argparse.Namespace, folder: Path) -> Results:
    results: Results = {}
    for threads in args.threads:
        print(f"{threads} threads: filling ...", flush=True)
        started = time.monotonic()
        async with filled_database(args.backend, threads, folder, args.postgres) as database:
            print(f"  filled in {time.monotonic() - started:.1f} s; searching ...", flush=True)
            server, url = start_server(folder, database, workers=1, redis=None)
            try:
                results[threads] = await time_searches(
                    url, server.pid, threads, args.calls, args.warmup
                )
            finally:
                stop_server(server)
    return results


def report(args: argparse.Namespace, results: Results) -> str:
    floor_count = args.threads[0]
    header = f"{'shape':<22}" + "".join(f"{n:>10,} thr" for n in args.threads)
    lines = [
        f"threads.search limit 10 on {args.backend}: median ms a call (server CPU ms a call)",
        header + "   ratio to first",
    ]
    for shape in SHAPES:
        cells = "".join(
            f"{results[n][shape.name][0]:>6.2f} ({results[n][shape.name][1]:4.2f})"
            for n in args.threads
        )
        floor = results[floor_count][shape.name][0]
        ratios = " ".join(f"{results[n][shape.name][0] / floor:.2f}x" for n in args.threads[1:])
        lines.append(f"{shape.name:<22}{cells}   {ratios}")
    return "\n".join(lines)


def json_rows(args: argparse.Namespace, results: Results) -> list[dict[str, Any]]:
    floor_count = args.threads[0]
    rows = []
    for shape in SHAPES:
        floor = results[floor_count][shape.name][0]
        for threads in args.threads:
            server = results[threads][shape.name][0]
            ratio = server / floor
            rows.append(
                {
                    "figure": f"threads.search limit 10, {shape.name}, {threads:,} threads "
                    f"(floor: {floor_count:,} threads)",
                    "unit": "ms",
                    "floor": round(floor, 3),
                    "server": round(server, 3),
                    "ratio": round(ratio, 3),
                    "target": f"<= {TARGET_MS:g} ms and ratio <= {FLAT_RATIO:g}",
                    "met": server <= TARGET_MS and ratio <= FLAT_RATIO,
                }
            )
    return rows


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--threads", type=int, nargs="+", default=[1000, 5000, 20000])
    parser.add_argument("--calls", type=int, default=50, help="timed calls per shape")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="1,000 and 5,000 threads, 20 calls")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.quick:
        args.threads, args.calls = [1000, 5000], 20
    if args.calls < 1 or args.warmup < 1 or min(args.threads) < 2 * THREADS_PER_USER:
        raise SystemExit("--calls and --warmup must be at least 1, --threads at least 10")
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}  backend: {args.backend}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-search-") as tmp:
        results = asyncio.run(measure(args, Path(tmp)))
    load = list(os.getloadavg())
    print()
    print(report(args, results))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in load)}")
    if args.json:
        payload = {"rows": json_rows(args, results), "load": load, "backend": args.backend}
        args.json.write_text(json.dumps(payload, indent=2) + "\n")


if __name__ == "__main__":
    main()
