"""Whether a turn's cost grows with the thread: one long conversation on the example chat graph
(offline model), once with a plain `add_messages` channel and once with the delta channel the
example graphs use, in-process on the checkpointer the runtime serves with (`SqliteStorage`:
LangGraph's `AsyncSqliteSaver` with the runtime's history walk and decoded-checkpoint cache).

A script, not a test: it prints per-turn latency for the first and last ten turns, and the
ratio of the last ten to the first ten turns of a new thread run in alternation with them (on a
shared machine, turns minutes apart are not comparable; alternating puts a slow spell on both
sides), with the ratio to the thread's own first turns and CPU time beside it. Also the
database size, where a late turn's time goes, and what the runtime adds after each run at the
last turn. `--server` repeats the conversation through the HTTP API (`agent-runtime serve` as a
child process, `langgraph_sdk` here); `--profile` prints a cProfile of the last ten in-process
turns.

    .venv/bin/python benchmarks/bench_delta.py [--turns 300] [--server] [--profile]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plain_chat
from bench_runs import process_cpu_seconds, start_server, stop_server
from langchain_core.messages import get_buffer_string
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.pregel import Pregel
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.encoding import dumps, to_jsonable
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.storage.sqlite import SqliteStorage

ROOT = Path(__file__).resolve().parents[1]
WINDOW = 10
RATIO_TARGET = 1.2
USER_TEXT = "hello there, how are you today? tell me something about turn {turn}"
SERVER_GRAPHS = {
    "delta": f"{ROOT / 'graphs' / 'chat.py'}:graph",
    "plain": f"{ROOT / 'benchmarks' / 'plain_chat.py'}:graph",
}
"""By absolute path: the server's langgraph.json lies in a temporary folder."""

AnyGraph = Pregel[Any, Any, Any, Any]


_chat = plain_chat.chat
GRAPHS: dict[str, AnyGraph] = {"plain": plain_chat.graph, "delta": _chat.graph}


@dataclass(frozen=True, slots=True, kw_only=True)
class Figures:
    """One channel kind's measurements; times in seconds."""

    turns: list[list[float]]
    """Wall time of each turn of the long thread, in order, for each conversation."""
    fresh: list[list[float]]
    """Wall time of turns 1-10 of a new thread, each run just before one of the long thread's
    last ten turns, for each conversation."""
    cpu: list[list[float]]
    """CPU time of the process (all threads) for the same turns: the long thread's last ten
    followed by the new thread's ten, for each conversation."""
    cpu_of: str
    """Whose CPU time `cpu` is."""
    outside_model: list[list[float]]
    """Wall time outside the chat model call for the same turns, in the same order; empty
    through the server."""
    database_bytes: int
    """The SQLite file after the WAL is folded back into it."""
    messages: int
    """Messages in the long thread at the end."""
    state_bytes: int
    """The thread's state as JSON at the end: what the runtime writes to the threads table."""
    costs: dict[str, float]
    """Median cost of single steps, measured on the thread as the last turn left it."""


class _Recorder:
    """Times one conversation: the long thread's turns, and the new thread's turns run in
    alternation with the long thread's last ten, so that a slow spell of a shared machine
    falls on both sides of the comparison."""

    def __init__(self, cpu_clock: Callable[[], float] = time.process_time) -> None:
        self.cpu_clock = cpu_clock
        """CPU seconds of whatever runs the graph: this process, or the server's."""
        self.turns: list[float] = []
        self.fresh: list[float] = []
        self.cpu_last: list[float] = []
        self.cpu_fresh: list[float] = []
        self.outside_last: list[float] = []
        self.outside_fresh: list[float] = []

    async def run(self, turns: int, call: Callable[[str, int], Awaitable[Any]]) -> None:
        """`call(thread, turn)` runs one turn on thread "long" or "fresh"."""
        for turn in range(1, turns - WINDOW + 1):
            wall, _, _ = await _timed(call("long", turn), self.cpu_clock)
            self.turns.append(wall)
        for k in range(1, WINDOW + 1):
            wall, cpu, model = await _timed(call("fresh", k), self.cpu_clock)
            self.fresh.append(wall)
            self.cpu_fresh.append(cpu)
            self.outside_fresh.append(wall - model)
            wall, cpu, model = await _timed(call("long", turns - WINDOW + k), self.cpu_clock)
            self.turns.append(wall)
            self.cpu_last.append(cpu)
            self.outside_last.append(wall - model)


class _ModelClock:
    """Time spent in the chat model's `ainvoke` (LangChain's handling of the prompt and the
    offline model), which grows with the prompt for any model; the rest of a turn is the
    runtime's, LangGraph's and the checkpointer's. Runs in this process, server included."""

    def __init__(self) -> None:
        self.seconds = 0.0
        invoke = OfflineChatModel.ainvoke

        async def timed(model: OfflineChatModel, *args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return await invoke(model, *args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        OfflineChatModel.ainvoke = timed  # type: ignore[method-assign, assignment]


_MODEL_CLOCK = _ModelClock()


async def _timed(
    turn: Awaitable[Any], cpu_clock: Callable[[], float]
) -> tuple[float, float, float]:
    """Wall time, CPU time, and wall time in the chat model (in this process only)."""
    _MODEL_CLOCK.seconds = 0.0
    start, cpu = time.perf_counter(), cpu_clock()
    await turn
    return time.perf_counter() - start, cpu_clock() - cpu, _MODEL_CLOCK.seconds


def _message(turn: int) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": USER_TEXT.format(turn=turn)}]}


async def _median_time(call: Callable[[], Awaitable[Any]], repeat: int = 9) -> float:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        await call()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _now(call: Callable[[], Any]) -> Callable[[], Awaitable[Any]]:
    async def wrapped() -> Any:
        return call()

    return wrapped


def _fold_wal(path: Path) -> int:
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return path.stat().st_size


async def measure(
    folder: Path, turns: int, repeat: int, profile: cProfile.Profile | None
) -> dict[str, Figures]:
    """`repeat` conversations of `turns` turns per graph, in-process, each on a fresh database
    file, the graphs alternating conversation by conversation so a noisy spell of the machine
    does not fall on one of them only."""
    recorded: dict[str, list[_Recorder]] = {name: [] for name in GRAPHS}
    costs: dict[str, dict[str, float]] = {}
    finals: dict[str, Any] = {}
    for round_ in range(repeat):
        for name in _order(round_):
            storage = SqliteStorage(folder / f"{name}-{round_}.sqlite")
            await storage.setup()
            try:
                saver = storage.checkpointer
                graph = GRAPHS[name].copy(update={"checkpointer": saver})
                last = round_ == repeat - 1
                profiling = profile if last and name == "delta" else None

                async def turn(
                    thread: str,
                    number: int,
                    graph: AnyGraph = graph,
                    profiling: cProfile.Profile | None = profiling,
                ) -> None:
                    config: Any = {"configurable": {"thread_id": thread}}
                    late = thread == "long" and number > turns - WINDOW
                    if profiling is not None and late:
                        profiling.enable()
                    await graph.ainvoke(_message(number), config)
                    if profiling is not None and late:
                        profiling.disable()

                recorder = _Recorder()
                await recorder.run(turns, turn)
                recorded[name].append(recorder)
                if last:
                    config: Any = {"configurable": {"thread_id": "long"}}
                    costs[name] = await _step_costs(graph, saver, config)
                    finals[name] = (await graph.aget_state(config)).values
            finally:
                await storage.close()
    return {
        name: _figures(
            recorded[name],
            database=folder / f"{name}-{repeat - 1}.sqlite",
            final=finals[name],
            costs=costs[name],
        )
        for name in GRAPHS
    }


def _figures(
    recorded: list[_Recorder],
    *,
    database: Path,
    final: Any,
    costs: dict[str, float],
    served: bool = False,
) -> Figures:
    return Figures(
        turns=[one.turns for one in recorded],
        fresh=[one.fresh for one in recorded],
        cpu=[one.cpu_last + one.cpu_fresh for one in recorded],
        cpu_of="the server process" if served else "this process",
        # The model runs in the server process, where this one cannot time it.
        outside_model=[] if served else [one.outside_last + one.outside_fresh for one in recorded],
        database_bytes=_fold_wal(database),
        messages=len(final["messages"]),
        state_bytes=len(dumps(final)),
        costs=costs,
    )


def _order(round_: int) -> list[str]:
    names = list(GRAPHS)
    return names if round_ % 2 == 0 else names[::-1]


async def _step_costs(
    bound: AnyGraph, saver: BaseCheckpointSaver[Any], config: Any
) -> dict[str, float]:
    # The last turn started from the checkpoint before its three (input, before model, end).
    *_, started = [c async for c in saver.alist(config, limit=4)]
    values = (await bound.aget_state(config)).values
    serde = JsonPlusSerializer()  # LangGraph's own, without the runtime's cache
    stored = serde.dumps_typed(values["messages"])
    jsonable = to_jsonable(values)
    delta = [name for name, channel in bound.channels.items() if isinstance(channel, DeltaChannel)]
    return {
        "last turn's load: aget_tuple": await _median_time(
            lambda: saver.aget_tuple(started.config)
        ),
        "last turn's load: delta replay (aget_delta_channel_history)": await _median_time(
            lambda: saver.aget_delta_channel_history(config=started.config, channels=delta)
        ),
        "serde: serialize the message list once": await _median_time(
            _now(lambda: serde.dumps_typed(values["messages"]))
        ),
        "serde: deserialize the message list once": await _median_time(
            _now(lambda: serde.loads_typed(stored))
        ),
        # What the runtime does per run on top of the graph (runs/executor.py, recorder.py).
        "runtime: dumps(values) per values event (2 a turn)": await _median_time(
            _now(lambda: dumps(values))
        ),
        "runtime: to_jsonable(last values) for the outcome": await _median_time(
            _now(lambda: to_jsonable(values))
        ),
        "runtime: dumps(values) for the threads table (finish_run)": await _median_time(
            _now(lambda: dumps(jsonable))
        ),
        "runtime: get_buffer_string(messages) (RunRecorder callback)": await _median_time(
            _now(lambda: get_buffer_string(values["messages"]))
        ),
        "runtime: aget_state (state_outcome, interrupted runs only)": await _median_time(
            lambda: bound.aget_state(config)
        ),
    }


class _Served:
    """One graph served by `agent-runtime serve` as a child process (so that the client's work,
    such as parsing `runs.wait`'s whole state, is not counted as the server's), on its own
    database file."""

    def __init__(self, graph_id: str, folder: Path) -> None:
        self.graph_id = graph_id
        self.folder = folder
        self.database = folder / "server.sqlite"
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "langgraph.json"
        config = {"dependencies": [str(ROOT)], "graphs": SERVER_GRAPHS}
        self.config.write_text(dumps(config).decode())
        self._server: subprocess.Popen[bytes] | None = None
        self.client: LangGraphClient | None = None

    async def start(self) -> LangGraphClient:
        self._server, url = start_server(self.folder, self.config)
        self.client = get_client(url=url, api_key=None)
        return self.client

    def cpu_seconds(self) -> float:
        """CPU time of the server process so far, every thread."""
        assert self._server is not None
        return process_cpu_seconds(self._server.pid)

    async def stop(self) -> None:
        if self.client is not None:
            await self.client.http.client.aclose()
        if self._server is not None:
            stop_server(self._server)


async def measure_server(folder: Path, turns: int, repeat: int, call: str) -> dict[str, Figures]:
    """The same conversations through the HTTP API, one server and database file per graph
    and conversation, each turn a `runs.wait` or a `runs.stream` of `messages-tuple` (what a
    chat client does: it never receives the whole state)."""
    recorded: dict[str, list[_Recorder]] = {name: [] for name in GRAPHS}
    costs: dict[str, dict[str, float]] = {}
    finals: dict[str, Any] = {}
    databases: dict[str, Path] = {}
    for round_ in range(repeat):
        for name in _order(round_):
            served = _Served(name, folder / f"{call}-{round_}-{name}")
            try:
                client = await served.start()
                threads = {
                    thread: (await client.threads.create())["thread_id"]
                    for thread in ("long", "fresh")
                }

                async def turn(
                    thread: str,
                    number: int,
                    client: LangGraphClient = client,
                    name: str = name,
                    threads: dict[str, str] = threads,
                ) -> None:
                    await _turn(client, threads[thread], name, call, number)

                recorder = _Recorder(served.cpu_seconds)
                await recorder.run(turns, turn)
                recorded[name].append(recorder)
                if round_ == repeat - 1:
                    costs[name] = await _served_costs(served, threads["long"])
                    finals[name] = (await client.threads.get_state(threads["long"]))["values"]
                    databases[name] = served.database
            finally:
                await served.stop()
    return {
        name: _figures(
            recorded[name],
            database=databases[name],
            final=finals[name],
            costs=costs[name],
            served=True,
        )
        for name in GRAPHS
    }


async def _turn(client: LangGraphClient, thread_id: str, name: str, call: str, turn: int) -> None:
    if call == "wait":
        await client.runs.wait(thread_id, name, input=_message(turn))
        return
    stream = client.runs.stream(thread_id, name, input=_message(turn), stream_mode="messages-tuple")
    async for _ in stream:
        pass


async def _served_costs(served: _Served, thread_id: str) -> dict[str, float]:
    client = served.client
    assert client is not None
    return {
        "GET state": await _median_time(lambda: client.threads.get_state(thread_id)),
        "GET history?limit=10": await _median_time(
            lambda: client.threads.get_history(thread_id, limit=10)
        ),
    }


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f} ms"


def _per_turn(runs: list[list[float]], turns: range) -> str:
    # Each turn's median over the conversations.
    return " ".join(f"{statistics.median(one[t - 1] for one in runs) * 1000:.1f}" for t in turns)


def report(name: str, figures: Figures) -> float:
    """Prints one variant's figures; returns the paired ratio the target is judged on."""
    runs = figures.turns
    count = len(runs[0])
    first_turns, last_turns = range(1, WINDOW + 1), range(count - WINDOW + 1, count + 1)
    first = statistics.median(t for one in runs for t in one[:WINDOW])
    last = statistics.median(t for one in runs for t in one[-WINDOW:])
    fresh = statistics.median(t for one in figures.fresh for t in one)
    cpu_last = statistics.median(t for one in figures.cpu for t in one[:WINDOW])
    cpu_fresh = statistics.median(t for one in figures.cpu for t in one[WINDOW:])
    print(f"\n{name}: {len(runs)} conversations of {count} turns, {figures.messages} messages")
    print(f"  per turn, ms, turns {first_turns.start}-{first_turns.stop - 1}: ", end="")
    print(_per_turn(runs, first_turns))
    print(f"  per turn, ms, turns {last_turns.start}-{last_turns.stop - 1}: ", end="")
    print(_per_turn(runs, last_turns))
    print(
        f"  per turn, ms, a new thread's turns 1-{WINDOW}, each just before one of those: ", end=""
    )
    print(_per_turn(figures.fresh, first_turns))
    # Each late turn over the new thread's turn run just before it: pairs a minute apart at
    # most, so the machine's slow and fast spells cancel out.
    pairs = [
        late / new
        for one, fresh_turns in zip(runs, figures.fresh, strict=True)
        for late, new in zip(one[-WINDOW:], fresh_turns, strict=True)
    ]
    interleaved = statistics.median(pairs)
    each = [
        statistics.median(one[-WINDOW:]) / statistics.median(new)
        for one, new in zip(runs, figures.fresh, strict=True)
    ]
    print(f"  median turns {last_turns.start}-{last_turns.stop - 1}: {_ms(last)}; ", end="")
    print(f"the new thread's turns 1-{WINDOW} run alongside: {_ms(fresh)}")
    print(
        f"  ratio, median over the {len(pairs)} pairs of a late turn and the new turn before it: ",
        end="",
    )
    print(f"{interleaved:.2f}x (each conversation: " + ", ".join(f"{r:.2f}x" for r in each) + ")")
    print(
        f"  ratio to this thread's own turns 1-{WINDOW} ({_ms(first)}), minutes earlier: ", end=""
    )
    print(f"{last / first:.2f}x")
    print(f"  CPU of {figures.cpu_of} (all threads) per turn, late over new: ", end="")
    print(f"{_ms(cpu_last)} / {_ms(cpu_fresh)} = {cpu_last / cpu_fresh:.2f}x")
    if figures.outside_model:
        out_last = statistics.median(t for one in figures.outside_model for t in one[:WINDOW])
        out_fresh = statistics.median(t for one in figures.outside_model for t in one[WINDOW:])
        print("  wall time outside the chat model call, late over new: ", end="")
        print(f"{_ms(out_last)} / {_ms(out_fresh)} = {out_last / out_fresh:.2f}x")
    print(f"  database size: {figures.database_bytes / 1024:.0f} KiB")
    print(f"  state as JSON at the end: {figures.state_bytes / 1024:.0f} KiB")
    for step, seconds in figures.costs.items():
        print(f"  at the end, {step}: {_ms(seconds)}")
    return interleaved


def _compare(results: dict[str, Figures], where: str) -> None:
    ratios = {name: report(f"{name} ({where})", figures) for name, figures in results.items()}
    shrink = results["plain"].database_bytes / results["delta"].database_bytes
    verdict = "met" if ratios["delta"] <= RATIO_TARGET else "MISSED"
    print(f"\n{where}: database plain/delta {shrink:.1f}x; delta late/new {ratios['delta']:.2f}x")
    print(f"{where}: target delta late turns <= {RATIO_TARGET}x turns 1-{WINDOW}: {verdict}")


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=3, help="conversations per graph")
    parser.add_argument("--server", action="store_true", help="also run through the HTTP API")
    parser.add_argument(
        "--call",
        choices=("wait", "stream"),
        default="wait",
        help="with --server: runs.wait, or runs.stream of messages-tuple, per turn",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the last 10 turns")
    args = parser.parse_args()
    if args.turns < 2 * WINDOW:
        parser.error(f"--turns must be at least {2 * WINDOW}")
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    profile = cProfile.Profile() if args.profile else None
    print("load average at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
        results = await measure(Path(tmp), args.turns, args.repeat, profile)
        served = (
            await measure_server(Path(tmp), args.turns, args.repeat, args.call)
            if args.server
            else {}
        )
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    _compare(results, "in-process")
    if served:
        _compare(served, f"server, {args.call}")
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
        print(f"\n--- cProfile, delta, last {WINDOW} in-process turns (cumulative) ---")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
