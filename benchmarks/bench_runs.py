"""What the server adds to a run: the example chat graph (offline model) invoked in-process on
LangGraph's own saver (`AsyncSqliteSaver`, or `AsyncPostgresSaver` with `--backend postgres`),
against the same graph run through `agent-runtime serve` with `langgraph_sdk` on the same kind
of database.

A script, not a test: it prints one table (and with `--json PATH` writes issue 18's rows) and
exits non-zero only when it cannot measure. Localhost only; every loop is bounded by the run
counts given on the command line.

    .venv/bin/python benchmarks/bench_runs.py [--runs 200] [--runs-concurrent 640] ...
        [--sqlite-synchronous full|normal] [--backend sqlite|postgres] [--json PATH] [--quick]
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiosqlite
import http_floor
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
ADDED_FIRST_TOKEN_TARGET_MS = 2.0
CPU_RATIO_TARGET = 1.3
THROUGHPUT_RATIO_TARGET = 0.85
"""Issue 18's targets against the in-process floor: c=1 latency and first token within a few
milliseconds of it, CPU per run at c=32 at most 1.3x, runs/s at c=32 at least 0.85x."""
POSTGRES_ADMIN = "postgresql://127.0.0.1:5432/postgres"
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
    http_floor: list[float] = field(default_factory=list)
    """The same stream's first event from a server that answers at once (`http_floor.py`):
    what the SDK and HTTP cost before any server work. Measured on the server's side only."""


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


async def bench_in_process(args: argparse.Namespace, folder: Path, database: str) -> Figures:
    """The floor: the same graph on LangGraph's saver for the backend, on `database`."""
    if database.startswith("postgresql://"):
        async with _postgres_saver(database, args.concurrency) as saver:
            return await _in_process(args, folder, saver)
    saver, conn = await _open_saver(Path(database), args.sqlite_synchronous)
    try:
        return await _in_process(args, folder, saver)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def _postgres_saver(uri: str, concurrency: int) -> AsyncIterator[Any]:
    # As upstream documents a pooled saver: autocommit, dict rows, no server-side prepares.
    from langgraph.checkpoint.postgres.aio import AsyncPostgresSaver
    from psycopg.rows import dict_row
    from psycopg_pool import AsyncConnectionPool

    async with AsyncConnectionPool(
        uri,
        min_size=4,
        max_size=concurrency,
        open=False,
        kwargs={"autocommit": True, "prepare_threshold": 0, "row_factory": dict_row},
    ) as pool:
        saver = AsyncPostgresSaver(pool)  # type: ignore[arg-type]
        await saver.setup()
        yield saver


@contextlib.asynccontextmanager
async def fresh_database(admin: str) -> AsyncIterator[str]:
    """A new database beside `admin`'s, dropped afterwards; yields its URI."""
    import psycopg

    name = f"agent_runtime_bench_{uuid.uuid4().hex[:12]}"
    async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE template0')
    try:
        yield urlunsplit(urlsplit(admin)._replace(path=f"/{name}"))
    finally:
        async with await psycopg.AsyncConnection.connect(admin, autocommit=True) as conn:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _in_process(args: argparse.Namespace, folder: Path, saver: Any) -> Figures:
    # The config only says which graphs to build; the checkpointer is the one given.
    config = load_config(CONFIG, database=folder / "unused.sqlite", environ={})
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


@dataclass(frozen=True, slots=True, kw_only=True)
class Row:
    """One figure of issue 18 (`--json`): the floor, the server, and whether the target holds."""

    figure: str
    unit: str
    floor: float
    server: float
    target: str
    met: bool

    def as_json(self) -> dict[str, Any]:
        return {
            "figure": self.figure,
            "unit": self.unit,
            "floor": round(self.floor, 3),
            "server": round(self.server, 3),
            "ratio": round(self.server / self.floor, 3),
            "target": self.target,
            "met": self.met,
        }


def issue_rows(args: argparse.Namespace, local: Figures, served: Figures) -> list[Row]:
    """Issue 18's rows, each against the in-process floor of the same run."""
    ms = 1000.0
    c = args.concurrency
    first = statistics.median(local.first_token) * ms, statistics.median(served.first_token) * ms
    latency = statistics.median(local.latency) * ms, statistics.median(served.latency) * ms
    cpu = local.cpu_per_run * ms, served.cpu_per_run * ms
    rate = local.throughput, served.throughput
    return [
        Row(
            figure="time to first token, median",
            unit="ms",
            floor=first[0],
            server=first[1],
            target=f"floor + {ADDED_FIRST_TOKEN_TARGET_MS:g} ms",
            met=first[1] <= first[0] + ADDED_FIRST_TOKEN_TARGET_MS,
        ),
        Row(
            figure=f"server CPU per run c={c}",
            unit="ms",
            floor=cpu[0],
            server=cpu[1],
            target=f"<= {CPU_RATIO_TARGET:g}x floor",
            met=cpu[1] <= cpu[0] * CPU_RATIO_TARGET,
        ),
        Row(
            figure=f"runs/s c={c}",
            unit="runs/s",
            floor=rate[0],
            server=rate[1],
            target=f">= {THROUGHPUT_RATIO_TARGET:g}x floor",
            met=rate[1] >= rate[0] * THROUGHPUT_RATIO_TARGET,
        ),
        Row(
            figure="runs.wait latency c=1, median",
            unit="ms",
            floor=latency[0],
            server=latency[1],
            target=f"floor + {ADDED_LATENCY_TARGET_MS:g} ms",
            met=latency[1] <= latency[0] + ADDED_LATENCY_TARGET_MS,
        ),
    ]


def report(args: argparse.Namespace, local: Figures, served: Figures) -> list[str]:
    ms = 1000.0
    rows: list[tuple[str, float, float, str, str, str]] = []
    for row in issue_rows(args, local, served):
        added = "" if row.unit != "ms" else f"{row.server - row.floor:+.2f}"
        verdict = "pass" if row.met else "FAIL"
        rows.append(
            (f"{row.figure} ({row.unit})", row.floor, row.server, added, row.target, verdict)
        )
    extra = [
        ("runs.wait latency c=1, p90 (ms)", _p90(local.latency), _p90(served.latency)),
        ("CPU per run c=1 (ms)", local.cpu_per_run_serial, served.cpu_per_run_serial),
        ("first token, p90 (ms)", _p90(local.first_token), _p90(served.first_token)),
    ]
    for name, a, b in extra:
        rows.append((name, a * ms, b * ms, f"{(b - a) * ms:+.2f}", "", ""))
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


def _loads() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


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
        "--quick",
        action="store_true",
        help="a smoke run (under a minute): 40 runs, 160 concurrent, 30 streamed, warm-up 10",
    )
    parser.add_argument(
        "--sqlite-synchronous",
        choices=("full", "normal"),
        default="full",
        help="agent_runtime.sqlite_synchronous of the server (and the in-process connection)",
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: both sides on a fresh database of the server at --postgres",
    )
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN,
        help="a database URI of the PostgreSQL server; fresh databases are made beside it",
    )
    parser.add_argument("--json", type=Path, help="also write issue 18's rows here as JSON")
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


def _measure(args: argparse.Namespace, folder: Path) -> tuple[Figures, Figures]:
    config = write_config(folder, args.sqlite_synchronous)
    if args.backend == "sqlite":
        print("in-process ...", flush=True)
        local = asyncio.run(bench_in_process(args, folder, str(folder / "in-process.sqlite")))
        print("server ...", flush=True)
        return local, _served(args, folder, config, None)

    async def on_fresh(work: Callable[[str], Awaitable[Figures]]) -> Figures:
        async with fresh_database(args.postgres) as uri:
            return await work(uri)

    print("in-process on Postgres ...", flush=True)
    local = asyncio.run(on_fresh(lambda uri: bench_in_process(args, folder, uri)))
    print("server on Postgres ...", flush=True)

    async def serve(uri: str) -> Figures:
        return await asyncio.to_thread(_served, args, folder, config, uri)

    return local, asyncio.run(on_fresh(serve))


def _served(args: argparse.Namespace, folder: Path, config: Path, database: str | None) -> Figures:
    server, url = start_server(folder, config, database=database)
    try:
        figures = asyncio.run(bench_server(args, url, server.pid))
    finally:
        stop_server(server)
    floor = http_floor.measure(folder, args.runs_stream, args.warmup, USER)
    return replace(figures, http_floor=floor)


def main() -> None:
    args = _parser().parse_args()
    if args.quick:
        args.runs, args.runs_concurrent, args.runs_stream, args.warmup = 40, 160, 30, 10
    if min(args.runs, args.runs_concurrent, args.runs_stream) < 2 or args.concurrency < 1:
        raise SystemExit("each run count must be at least 2 and the concurrency at least 1")
    with tempfile.TemporaryDirectory(prefix="bench-runs-") as tmp:
        folder = Path(tmp)
        print(f"cores: {os.cpu_count()}  python: {sys.version.split()[0]}", flush=True)
        print(f"load average before: {_load()}", flush=True)
        print(f"backend: {args.backend}  sqlite_synchronous: {args.sqlite_synchronous}", flush=True)
        local, served = _measure(args, folder)
    print(f"load average after: {_load()}")
    print()
    print("\n".join(report(args, local, served)))
    http = statistics.median(served.http_floor) * 1000
    added = (statistics.median(served.first_token) - statistics.median(local.first_token)) * 1000
    print()
    print(
        f"HTTP floor: the first event of the same stream from a server that answers at once, "
        f"{http:.2f} ms (median of {len(served.http_floor)}); of the first token's {added:+.2f} "
        f"ms over in-process, {added - http:+.2f} ms are the server's own"
    )
    if args.json is not None:
        rows = [row.as_json() for row in issue_rows(args, local, served)]
        result = {
            "rows": rows,
            "load": _loads(),
            "backend": args.backend,
            "http_floor_ms": round(http, 3),
        }
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
