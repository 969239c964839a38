"""Scale-out: runs/s and server CPU per run at high concurrency for 1, 2 and 4 server processes on
PostgreSQL (with Redis), against 1 process on SQLite, and `runs.wait` latency at concurrency 1 on
each backend; each as a ratio to the floor, the same graph invoked in-process on the same kind of
database (LangGraph's `AsyncSqliteSaver` / `AsyncPostgresSaver`).

A script, not a test: it prints one table and exits non-zero only when it cannot measure.
Localhost only; every loop is bounded by the run counts given on the command line. It needs the
machine's PostgreSQL (`--postgres`, default the local `test` database: fresh databases are made
beside it and dropped) and Redis (`--redis`).

    .venv/bin/python benchmarks/bench_scale.py [--runs 100] [--runs-concurrent 640] \
        [--workers 1,2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench_runs import (
    CONFIG,
    GRAPH_ID,
    USER,
    _concurrently,
    _open_saver,
    _timed_serial,
    fresh_database,
    process_cpu_seconds,
    stop_server,
)
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
from langgraph_sdk import get_client
from psycopg.rows import dict_row
from psycopg_pool import AsyncConnectionPool

from agent_runtime.config import load_config
from agent_runtime.registry import GraphRegistry, import_graphs

STARTUP_TIMEOUT_SECONDS = 60.0
_API_LINE = re.compile(r"API: (http://\S+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One configuration's measurements; times in seconds."""

    latency: list[float]
    """Wall time of each run at concurrency 1."""
    throughput: float
    """Runs per second at the high concurrency."""
    cpu_per_run: float
    """CPU time of every process doing the runs (all server processes together), per run, at
    the high concurrency."""


# In-process floor


async def _measure_in_process(
    args: argparse.Namespace, checkpointer: BaseCheckpointSaver[Any], folder: Path
) -> Figures:
    # The config only says which graphs to build; the checkpointer is the one given.
    config = load_config(CONFIG, database=folder / "unused.sqlite", environ={})
    registry = GraphRegistry(import_graphs(config), checkpointer=checkpointer, store=None)
    graph = await registry.get_graph(GRAPH_ID)

    async def invoke() -> None:
        await graph.ainvoke(USER, {"configurable": {"thread_id": str(uuid.uuid4())}})

    await _timed_serial(args.warmup, invoke)
    latency = await _timed_serial(args.runs, invoke)
    await _concurrently(args.warmup, args.concurrency, invoke)
    cpu = time.process_time()
    wall = await _concurrently(args.runs_concurrent, args.concurrency, invoke)
    return Figures(
        latency=latency,
        throughput=args.runs_concurrent / wall,
        cpu_per_run=(time.process_time() - cpu) / args.runs_concurrent,
    )


async def in_process_sqlite(args: argparse.Namespace, folder: Path) -> Figures:
    path = folder / "floor.sqlite"
    saver, conn = await _open_saver(path)
    try:
        return await _measure_in_process(args, saver, folder)
    finally:
        await conn.close()


async def in_process_postgres(args: argparse.Namespace, uri: str, folder: Path) -> Figures:
    # As upstream documents a pooled saver: autocommit, dict rows, no server-side prepares.
    async with AsyncConnectionPool(
        uri,
        min_size=4,
        max_size=args.concurrency,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await saver.setup()
        return await _measure_in_process(args, saver, folder)


# Through the server


def process_tree(pid: int) -> list[int]:
    """`pid` and every process below it (a `--workers` supervisor's children)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        for task in Path(f"/proc/{current}/task").glob("*"):
            with contextlib.suppress(OSError):
                todo.extend(int(child) for child in (task / "children").read_text().split())
    return found


def tree_cpu_seconds(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        with contextlib.suppress(OSError):
            total += process_cpu_seconds(pid)
    return total


def start_server(
    folder: Path, database: str, *, workers: int, redis: str | None
) -> tuple[subprocess.Popen[bytes], str]:
    log_path = folder / f"server-{uuid.uuid4().hex[:6]}.log"
    command = [
        str(Path(sys.executable).with_name("agent-runtime")),
        "serve",
        "--config",
        str(CONFIG),
        "--host",
        "127.0.0.1",
        "--port",
        "0" if workers == 1 else str(_free_port()),
        "--database",
        database,
        "--workers",
        str(workers),
    ]
    if redis:
        command += ["--redis", redis]
    with log_path.open("wb") as log:
        server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        match = _API_LINE.search(text)
        if match and text.count("Application startup complete") >= workers:
            return server, match.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    stop_server(server)
    raise SystemExit(f"the server did not start; its output:\n{log_path.read_text()}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


async def through_server(args: argparse.Namespace, url: str, pid: int) -> Figures:
    client = get_client(url=url, api_key=None)
    try:

        async def threads(count: int) -> list[str]:
            made: list[str] = []

            async def create() -> None:
                made.append((await client.threads.create())["thread_id"])

            await _concurrently(count, args.concurrency, create)
            return made

        def waiter(thread_ids: list[str]) -> Callable[[], Awaitable[None]]:
            pending = iter(thread_ids)

            async def wait() -> None:
                await client.runs.wait(next(pending), GRAPH_ID, input=USER)

            return wait

        await _timed_serial(args.warmup, waiter(await threads(args.warmup)))
        latency = await _timed_serial(args.runs, waiter(await threads(args.runs)))
        await _concurrently(args.warmup, args.concurrency, waiter(await threads(args.warmup)))
        concurrent = waiter(await threads(args.runs_concurrent))
        pids = process_tree(pid)
        cpu = tree_cpu_seconds(pids)
        wall = await _concurrently(args.runs_concurrent, args.concurrency, concurrent)
        cpu_per_run = (tree_cpu_seconds(pids) - cpu) / args.runs_concurrent
    finally:
        await client.http.client.aclose()
    return Figures(latency=latency, throughput=args.runs_concurrent / wall, cpu_per_run=cpu_per_run)


async def served(
    args: argparse.Namespace, folder: Path, database: str, *, workers: int, redis: str | None
) -> Figures:
    server, url = start_server(folder, database, workers=workers, redis=redis)
    try:
        return await through_server(args, url, server.pid)
    finally:
        stop_server(server)


# Reporting


def report(args: argparse.Namespace, results: dict[str, Figures], floors: dict[str, str]) -> str:
    ms = 1000.0
    header = (
        "configuration",
        "floor",
        f"runs/s c={args.concurrency}",
        "ratio",
        f"CPU/run c={args.concurrency} (ms)",
        "ratio",
        "wait c=1 median (ms)",
        "ratio",
    )
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    for name, figures in results.items():
        floor = results[floors[name]]
        median = statistics.median(figures.latency)
        floor_median = statistics.median(floor.latency)
        cells = (
            name,
            floors[name],
            f"{figures.throughput:.1f}",
            f"{figures.throughput / floor.throughput:.2f}x",
            f"{figures.cpu_per_run * ms:.2f}",
            f"{figures.cpu_per_run / floor.cpu_per_run:.2f}x",
            f"{median * ms:.2f}",
            f"{median / floor_median:.2f}x",
        )
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100, help="runs at concurrency 1")
    parser.add_argument("--runs-concurrent", type=int, default=640, help="runs at concurrency")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=20)
    parser.add_argument("--workers", default="1,2,4", help="process counts on Postgres")
    parser.add_argument("--postgres", default="postgresql://127.0.0.1:5432/test")
    parser.add_argument("--redis", default="redis://127.0.0.1:6379/0")
    return parser


async def _main(args: argparse.Namespace, folder: Path) -> None:
    results: dict[str, Figures] = {}
    floors: dict[str, str] = {}
    print("in-process on SQLite ...", flush=True)
    results["in-process, SQLite"] = await in_process_sqlite(args, folder)
    floors["in-process, SQLite"] = "in-process, SQLite"
    async with fresh_database(args.postgres) as uri:
        print("in-process on Postgres ...", flush=True)
        results["in-process, Postgres"] = await in_process_postgres(args, uri, folder)
    floors["in-process, Postgres"] = "in-process, Postgres"
    print("server, 1 process on SQLite ...", flush=True)
    name = "server, 1 process, SQLite"
    results[name] = await served(args, folder, str(folder / "server.sqlite"), workers=1, redis=None)
    floors[name] = "in-process, SQLite"
    for workers in (int(part) for part in args.workers.split(",")):
        name = f"server, {workers} process{'es' if workers > 1 else ''}, Postgres + Redis"
        print(f"{name} ...", flush=True)
        async with fresh_database(args.postgres) as uri:
            results[name] = await served(args, folder, uri, workers=workers, redis=args.redis)
        floors[name] = "in-process, Postgres"
    print()
    print(report(args, results, floors))


def main() -> None:
    args = _parser().parse_args()
    if min(args.runs, args.runs_concurrent) < 2 or args.concurrency < 1:
        raise SystemExit("each run count must be at least 2 and the concurrency at least 1")
    print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}")
    print(f"load average before: {' '.join(f'{v:.2f}' for v in os.getloadavg())}", flush=True)
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as tmp:
        asyncio.run(_main(args, Path(tmp)))
    print(f"load average after: {' '.join(f'{v:.2f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
