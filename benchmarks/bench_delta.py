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
child process, `langgraph_sdk` here), each turn a `runs.wait`, a `runs.stream`, or (the default)
both in turn; `--profile` prints a cProfile of the last ten in-process turns. `--backend postgres`
runs all of it on fresh PostgreSQL databases instead of SQLite files.

`--json PATH` also writes issue 18's rows for the delta channel (`write_json`): in-process, and
each server call against the in-process turns of the same invocation. `--quick` (one
conversation, the delta graph only) keeps the 300 turns, which are what the ratio is about.

    .venv/bin/python benchmarks/bench_delta.py [--turns 300] [--server] [--profile] [--quick] \
        [--backend sqlite|postgres] [--json PATH]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import io
import json
import os
import pstats
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import plain_chat
from bench_runs import process_cpu_seconds, start_server, stop_server
from delta_report import (
    WINDOW,
    Figures,
    compare,
    print_rows,
    rows,
)
from langchain_core.messages import get_buffer_string
from langgraph.channels import DeltaChannel
from langgraph.checkpoint.base import BaseCheckpointSaver
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.pregel import Pregel
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.encoding import dumps, to_jsonable
from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.storage.base import Storage
from agent_runtime.storage.sqlite import SqliteStorage

ROOT = Path(__file__).resolve().parents[1]
POSTGRES_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
"""Where `--backend postgres` makes (and drops) its fresh databases."""
USER_TEXT = "hello there, how are you today? tell me something about turn {turn}"
SERVER_GRAPHS = {
    "delta": f"{ROOT / 'graphs' / 'chat.py'}:graph",
    "plain": f"{ROOT / 'benchmarks' / 'plain_chat.py'}:graph",
}
"""By absolute path: the server's langgraph.json lies in a temporary folder."""

AnyGraph = Pregel[Any, Any, Any, Any]


_chat = plain_chat.chat
GRAPHS: dict[str, AnyGraph] = {"plain": plain_chat.graph, "delta": _chat.graph}


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


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """What to measure, from the command line."""

    turns: int
    repeat: int
    graphs: tuple[str, ...]
    backend: str
    """"sqlite" or "postgres"."""
    admin: str
    """With postgres: the database beside which fresh ones are made."""


@dataclass(slots=True)
class _Database:
    """A fresh database: a SQLite file's path or a Postgres URI."""

    backend: str
    location: str

    async def open_storage(self) -> Storage:
        storage: Storage
        if self.backend == "postgres":
            from agent_runtime.storage.postgres import PostgresStorage

            storage = PostgresStorage(self.location)
        else:
            storage = SqliteStorage(Path(self.location))
        await storage.setup()
        return storage

    async def size(self) -> int:
        """Bytes on disk; for Postgres, its tables (the database's own catalog left out)."""
        if self.backend != "postgres":
            return _fold_wal(Path(self.location))
        import psycopg

        async with await psycopg.AsyncConnection.connect(self.location) as conn:
            cursor = await conn.execute(
                "SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c"
                " JOIN pg_namespace n ON n.oid = c.relnamespace"
                " WHERE n.nspname = 'public' AND c.relkind IN ('r', 'm')"
            )
            row = await cursor.fetchone()
        return int(row[0]) if row else 0


@asynccontextmanager
async def _database(options: Options, folder: Path, name: str) -> AsyncIterator[_Database]:
    if options.backend != "postgres":
        yield _Database("sqlite", str(folder / f"{name}.sqlite"))
        return
    from bench_runs import fresh_database

    async with fresh_database(options.admin) as uri:
        yield _Database("postgres", uri)


async def measure(
    folder: Path, options: Options, profile: cProfile.Profile | None
) -> dict[str, Figures]:
    """`repeat` conversations of `turns` turns per graph, in-process, each on a fresh database,
    the graphs alternating conversation by conversation so a noisy spell of the machine does
    not fall on one of them only."""
    repeat = options.repeat
    recorded: dict[str, list[_Recorder]] = {name: [] for name in options.graphs}
    costs: dict[str, dict[str, float]] = {}
    finals: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for round_ in range(repeat):
        for name in _order(round_, options.graphs):
            async with _database(options, folder, f"{name}-{round_}") as database:
                storage = await database.open_storage()
                try:
                    await _converse(
                        storage, name, round_, options, profile, recorded, costs, finals
                    )
                finally:
                    await storage.close()
                if round_ == repeat - 1:
                    sizes[name] = await database.size()
    return {
        name: _figures(recorded[name], size=sizes[name], final=finals[name], costs=costs[name])
        for name in options.graphs
    }


async def _converse(
    storage: Storage,
    name: str,
    round_: int,
    options: Options,
    profile: cProfile.Profile | None,
    recorded: dict[str, list[_Recorder]],
    costs: dict[str, dict[str, float]],
    finals: dict[str, Any],
) -> None:
    """One conversation of one graph in-process, recorded into the caller's dicts."""
    turns, repeat = options.turns, options.repeat
    saver = storage.checkpointer
    graph = GRAPHS[name].copy(update={"checkpointer": saver})
    last = round_ == repeat - 1
    profiling = profile if last and name == "delta" else None

    async def turn(thread: str, number: int) -> None:
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


def _figures(
    recorded: list[_Recorder],
    *,
    size: int,
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
        database_bytes=size,
        messages=len(final["messages"]),
        state_bytes=len(dumps(final)),
        costs=costs,
    )


def _order(round_: int, graphs: tuple[str, ...]) -> list[str]:
    names = list(graphs)
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
    database."""

    def __init__(self, graph_id: str, folder: Path, database: _Database) -> None:
        self.graph_id = graph_id
        self.folder = folder
        self.database = database
        folder.mkdir(parents=True, exist_ok=True)
        self.config = folder / "langgraph.json"
        config = {"dependencies": [str(ROOT)], "graphs": SERVER_GRAPHS}
        self.config.write_text(dumps(config).decode())
        self._server: subprocess.Popen[bytes] | None = None
        self.client: LangGraphClient | None = None

    async def start(self) -> LangGraphClient:
        self._server, url = start_server(self.folder, self.config, database=self.database.location)
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


async def measure_server(folder: Path, options: Options, call: str) -> dict[str, Figures]:
    """The same conversations through the HTTP API, one server and database per graph and
    conversation, each turn a `runs.wait` or a `runs.stream` of `messages-tuple` (what a chat
    client does: it never receives the whole state)."""
    recorded: dict[str, list[_Recorder]] = {name: [] for name in options.graphs}
    costs: dict[str, dict[str, float]] = {}
    finals: dict[str, Any] = {}
    sizes: dict[str, int] = {}
    for round_ in range(options.repeat):
        for name in _order(round_, options.graphs):
            label = f"{call}-{round_}-{name}"
            async with _database(options, folder, label) as database:
                served = _Served(name, folder / label, database)
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
                    await recorder.run(options.turns, turn)
                    recorded[name].append(recorder)
                    if round_ == options.repeat - 1:
                        costs[name] = await _served_costs(served, threads["long"])
                        state = await client.threads.get_state(threads["long"])
                        finals[name] = state["values"]
                finally:
                    await served.stop()
                if round_ == options.repeat - 1:
                    sizes[name] = await database.size()
    return {
        name: _figures(
            recorded[name],
            size=sizes[name],
            final=finals[name],
            costs=costs[name],
            served=True,
        )
        for name in options.graphs
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


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--turns", type=int, default=300)
    parser.add_argument("--repeat", type=int, help="conversations per graph (default 3)")
    parser.add_argument("--server", action="store_true", help="also run through the HTTP API")
    parser.add_argument(
        "--call",
        choices=("wait", "stream", "both"),
        default="both",
        help="with --server: runs.wait, runs.stream of messages-tuple, or both in turn",
    )
    parser.add_argument("--profile", action="store_true", help="cProfile the last 10 turns")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="one conversation (unless --repeat), the delta graph only, all 300 turns",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--postgres",
        default=POSTGRES_ADMIN,
        help="with --backend postgres: the admin database",
    )
    parser.add_argument("--json", type=Path, help="also write issue 18's rows here")
    return parser


async def main() -> int:
    parser = _parser()
    args = parser.parse_args()
    if args.turns < 2 * WINDOW:
        parser.error(f"--turns must be at least {2 * WINDOW}")
    repeat = args.repeat if args.repeat is not None else 1 if args.quick else 3
    if repeat < 1:
        parser.error("--repeat must be at least 1")
    options = Options(
        turns=args.turns,
        repeat=repeat,
        graphs=("delta",) if args.quick else tuple(GRAPHS),
        backend=args.backend,
        admin=args.postgres,
    )
    calls = ("wait", "stream") if args.call == "both" else (args.call,)
    profile = cProfile.Profile() if args.profile else None
    print("load average at the start: {:.2f} {:.2f} {:.2f}".format(*os.getloadavg()))
    with tempfile.TemporaryDirectory(prefix="bench-delta-") as tmp:
        results = await measure(Path(tmp), options, profile)
        served = {
            call: await measure_server(Path(tmp), options, call)
            for call in (calls if args.server else ())
        }
    load = os.getloadavg()
    print("load average at the end: {:.2f} {:.2f} {:.2f}".format(*load))
    print(f"backend: {options.backend}")
    in_process = compare(results, "in-process")
    summaries = {call: compare(figures, f"server, {call}") for call, figures in served.items()}
    found = rows(in_process, summaries, options.turns)
    print_rows(found)
    if args.json is not None:
        document = {"rows": found, "load": list(load), "backend": options.backend}
        args.json.write_text(json.dumps(document, indent=2) + "\n")
    if profile is not None:
        out = io.StringIO()
        pstats.Stats(profile, stream=out).sort_stats("cumulative").print_stats(40)
        print(f"\n--- cProfile, delta, last {WINDOW} in-process turns (cumulative) ---")
        print(out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
