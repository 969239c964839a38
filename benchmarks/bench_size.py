"""What the server stores beyond the checkpointer: one workload of runs on the example graphs
(offline model), in-process on the storage the runtime opens (its checkpointer, its tables left
empty) and through `agent-runtime serve` with `langgraph_sdk` (`runs.wait` and `runs.stream`),
then the size of each database and where its bytes lie, table by table.

SQLite: the file after closing and folding the WAL back into it (`wal_checkpoint(TRUNCATE)`),
both sides alike, its free pages counted apart. Postgres (`--backend postgres`): the summed
`pg_total_relation_size` of every table in a fresh database after `VACUUM FULL` on both sides:
as the workload leaves them, the tables also hold dead row versions, as many as autovacuum had
not yet reclaimed, which made the total vary by 15% from one run to the next (it is printed
too). `--reference PATH` also drives `langgraph dev` (the reference server, from another
virtualenv; PATH is its `langgraph` command) through the same workload and measures its
`.langgraph_api` folder once it has stopped.

    .venv/bin/python benchmarks/bench_size.py [--threads 40] [--turns 10] [--agent-threads 10]
        [--backend sqlite|postgres] [--repeat 3] [--json PATH] [--quick]
        [--reference /tmp/refvenv/bin/langgraph]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import shutil
import signal
import sqlite3
import statistics
import subprocess
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from bench_runs import CONFIG, ROOT, fresh_database, stop_server
from bench_scale import start_server
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.config import load_config
from agent_runtime.registry import GraphRegistry, import_graphs
from agent_runtime.storage import open_storage

CONCURRENCY = 4
"""Threads worked on at once; each thread's turns run one after the other."""
REFERENCE_RATIO = 1.32
"""`langgraph dev`'s `.langgraph_api` folder over the in-process SQLite floor after the default
workload (benchmarks/README.md); the target when `--reference` does not measure it again. The
issue asks for a database no larger than the reference server's."""
STARTUP_TIMEOUT_SECONDS = 120.0

Turn = Callable[[str, str, dict[str, Any], bool], Awaitable[None]]
"""`turn(graph_id, thread_key, input, streamed)` runs one turn of one thread."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Workload:
    chat_threads: int
    agent_threads: int
    turns: int

    def threads(self) -> list[tuple[str, str]]:
        """(graph id, thread key) of every thread."""
        return [("chat", f"chat-{n}") for n in range(self.chat_threads)] + [
            ("agent", f"agent-{n}") for n in range(self.agent_threads)
        ]

    @property
    def runs(self) -> int:
        return (self.chat_threads + self.agent_threads) * self.turns


def _input(graph_id: str, turn: int) -> dict[str, Any]:
    if graph_id == "agent":
        # The offline model calls `calculator` on arithmetic, then answers from its result.
        text = f"what is {turn + 2} * 7 + 1?"
    else:
        text = f"hello there, how are you today? tell me something about turn {turn}"
    return {"messages": [{"role": "user", "content": text}]}


async def run_workload(workload: Workload, turn: Turn) -> None:
    """Every thread's turns in order, `CONCURRENCY` threads at once; every other turn is
    streamed (alternating between threads too), the rest waited on."""
    pending = iter(enumerate(workload.threads()))

    async def worker() -> None:
        for index, (graph_id, key) in pending:
            for number in range(workload.turns):
                await turn(graph_id, key, _input(graph_id, number), (index + number) % 2 == 1)

    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))


# Sizes


@dataclass(frozen=True, slots=True, kw_only=True)
class Size:
    total: int
    """Bytes on disk (SQLite: the file, its WAL folded in; Postgres: every table's relations)."""
    parts: dict[str, int] = field(default_factory=dict)
    """Bytes per table, its indexes (and, on Postgres, TOAST) included; "(free pages)" apart."""
    as_left: int | None = None
    """Postgres: the total before `VACUUM FULL`, dead row versions included."""


def sqlite_size(path: Path) -> Size:
    """The file's size once its WAL is folded in, and its pages by table (`dbstat`)."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        owner = dict(conn.execute("SELECT name, tbl_name FROM sqlite_master").fetchall())
        parts: dict[str, int] = {}
        for name, size in conn.execute("SELECT name, sum(pgsize) FROM dbstat GROUP BY name"):
            table = owner.get(name, name)  # sqlite_schema itself has no row
            parts[table] = parts.get(table, 0) + size
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        (free,) = conn.execute("PRAGMA freelist_count").fetchone()
    if free:
        parts["(free pages)"] = free * page_size
    wal = path.with_name(path.name + "-wal")
    total = path.stat().st_size + (wal.stat().st_size if wal.exists() else 0)
    return Size(total=total, parts=parts)


async def postgres_size(uri: str) -> Size:
    """Every table of the public schema with its indexes and TOAST, after `VACUUM FULL`."""
    async with await psycopg.AsyncConnection.connect(uri, autocommit=True) as conn:
        as_left = await _table_sizes(conn)
        await conn.execute("VACUUM FULL")
        parts = await _table_sizes(conn)
    return Size(total=sum(parts.values()), parts=parts, as_left=sum(as_left.values()))


async def _table_sizes(conn: psycopg.AsyncConnection[Any]) -> dict[str, int]:
    cursor = await conn.execute(
        "SELECT c.relname, pg_total_relation_size(c.oid) FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'p')"
    )
    return {str(name): int(size) for name, size in await cursor.fetchall()}


def folder_size(folder: Path) -> Size:
    parts = {
        str(path.relative_to(folder)): path.stat().st_size
        for path in folder.rglob("*")
        if path.is_file()
    }
    return Size(total=sum(parts.values()), parts=parts)


# In-process floor


async def in_process(workload: Workload, folder: Path, database: str) -> None:
    """The workload on the storage the runtime opens: its checkpointer, nothing else written."""
    config = load_config(CONFIG, database=database, environ={})
    storage = await open_storage(config)
    try:
        registry = GraphRegistry(
            import_graphs(config), checkpointer=storage.checkpointer, store=None
        )
        graphs = {graph_id: await registry.get_graph(graph_id) for graph_id in ("chat", "agent")}
        thread_ids: dict[str, str] = {}

        async def turn(graph_id: str, key: str, data: dict[str, Any], streamed: bool) -> None:
            thread_id = thread_ids.setdefault(key, str(uuid.uuid4()))
            config: Any = {"configurable": {"thread_id": thread_id}}
            if streamed:
                async for _ in graphs[graph_id].astream(data, config, stream_mode="values"):
                    pass
            else:
                await graphs[graph_id].ainvoke(data, config)

        await run_workload(workload, turn)
    finally:
        await storage.close()


# Through a server


async def through_client(workload: Workload, url: str) -> None:
    client: LangGraphClient = get_client(url=url, api_key=None)
    thread_ids: dict[str, str] = {}

    async def turn(graph_id: str, key: str, data: dict[str, Any], streamed: bool) -> None:
        if key not in thread_ids:
            thread_ids[key] = (await client.threads.create())["thread_id"]
        thread_id = thread_ids[key]
        if streamed:
            async for part in client.runs.stream(thread_id, graph_id, input=data):
                if part.event == "error":
                    raise SystemExit(f"a streamed run failed: {part.data}")
        else:
            await client.runs.wait(thread_id, graph_id, input=data, raise_error=True)

    try:
        await run_workload(workload, turn)
    finally:
        await client.http.client.aclose()


async def served(workload: Workload, folder: Path, database: str) -> None:
    server, url = start_server(folder, database, workers=1, redis=None)
    try:
        await through_client(workload, url)
    finally:
        stop_server(server)


_REFERENCE_URL = re.compile(r"API: (http://[\w.:]+)")
_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def reference(workload: Workload, folder: Path, langgraph: Path) -> Size:
    """`langgraph dev` on a copy of the example project; the size of its `.langgraph_api`
    folder once it has stopped (it writes its in-memory state there)."""
    project = folder / "reference"
    project.mkdir()
    shutil.copytree(ROOT / "graphs", project / "graphs")
    spec = json.loads(CONFIG.read_text())
    spec.pop("agent_runtime", None)
    (project / "langgraph.json").write_text(json.dumps(spec))
    log_path = folder / "reference.log"
    # The example graphs import the offline model from agent_runtime; nothing else of ours runs.
    path = f"{ROOT / 'src'}:{project}"
    environ = {**os.environ, "PYTHONPATH": path, "LANGSMITH_TRACING": "false"}
    with log_path.open("wb") as log:
        server = subprocess.Popen(
            [str(langgraph), "dev", "--no-browser", "--no-reload", "--port", str(_free_port())],
            cwd=project,
            stdout=log,
            stderr=subprocess.STDOUT,
            env=environ,
            start_new_session=True,
        )
    try:
        url = _await_reference(server, log_path)
        asyncio.run(through_client(workload, url))
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGINT)
            try:
                server.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait()
    return folder_size(project / ".langgraph_api")


def _await_reference(server: subprocess.Popen[bytes], log_path: Path) -> str:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        text = _ANSI.sub("", log_path.read_text(errors="replace"))
        match = _REFERENCE_URL.search(text)
        if match and "Application started up" in text:
            return match.group(1)
        if server.poll() is not None:
            break
        time.sleep(0.2)
    raise SystemExit(f"langgraph dev did not start; its output:\n{log_path.read_text()}")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# One round: the floor and the server on fresh databases


async def measure(args: argparse.Namespace, workload: Workload, folder: Path) -> tuple[Size, Size]:
    if args.backend == "postgres":
        async with fresh_database(args.postgres) as uri:
            await in_process(workload, folder, uri)
            floor = await postgres_size(uri)
        async with fresh_database(args.postgres) as uri:
            await served(workload, folder, uri)
            server = await postgres_size(uri)
        return floor, server
    floor_path, server_path = folder / "floor.sqlite", folder / "server.sqlite"
    await in_process(workload, folder, str(floor_path))
    await served(workload, folder, str(server_path))
    return sqlite_size(floor_path), sqlite_size(server_path)


# Reporting


def _kib(size: float) -> str:
    return f"{size / 1024:,.0f}"


def breakdown(columns: dict[str, Size]) -> list[str]:
    names = sorted(
        {name for size in columns.values() for name in size.parts},
        key=lambda name: -max(size.parts.get(name, 0) for size in columns.values()),
    )
    header = ("table (KiB)", *columns)
    lines = ["| " + " | ".join(header) + " |", "|---" + "|---:" * len(columns) + "|"]
    for name in names:
        cells = [_kib(size.parts.get(name, 0)) for size in columns.values()]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| **total** | " + " | ".join(_kib(s.total) for s in columns.values()) + " |")
    return lines


def _load() -> list[float]:
    return [round(value, 2) for value in os.getloadavg()]


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=40, help="threads on the chat graph")
    parser.add_argument(
        "--agent-threads", type=int, default=10, help="threads on the tool-calling agent graph"
    )
    parser.add_argument("--turns", type=int, default=10, help="runs per thread")
    parser.add_argument("--repeat", type=int, default=1, help="rounds, each on fresh databases")
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument(
        "--reference", type=Path, help="the `langgraph` command of langgraph-cli[inmem]"
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--quick", action="store_true", help="a smoke run: 6 threads x 3 turns")
    return parser


def main() -> None:
    args = _parser().parse_args()
    if args.quick:
        args.threads, args.agent_threads, args.turns, args.repeat = 4, 2, 3, 1
    workload = Workload(
        chat_threads=args.threads, agent_threads=args.agent_threads, turns=args.turns
    )
    if workload.runs < 1 or args.repeat < 1:
        raise SystemExit("the workload needs at least one run, and --repeat at least 1")
    print(f"load average before: {_load()}", flush=True)
    print(
        f"workload: {workload.chat_threads} chat + {workload.agent_threads} agent threads x "
        f"{workload.turns} turns = {workload.runs} runs; backend {args.backend}",
        flush=True,
    )
    floors, servers, references = [], [], []
    for round_ in range(args.repeat):
        with tempfile.TemporaryDirectory(prefix="bench-size-") as tmp:
            floor, server = asyncio.run(measure(args, workload, Path(tmp)))
            floors.append(floor)
            servers.append(server)
            print(
                f"round {round_ + 1}: in-process {_kib(floor.total)} KiB, "
                f"server {_kib(server.total)} KiB ({server.total / floor.total:.2f}x)",
                flush=True,
            )
            if floor.as_left is not None and server.as_left is not None:
                print(
                    f"  before VACUUM FULL: in-process {_kib(floor.as_left)} KiB, "
                    f"server {_kib(server.as_left)} KiB",
                    flush=True,
                )
            if args.reference:
                references.append(reference(workload, Path(tmp), args.reference))
                print(f"  langgraph dev: {_kib(references[-1].total)} KiB", flush=True)
    load = _load()
    print(f"load average after: {load}")
    floor_total = statistics.median(size.total for size in floors)
    server_total = statistics.median(size.total for size in servers)
    ratio = server_total / floor_total
    target, where = REFERENCE_RATIO, "langgraph dev, benchmarks/README.md"
    rows = []
    if references:
        reference_total = statistics.median(size.total for size in references)
        target, where = reference_total / floor_total, "langgraph dev, this run"
    rows.append(
        {
            "figure": f"database size after {workload.runs} runs",
            "unit": "KiB",
            "floor": floor_total / 1024,
            "server": server_total / 1024,
            "ratio": ratio,
            "target": f"<= {target:.2f}x ({where})",
            "met": ratio <= target,
        }
    )
    if references:
        rows.append(
            {
                "figure": f"langgraph dev .langgraph_api after {workload.runs} runs",
                "unit": "KiB",
                "floor": floor_total / 1024,
                "server": reference_total / 1024,
                "ratio": reference_total / floor_total,
                "target": "",
                "met": True,
            }
        )
    print()
    print("| figure | in-process (KiB) | server (KiB) | ratio | target | met |")
    print("|---|---:|---:|---:|---|---|")
    for row in rows:
        print(
            f"| {row['figure']} | {row['floor']:,.0f} | {row['server']:,.0f} | "
            f"{row['ratio']:.2f}x | {row['target']} | {'yes' if row['met'] else 'NO'} |"
        )
    print()
    print("\n".join(breakdown({"in-process": floors[-1], "server": servers[-1]})))
    if references:
        print()
        print("\n".join(breakdown({"langgraph dev (file)": references[-1]})))
    if args.json:
        args.json.write_text(json.dumps({"rows": rows, "load": load, "backend": args.backend}))


if __name__ == "__main__":
    main()
