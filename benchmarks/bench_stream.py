"""What the server adds to each streamed event: the example chat graph (offline model) answering a
long message token by token, in-process (`astream(stream_mode="messages")` on LangGraph's
`AsyncSqliteSaver`) and through `agent-runtime serve` (`runs.stream(stream_mode="messages-tuple")`
with `langgraph_sdk`), several streams at once. The offline model echoes the message, so a
message of N words is a stream of about N `messages` events.

A script, not a test: it prints CPU per run and per event on each side (the server's whole
process, every thread; the in-process side's own), the server's extra CPU per event, and runs/s.
Localhost only; every loop is bounded by the counts given.

    .venv/bin/python benchmarks/bench_stream.py [--words 200] [--runs 120] [--concurrency 8]
        [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
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
    _open_saver,
    process_cpu_seconds,
    start_server,
    stop_server,
)
from langgraph_sdk import get_client

from agent_runtime.config import load_config
from agent_runtime.registry import GraphRegistry, import_graphs

WARMUP_RUNS = 10


@dataclass(frozen=True, slots=True)
class Side:
    cpu_per_run: float
    """Seconds."""
    events_per_run: float
    runs_per_second: float

    @property
    def cpu_per_event(self) -> float:
        return self.cpu_per_run / self.events_per_run


def _input(words: int) -> dict[str, Any]:
    text = " ".join(f"word{n}" for n in range(words))
    return {"messages": [{"role": "user", "content": text}]}


async def _measure(
    runs: int, concurrency: int, one: Callable[[], Awaitable[int]], cpu: Callable[[], float]
) -> Side:
    for _ in range(WARMUP_RUNS):
        await one()
    counts: list[int] = []
    limit = asyncio.Semaphore(concurrency)

    async def limited() -> None:
        async with limit:
            counts.append(await one())

    started_cpu, started = cpu(), time.perf_counter()
    await asyncio.gather(*(limited() for _ in range(runs)))
    wall = time.perf_counter() - started
    return Side((cpu() - started_cpu) / runs, statistics.median(counts), runs / wall)


async def in_process(folder: Path, args: argparse.Namespace) -> Side:
    saver, conn = await _open_saver(folder / "floor.sqlite")
    try:
        config = load_config(CONFIG, database=folder / "unused.sqlite", environ={})
        registry = GraphRegistry(import_graphs(config), checkpointer=saver, store=None)
        graph = await registry.get_graph(GRAPH_ID)
        data = _input(args.words)

        async def one() -> int:
            config: Any = {"configurable": {"thread_id": str(uuid.uuid4())}}
            events = 0
            async for _ in graph.astream(data, config, stream_mode="messages"):
                events += 1
            return events

        return await _measure(args.runs, args.concurrency, one, time.process_time)
    finally:
        await conn.close()


async def served(folder: Path, args: argparse.Namespace) -> Side:
    server, url = start_server(folder)
    client = get_client(url=url, api_key=None)
    try:
        data = _input(args.words)
        threads = [(await client.threads.create())["thread_id"] for _ in range(args.runs + 20)]
        pending = iter(threads)

        async def one() -> int:
            events = 0
            parts = client.runs.stream(
                next(pending), GRAPH_ID, input=data, stream_mode="messages-tuple"
            )
            async for part in parts:
                events += part.event == "messages"
            return events

        return await _measure(
            args.runs, args.concurrency, one, lambda: process_cpu_seconds(server.pid)
        )
    finally:
        await client.http.client.aclose()
        stop_server(server)


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--words", type=int, default=200, help="words in the message echoed")
    parser.add_argument("--runs", type=int, default=120)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    args = parser.parse_args()
    rows = []
    for round_ in range(args.rounds):
        with tempfile.TemporaryDirectory(prefix="bench-stream-") as tmp:
            floor = asyncio.run(in_process(Path(tmp), args))
            server = asyncio.run(served(Path(tmp), args))
        extra_us = (server.cpu_per_event - floor.cpu_per_event) * 1e6
        rows.append((floor, server, extra_us))
        print(
            f"round {round_ + 1}: {server.events_per_run:.0f} events a run;"
            f" CPU per run {floor.cpu_per_run * 1e3:.2f} ms in-process,"
            f" {server.cpu_per_run * 1e3:.2f} ms server; per event"
            f" {floor.cpu_per_event * 1e6:.1f} / {server.cpu_per_event * 1e6:.1f} us"
            f" (+{extra_us:.1f} us); runs/s {floor.runs_per_second:.1f} /"
            f" {server.runs_per_second:.1f}"
        )
    extra = statistics.median(r[2] for r in rows)
    cpu_ratio = statistics.median(r[1].cpu_per_run / r[0].cpu_per_run for r in rows)
    rate_ratio = statistics.median(r[1].runs_per_second / r[0].runs_per_second for r in rows)
    print(
        f"median over rounds: server CPU per event +{extra:.1f} us over the in-process floor,"
        f" CPU per run ratio {cpu_ratio:.2f}x, runs/s ratio {rate_ratio:.2f}x"
    )


if __name__ == "__main__":
    main()
