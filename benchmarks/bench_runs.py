"""What the server adds to a run: the example chat graph (offline model) invoked in-process on an
`AsyncSqliteSaver`, against the same graph run through `agent-runtime serve` with `langgraph_sdk`.

A script, not a test: it prints one table and exits non-zero only when it cannot measure.
Localhost only; every loop is bounded by the run counts given on the command line.

    .venv/bin/python benchmarks/bench_runs.py [--runs 200] [--runs-concurrent 640] ...
        [--sqlite-synchronous full|normal]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import re
import signal
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

import aiosqlite
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.config import load_config
from agent_runtime.registry import GraphRegistry, import_graphs

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "langgraph.json"
GRAPH_ID = "chat"
USER: dict[str, Any] = {"messages": [{"role": "user", "content": "hello there, how are you today"}]}
STARTUP_TIMEOUT_SECONDS = 30.0
ADDED_LATENCY_TARGET_MS = 5.0
CPU_RATIO_TARGET = 1.5
_API_LINE = re.compile(r"API: (http://\S+)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One side's measurements; times in seconds."""

    latency: list[float]
    """Wall time of each run at concurrency 1."""
    throughput: float
    """Runs per second at the high concurrency."""
    cpu_per_run: float
    """CPU time (user + system) of the process doing the runs, per run, at the high concurrency."""
    cpu_per_run_serial: float
    """The same at concurrency 1."""
    first_token: list[float]
    """From the request to the first message chunk of a streamed run."""


# Measuring


async def _timed_serial(runs: int, one: Callable[[], Awaitable[None]]) -> list[float]:
    durations = []
    for _ in range(runs):
        start = time.perf_counter()
        await one()
        durations.append(time.perf_counter() - start)
    return durations


async def _concurrently(runs: int, concurrency: int, one: Callable[[], Awaitable[None]]) -> float:
    """Run `one` `runs` times, at most `concurrency` at once; return the wall time."""
    remaining = iter(range(runs))

    async def worker() -> None:
        for _ in remaining:
            await one()

    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return time.perf_counter() - start


def process_cpu_seconds(pid: int) -> float:
    """CPU time of a process so far, every thread of it, at nanosecond resolution: the first
    field of /proc/<pid>/task/*/schedstat (/proc/<pid>/stat counts in 10 ms ticks)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            total += int((task / "schedstat").read_text().split()[0])
    return total / 1e9


# In-process


async def _open_saver(
    database: Path, synchronous: str = "full"
) -> tuple[AsyncSqliteSaver, aiosqlite.Connection]:
    # As the server opens its checkpointer connection: WAL, deferred transactions, and the
    # same `synchronous` so both sides wait for the disk alike.
    conn = await aiosqlite.connect(database, isolation_level="DEFERRED")
    await conn.execute("PRAGMA busy_timeout=10000")
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute(f"PRAGMA synchronous={'NORMAL' if synchronous == 'normal' else 'FULL'}")
    saver = AsyncSqliteSaver(conn)
    await saver.setup()
    return saver, conn


async def bench_in_process(args: argparse.Namespace, folder: Path) -> Figures:
    config = load_config(CONFIG, database=folder / "in-process.sqlite", environ={})
    saver, conn = await _open_saver(Path(config.database.uri), args.sqlite_synchronous)
    try:
        registry = GraphRegistry(import_graphs(config), checkpointer=saver, store=None)
        graph = await registry.get_graph(GRAPH_ID)

        def thread() -> Any:
            return {"configurable": {"thread_id": str(uuid.uuid4())}}

        async def invoke() -> None:
            await graph.ainvoke(USER, thread())

        first: list[float] = []

        async def stream() -> None:
            start, seen = time.perf_counter(), False
            async for _chunk in graph.astream(USER, thread(), stream_mode="messages"):
                if not seen:
                    first.append(time.perf_counter() - start)
                    seen = True

        await _timed_serial(args.warmup, invoke)
        cpu = time.process_time()
        latency = await _timed_serial(args.runs, invoke)
        cpu_serial = (time.process_time() - cpu) / args.runs
        await _concurrently(args.warmup, args.concurrency, invoke)
        cpu = time.process_time()
        wall = await _concurrently(args.runs_concurrent, args.concurrency, invoke)
        cpu_concurrent = (time.process_time() - cpu) / args.runs_concurrent
        await _timed_serial(args.warmup, stream)
        first.clear()
        await _timed_serial(args.runs_stream, stream)
    finally:
        await conn.close()
    return Figures(
        latency=latency,
        throughput=args.runs_concurrent / wall,
        cpu_per_run=cpu_concurrent,
        cpu_per_run_serial=cpu_serial,
        first_token=first,
    )


# Through the server


def start_server(
    folder: Path, config: Path = CONFIG, *, database: str | None = None
) -> tuple[subprocess.Popen[bytes], str]:
    """`agent-runtime serve` on a fresh database (a SQLite file in `folder` unless `database`
    names one) and a free port; returns it and its URL."""
    log_path = folder / "server.log"
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("agent-runtime")),
                "serve",
                "--config",
                str(config),
                "--host",
                "127.0.0.1",
                "--port",
                "0",
                "--database",
                database or str(folder / "server.sqlite"),
            ],
            cwd=folder,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = log_path.read_text(errors="replace")
        match = _API_LINE.search(text)
        if match and "Application startup complete" in text:
            return server, match.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.05)
    stop_server(server)
    raise SystemExit(f"the server did not start; its output:\n{log_path.read_text()}")


def stop_server(server: subprocess.Popen[bytes]) -> None:
    if server.poll() is None:
        server.send_signal(signal.SIGINT)
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()


async def bench_server(args: argparse.Namespace, url: str, pid: int) -> Figures:
    client = get_client(url=url, api_key=None)
    try:
        return await _bench_client(args, client, pid)
    finally:
        await client.http.client.aclose()


async def _bench_client(args: argparse.Namespace, client: LangGraphClient, pid: int) -> Figures:
    async def threads(count: int) -> list[str]:
        # Created before the clock starts: the in-process side has no thread rows to make.
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

    first: list[float] = []

    def streamer(thread_ids: list[str]) -> Callable[[], Awaitable[None]]:
        pending = iter(thread_ids)

        async def stream() -> None:
            start, seen = time.perf_counter(), False
            parts = client.runs.stream(
                next(pending), GRAPH_ID, input=USER, stream_mode="messages-tuple"
            )
            async for part in parts:
                if part.event == "messages" and not seen:
                    first.append(time.perf_counter() - start)
                    seen = True

        return stream

    await _timed_serial(args.warmup, waiter(await threads(args.warmup)))
    serial = waiter(await threads(args.runs))
    cpu = process_cpu_seconds(pid)
    latency = await _timed_serial(args.runs, serial)
    cpu_serial = (process_cpu_seconds(pid) - cpu) / args.runs
    await _concurrently(args.warmup, args.concurrency, waiter(await threads(args.warmup)))
    concurrent = waiter(await threads(args.runs_concurrent))
    cpu = process_cpu_seconds(pid)
    wall = await _concurrently(args.runs_concurrent, args.concurrency, concurrent)
    cpu_concurrent = (process_cpu_seconds(pid) - cpu) / args.runs_concurrent
    await _timed_serial(args.warmup, streamer(await threads(args.warmup)))
    first.clear()
    await _timed_serial(args.runs_stream, streamer(await threads(args.runs_stream)))
    return Figures(
        latency=latency,
        throughput=args.runs_concurrent / wall,
        cpu_per_run=cpu_concurrent,
        cpu_per_run_serial=cpu_serial,
        first_token=first,
    )


# Reporting


def _p90(values: list[float]) -> float:
    return statistics.quantiles(values, n=10)[8]


def report(args: argparse.Namespace, local: Figures, served: Figures) -> list[str]:
    ms = 1000.0
    c = args.concurrency
    rows: list[tuple[str, float, float, str, str, str]] = []

    def added_row(name: str, a: float, b: float, target_ms: float | None) -> None:
        verdict = "" if target_ms is None else ("pass" if b - a <= target_ms else "FAIL")
        target = "" if target_ms is None else f"+{target_ms:g} ms"
        rows.append((name, a, b, f"{b - a:+.2f}", target, verdict))

    added_row(
        "runs.wait latency c=1, median (ms)",
        statistics.median(local.latency) * ms,
        statistics.median(served.latency) * ms,
        ADDED_LATENCY_TARGET_MS,
    )
    added_row(
        "runs.wait latency c=1, p90 (ms)",
        _p90(local.latency) * ms,
        _p90(served.latency) * ms,
        None,
    )
    rows.append((f"throughput c={c} (runs/s)", local.throughput, served.throughput, "", "", ""))
    ratio = served.cpu_per_run / local.cpu_per_run
    rows.append(
        (
            f"CPU per run c={c} (ms)",
            local.cpu_per_run * ms,
            served.cpu_per_run * ms,
            f"{(served.cpu_per_run - local.cpu_per_run) * ms:+.2f}",
            f"<= {CPU_RATIO_TARGET:g}x",
            "pass" if ratio <= CPU_RATIO_TARGET else "FAIL",
        )
    )
    added_row(
        "CPU per run c=1 (ms)", local.cpu_per_run_serial * ms, served.cpu_per_run_serial * ms, None
    )
    added_row(
        "first token, median (ms)",
        statistics.median(local.first_token) * ms,
        statistics.median(served.first_token) * ms,
        None,
    )
    added_row(
        "first token, p90 (ms)",
        _p90(local.first_token) * ms,
        _p90(served.first_token) * ms,
        None,
    )
    header = ("metric", "in-process", "server", "ratio", "added", "target", "result")
    lines = [
        "| " + " | ".join(header) + " |",
        "|" + "|".join("---" for _ in header) + "|",
    ]
    for name, a, b, added, target, verdict in rows:
        cells = (name, f"{a:.2f}", f"{b:.2f}", f"{b / a:.2f}x", added, target, verdict)
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def _load() -> str:
    # Other work on the machine moves every figure; the load average says how much there was.
    return " ".join(f"{value:.2f}" for value in os.getloadavg())


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=200, help="runs at concurrency 1")
    parser.add_argument(
        "--runs-concurrent", type=int, default=640, help="runs at the high concurrency"
    )
    parser.add_argument("--concurrency", type=int, default=32, help="the high concurrency")
    parser.add_argument("--runs-stream", type=int, default=100, help="streamed runs, one at a time")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured runs before each part")
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("full", "normal"),
        default="full",
        help="agent_runtime.sqlite_synchronous of the server (and the in-process connection)",
    )
    return parser


def write_config(folder: Path, synchronous: str) -> Path:
    """The repository's langgraph.json with `agent_runtime.sqlite_synchronous` set, in `folder`
    (paths made absolute, since they are relative to the file)."""
    data = json.loads(CONFIG.read_text())
    data["dependencies"] = [str(ROOT)]
    data["graphs"] = {
        graph_id: str(ROOT / spec.removeprefix("./")) for graph_id, spec in data["graphs"].items()
    }
    data.setdefault("agent_runtime", {})["sqlite_synchronous"] = synchronous
    path = folder / "langgraph.json"
    path.write_text(json.dumps(data))
    return path


def main() -> None:
    args = _parser().parse_args()
    if min(args.runs, args.runs_concurrent, args.runs_stream) < 2 or args.concurrency < 1:
        raise SystemExit("each run count must be at least 2 and the concurrency at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        folder = Path(tmp)
        print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}", flush=True)
        print(f"load average before: {_load()}", flush=True)
        print(f"sqlite_synchronous: {args.sqlite_synchronous}", flush=True)
        print("in-process ...", flush=True)
        local = asyncio.run(bench_in_process(args, folder))
        print("server ...", flush=True)
        server, url = start_server(folder, write_config(folder, args.sqlite_synchronous))
        try:
            served = asyncio.run(bench_server(args, url, server.pid))
        finally:
            stop_server(server)
    print(f"load average after: {_load()}")
    print()
    print("\n".join(report(args, local, served)))


if __name__ == "__main__":
    main()
