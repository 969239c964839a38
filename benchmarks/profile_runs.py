"""Where the server's CPU goes at `runs.wait` c=32: `bench_runs.py`'s server part alone (the
example chat graph, offline model), sampled with py-spy while the runs go, and summed up.

A script, not a test: it prints the server's CPU per run, then the functions that take the
most of the server's samples (inclusive, and by itself), with our own modules listed apart.
Localhost only; every loop is bounded by the run counts given on the command line. Needs
py-spy (`.venv/bin/python -m pip install py-spy`; not a dependency of the project).

    .venv/bin/python benchmarks/profile_runs.py [--runs 640] [--concurrency 32] [--top 40]
        [--raw stacks.txt] [--backend postgres [--postgres URI]]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import contextlib
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator
from pathlib import Path

from bench_runs import (
    GRAPH_ID,
    POSTGRES_ADMIN,
    USER,
    _concurrently,
    fresh_database,
    process_cpu_seconds,
    start_server,
    stop_server,
    write_config,
)
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

PY_SPY = Path(sys.executable).with_name("py-spy")


async def prepare(url: str, args: argparse.Namespace) -> list[str]:
    """Warm the server up; return the threads for the measured runs."""
    async with _client(url) as client:
        await _waits(client, await _threads(client, args.warmup, args.concurrency), args)
        return await _threads(client, args.runs, args.concurrency)


async def measure(
    url: str, pid: int, thread_ids: list[str], args: argparse.Namespace
) -> tuple[float, dict[str, float]]:
    """One `runs.wait` per thread at `args.concurrency`; the server's CPU seconds per run, in
    all and split between the main thread (the event loop) and the others (SQLite's
    connection threads, the default executor)."""
    async with _client(url) as client:
        cpu, threads = process_cpu_seconds(pid), thread_cpu_seconds(pid)
        await _waits(client, thread_ids, args)
        after = thread_cpu_seconds(pid)
        by_name: dict[str, float] = collections.defaultdict(float)
        for tid, (_, seconds) in after.items():
            name = "event loop" if tid == str(pid) else "other threads"
            by_name[name] += (seconds - threads.get(tid, (name, 0.0))[1]) / len(thread_ids)
        return (process_cpu_seconds(pid) - cpu) / len(thread_ids), dict(by_name)


def thread_cpu_seconds(pid: int) -> dict[str, tuple[str, float]]:
    """Each thread's name and CPU seconds so far, by thread id (schedstat, as
    `process_cpu_seconds`)."""
    threads: dict[str, tuple[str, float]] = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):  # a thread that ended meanwhile
            name = (task / "comm").read_text().strip()
            threads[task.name] = (name, int((task / "schedstat").read_text().split()[0]) / 1e9)
    return threads


@contextlib.asynccontextmanager
async def _client(url: str) -> AsyncIterator[LangGraphClient]:
    client = get_client(url=url, api_key=None)
    try:
        yield client
    finally:
        await client.http.client.aclose()


async def _threads(client: LangGraphClient, count: int, concurrency: int) -> list[str]:
    made: list[str] = []

    async def create() -> None:
        made.append((await client.threads.create())["thread_id"])

    await _concurrently(count, concurrency, create)
    return made


async def _waits(client: LangGraphClient, thread_ids: list[str], args: argparse.Namespace) -> None:
    pending = iter(thread_ids)

    async def wait() -> None:
        await client.runs.wait(next(pending), GRAPH_ID, input=USER)

    await _concurrently(len(thread_ids), args.concurrency, wait)


def start_py_spy(pid: int, rate: int, raw: Path, gil: bool) -> subprocess.Popen[bytes]:
    """py-spy sampling the server without pausing it, into collapsed stacks at `raw`; with
    `gil`, only the thread holding the GIL (Python's CPU, not waits on SQLite's disk)."""
    command = [str(PY_SPY), "record", "--pid", str(pid), "--rate", str(rate)]
    command += ["--format", "raw", "--nonblocking", "--output", str(raw)]
    command += ["--gil"] if gil else []
    spy = subprocess.Popen(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # py-spy attaches
    return spy


def summarise(raw: Path, top: int) -> list[str]:
    """The hottest functions of the collapsed stacks: inclusive and self, as shares."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    ours: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [
            frame for frame in stack.split(";") if not frame.startswith(("process ", "thread "))
        ]
        if not frames:
            continue
        total += count
        for frame in set(frames):
            inclusive[frame] += count
            if "agent_runtime" in frame:
                ours[frame] += count
        own[frames[-1]] += count
    lines = [f"samples: {total}", "", "inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in inclusive.most_common(top)]
    lines += ["", "agent_runtime, inclusive:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in ours.most_common(top)]
    lines += ["", "self:"]
    lines += [f"{100 * n / total:5.1f}%  {frame}" for frame, n in own.most_common(top)]
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=640, help="runs sampled")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--warmup", type=int, default=40, help="unsampled runs first")
    parser.add_argument("--rate", type=int, default=250, help="py-spy samples per second")
    parser.add_argument("--top", type=int, default=40, help="functions listed per table")
    parser.add_argument("--raw", type=Path, help="also keep py-spy's collapsed stacks here")
    parser.add_argument("--gil", action="store_true", help="sample only the thread holding the GIL")
    parser.add_argument(
        "--cpu-only", action="store_true", help="no py-spy: only the server's CPU per run"
    )
    parser.add_argument(
        "--backend",
        choices=("sqlite", "postgres"),
        default="sqlite",
        help="postgres: the server on a fresh database of the server at --postgres",
    )
    parser.add_argument("--postgres", default=POSTGRES_ADMIN, help="a PostgreSQL database URI")
    args = parser.parse_args()
    if not args.cpu_only and not PY_SPY.exists():
        raise SystemExit(f"py-spy is not installed next to {sys.executable}; pip install py-spy")
    if args.backend == "sqlite":
        profile(args, None)
        return

    async def on_fresh() -> None:
        async with fresh_database(args.postgres) as uri:
            await asyncio.to_thread(profile, args, uri)

    asyncio.run(on_fresh())


def profile(args: argparse.Namespace, database: str | None) -> None:
    """Serve on `database` (a fresh SQLite file when None), sample and print."""
    with tempfile.TemporaryDirectory(prefix="profile-runs-") as tmp:
        folder = Path(tmp)
        server, url = start_server(folder, write_config(folder, "full"), database=database)
        raw = folder / "stacks.txt"
        try:
            thread_ids = asyncio.run(prepare(url, args))
            spy = None if args.cpu_only else start_py_spy(server.pid, args.rate, raw, args.gil)
            per_run, by_thread = asyncio.run(measure(url, server.pid, thread_ids, args))
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(timeout=30)
        finally:
            stop_server(server)
        print(f"server CPU per run c={args.concurrency}: {per_run * 1000:.2f} ms", flush=True)
        for name, seconds in sorted(by_thread.items(), key=lambda item: -item[1]):
            print(f"  thread {name}: {seconds * 1000:.2f} ms", flush=True)
        if args.cpu_only:
            return
        print("\n".join(summarise(raw, args.top)))
        if args.raw is not None:
            shutil.copy(raw, args.raw)


if __name__ == "__main__":
    main()
