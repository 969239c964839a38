"""Several server processes on one database (SQLite, or Postgres with `--backend postgres`),
through the real CLI: `serve --workers N` and separate `serve` processes execute every run exactly
once, `--n-jobs-per-worker` bounds the runs one process executes at once, API-only and
worker-only processes split the work, and SIGTERM lets runs finish within the grace period and
hands the rest to another process.

The fixture graph appends a line per execution start and end (run id, attempt, pid, time) to a
log file, which is how these tests count executions and see which process ran what."""

from __future__ import annotations

import asyncio
import signal
import time
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from agent_runtime.cli_options import build_parser, read_command
from agent_runtime.config import config_from_dict, load_config
from agent_runtime.errors import ConfigError
from agent_runtime.storage import open_storage
from tests.conftest import ROOT, Database, json_of
from tests.runs.test_crash_recovery import ServerProcess, _until

# Leases long enough that a process stalled by the load of a busy test machine keeps its runs:
# the exactly-once tests count on it. The takeover test makes a process go silent on purpose.
CONFIG = ROOT / "tests" / "fixtures" / "processes" / "langgraph.json"
SHORT_LEASE_CONFIG = ROOT / "tests" / "fixtures" / "processes" / "short-lease.json"
RUNS_TIMEOUT_SECONDS = 45.0
CREATE_CONCURRENCY = 16


@dataclass(frozen=True, slots=True)
class Line:
    event: str
    run_id: str
    attempt: int
    pid: int
    at: float


def _lines(log: Path) -> list[Line]:
    if not log.exists():
        return []
    found = []
    for text in log.read_text().splitlines():
        event, run_id, attempt, pid, at = text.split()
        found.append(Line(event, run_id, int(attempt), int(pid), float(at)))
    return found


def _most_at_once(lines: Sequence[Line]) -> int:
    # Ends sort before starts at the same instant: back to back is not at once.
    moves = sorted((line.at, line.event == "start") for line in lines)
    running = most = 0
    for _, starts in moves:
        running += 1 if starts else -1
        most = max(most, running)
    return most


def _server(folder: Path, database: Database, *args: str, config: Path = CONFIG) -> ServerProcess:
    return ServerProcess(folder, database, config=config, args=args)


async def _create_runs(
    clients: Sequence[LangGraphClient], threads: int, per_thread: int, log: Path
) -> list[tuple[str, str]]:
    """Queue `per_thread` runs on each of `threads` new threads, spread over the clients (so
    over the processes) run by run; return (thread id, run id) of each."""
    gate = asyncio.Semaphore(CREATE_CONCURRENCY)

    async def thread(index: int) -> list[tuple[str, str]]:
        async with gate:
            client = clients[index % len(clients)]
            thread_id = (await client.threads.create())["thread_id"]
            made = []
            for n in range(per_thread):
                client = clients[(index + n) % len(clients)]
                run = await client.runs.create(
                    thread_id,
                    "record",
                    input={"runs": []},
                    context={"log": str(log)},
                    multitask_strategy="enqueue",
                )
                made.append((thread_id, run["run_id"]))
            return made

    groups = await asyncio.gather(*(thread(i) for i in range(threads)))
    return [pair for group in groups for pair in group]


async def _all_ended(client: LangGraphClient, runs: Sequence[tuple[str, str]], log: Path) -> None:
    async def done() -> bool:
        return sum(line.event == "end" for line in _lines(log)) >= len(runs)

    await _until(done, f"{len(runs)} runs to execute", within=RUNS_TIMEOUT_SECONDS)
    by_thread: dict[str, list[str]] = {}
    for thread_id, run_id in runs:
        by_thread.setdefault(thread_id, []).append(run_id)

    async def settled() -> bool:
        for thread_id in by_thread:
            found = await client.runs.list(thread_id, limit=1000)
            if any(run["status"] in ("pending", "running") for run in found):
                return False
        return True

    await _until(settled, "every run to be recorded as ended", within=RUNS_TIMEOUT_SECONDS)
    for thread_id, run_ids in by_thread.items():
        found = {run["run_id"]: run for run in await client.runs.list(thread_id, limit=1000)}
        assert {run_id: found[run_id]["status"] for run_id in run_ids} == dict.fromkeys(
            run_ids, "success"
        )
        # Each thread ran its runs in the order they were queued, each exactly once.
        state: Any = (await client.threads.get_state(thread_id))["values"]
        assert state["runs"] == run_ids


def _executed_once_each(runs: Sequence[tuple[str, str]], log: Path) -> Counter[int]:
    """Assert every run started and ended exactly once, in its first attempt; return how many
    runs each process executed."""
    lines = _lines(log)
    starts = Counter(line.run_id for line in lines if line.event == "start")
    ends = Counter(line.run_id for line in lines if line.event == "end")
    run_ids = {run_id for _, run_id in runs}
    assert set(starts) == run_ids
    assert [run_id for run_id, n in starts.items() if n != 1] == []
    assert ends == starts
    assert {line.attempt for line in lines} == {1}
    return Counter(line.pid for line in lines if line.event == "start")


async def _status_and_charges(
    database: Database, runs: Iterable[tuple[str, str]]
) -> list[tuple[str, int]]:
    storage = await open_storage(load_config(CONFIG, database=database, environ={}))
    try:
        return [
            (
                (await storage.get_run(thread_id, run_id))["status"],
                await storage.charged_attempts(run_id),
            )
            for thread_id, run_id in runs
        ]
    finally:
        await storage.close()


async def _stop_all(servers: Sequence[ServerProcess]) -> None:
    for server in servers:
        if server._process is not None and server._process.returncode is None:
            try:
                await server.terminate()
            except TimeoutError:
                await server.kill()
        await server.kill()


@pytest.mark.timeout(120)
async def test_four_worker_processes_execute_each_run_exactly_once(
    tmp_path: Path, database: Database
) -> None:
    server = _server(tmp_path, database, "--workers", "4")
    log = tmp_path / "executions.log"
    try:
        client = await server.start()
        runs = await _create_runs([client], threads=100, per_thread=4, log=log)
        assert len(runs) == 400
        await _all_ended(client, runs, log)
        per_process = _executed_once_each(runs, log)
        # The kernel spreads connections over the processes, and each executes what it was
        # given or found queued: the work is shared, never done twice.
        assert len(per_process) >= 2
        assert server.pid not in per_process
    finally:
        await _stop_all([server])


@pytest.mark.timeout(120)
async def test_separate_serve_processes_share_the_queue_of_one_database(
    tmp_path: Path, database: Database
) -> None:
    servers = [_server(tmp_path, database) for _ in range(4)]
    log = tmp_path / "executions.log"
    try:
        # One at a time: all four set up the one file, each in turn.
        clients = [await server.start() for server in servers]
        # A thread's runs are queued through different processes in turn, so most runs are
        # queued where another process is running the thread's previous one.
        runs = await _create_runs(clients, threads=40, per_thread=5, log=log)
        await _all_ended(clients[0], runs, log)
        per_process = _executed_once_each(runs, log)
        assert len(per_process) >= 2
        assert set(per_process) <= {server.pid for server in servers}
    finally:
        await _stop_all(servers)


@pytest.mark.timeout(90)
async def test_n_jobs_per_worker_bounds_the_runs_executing_at_once(
    tmp_path: Path, database: Database
) -> None:
    server = _server(tmp_path, database, "--n-jobs-per-worker", "2")
    log = tmp_path / "executions.log"
    try:
        client = await server.start()
        started = time.monotonic()
        runs = []
        for _ in range(6):
            thread_id = (await client.threads.create())["thread_id"]
            run = await client.runs.create(
                thread_id, "record", input={"runs": []}, context={"log": str(log), "delay": 1.0}
            )
            runs.append((thread_id, run["run_id"]))
        # The four without a slot wait `pending`, unclaimed.
        statuses = Counter([(await client.runs.get(t, r))["status"] for t, r in runs])
        assert statuses["running"] <= 2
        await _all_ended(client, runs, log)
        _executed_once_each(runs, log)
        assert _most_at_once(_lines(log)) == 2
        # Three rounds of two one-second runs.
        assert time.monotonic() - started >= 3.0
    finally:
        await _stop_all([server])


@pytest.mark.timeout(90)
async def test_an_api_process_queues_and_a_worker_process_executes(
    tmp_path: Path, database: Database
) -> None:
    api, worker = (
        _server(tmp_path, database, "--role", "api"),
        _server(tmp_path, database, "--role", "worker"),
    )
    log = tmp_path / "executions.log"
    try:
        client = await api.start()
        await worker.start()
        worker_url = str(worker._client.http.client.base_url)  # type: ignore[union-attr]
        thread_id = (await client.threads.create())["thread_id"]
        # Through the API process, which never executes it: it reads the run's end.
        values = await client.runs.wait(
            thread_id, "record", input={"runs": []}, context={"log": str(log)}
        )
        (line, *rest) = [line for line in _lines(log) if line.event == "start"]
        assert rest == []
        assert values == {"runs": [line.run_id]}
        assert line.pid == worker.pid
        run = json_of(await client.runs.get(thread_id, line.run_id))
        assert (run["status"], run["attempt"]) == ("success", 1)

        async with httpx.AsyncClient(base_url=worker_url) as http:
            assert (await http.get("/ok")).json() == {"ok": True}
            refused = await http.get(f"/threads/{thread_id}")
        assert refused.status_code == 404
        assert refused.json() == {
            "detail": "This process only executes runs (--role worker) and answers only GET /ok "
            "(and /metrics when on); send API requests to a process with the api or all role",
            "code": "worker_only",
        }
    finally:
        await _stop_all([api, worker])


@pytest.mark.timeout(120)
async def test_sigterm_lets_short_runs_finish_and_hands_long_ones_to_another_process(
    tmp_path: Path,
    database: Database,
) -> None:
    first = _server(tmp_path, database, "--shutdown-grace-seconds", "3")
    second = _server(tmp_path, database)
    log = tmp_path / "executions.log"
    try:
        client = await first.start()
        url = str(client.http.client.base_url)
        runs = {}
        for name, delay in (("short", 1.5), ("long", 8.0)):
            thread_id = (await client.threads.create())["thread_id"]
            run = await client.runs.create(
                thread_id, "record", input={"runs": []}, context={"log": str(log), "delay": delay}
            )
            runs[name] = (thread_id, run["run_id"])

        async def both_started() -> bool:
            return sum(line.event == "start" for line in _lines(log)) == 2

        await _until(both_started, "both runs to start")
        stopping = asyncio.ensure_future(first.terminate(within=30))
        # The API still answers during the grace period.
        async with httpx.AsyncClient(base_url=url) as http:
            assert (await http.get("/ok")).status_code == 200
        began = time.monotonic()
        assert await stopping == -signal.SIGTERM
        # It waited out the grace period for the long run, not its whole length.
        assert 1.0 < time.monotonic() - began < 8.0

        # Read from the database itself: no server is up to ask.
        assert await _status_and_charges(database, runs.values()) == [
            ("success", 0),
            ("pending", 0),
        ]

        client = await second.start()
        long_thread, long_run = runs["long"]

        async def long_ended() -> bool:
            run = await client.runs.get(long_thread, long_run)
            return run["status"] not in ("pending", "running")

        await _until(long_ended, "the handed-back run to finish", within=30)
        resumed = json_of(await client.runs.get(long_thread, long_run))
        assert (resumed["status"], resumed["attempt"]) == ("success", 2)
        by_run = {(line.run_id, line.event): line for line in _lines(log)}
        assert by_run[(runs["short"][1], "end")].pid == first.pid
        assert by_run[(long_run, "end")].pid == second.pid
        assert by_run[(long_run, "end")].attempt == 2
    finally:
        await _stop_all([first, second])


def test_jobs_per_process_are_read_from_the_limits(tmp_path: Path) -> None:
    def limits(**values: Any) -> Any:
        data = {"graphs": {"record": "./graphs.py:record"}, "agent_runtime": {"limits": values}}
        return config_from_dict(
            data, base_dir=CONFIG.parent, database=tmp_path / "db.sqlite", environ={}
        ).limits

    assert limits().n_jobs_per_worker == 10
    assert limits(n_jobs_per_worker=3).n_jobs_per_worker == 3
    with pytest.raises(ConfigError) as caught:
        limits(n_jobs_per_worker=0)
    assert caught.value.detail == (
        "langgraph.json: agent_runtime.limits.n_jobs_per_worker: expected a positive integer, got 0"
    )


def test_process_options_come_from_flags_then_the_environment() -> None:
    environ = {
        "N_JOBS_PER_WORKER": "3",
        "WEB_CONCURRENCY": "2",
        "AGENT_RUNTIME_ROLE": "worker",
        "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS": "7.5",
    }
    command = read_command(build_parser().parse_args(["serve"]), environ)
    assert (command.jobs, command.workers, command.role, command.shutdown_grace) == (
        3,
        2,
        "worker",
        7.5,
    )
    flags = ["serve", "--n-jobs-per-worker", "4", "--workers", "1", "--role", "api"]
    command = read_command(build_parser().parse_args(flags), environ)
    assert (command.jobs, command.workers, command.role) == (4, 1, "api")


@pytest.mark.timeout(60)
async def test_a_lone_process_that_stalled_past_its_lease_keeps_its_run(
    tmp_path: Path, database: Database
) -> None:
    # The attempt blocks the server's event loop for 5 s, past the 2 s lease; no other process
    # is there to take the run over. When the loop wakes, its own reaper must not re-queue the
    # run (which its heartbeat would then find lost, and stop): the run goes on and ends in its
    # first attempt.
    server = _server(tmp_path, database, config=SHORT_LEASE_CONFIG)
    log = tmp_path / "executions.log"
    try:
        client = await server.start()
        thread_id = (await client.threads.create())["thread_id"]
        context: dict[str, Any] = {"log": str(log), "stall": 5.0, "delay": 1.0}
        run = await client.runs.create(thread_id, "record", input={"runs": []}, context=context)

        async def ended() -> bool:
            found = await client.runs.get(thread_id, run["run_id"])
            return found["status"] in ("success", "error")

        await _until(ended, "the run to end", within=30)
        final = json_of(await client.runs.get(thread_id, run["run_id"]))
        assert (final["status"], final["attempt"]) == ("success", 1)
        assert [(line.event, line.attempt) for line in _lines(log)] == [("start", 1), ("end", 1)]
        assert not any("lease lapsed" in line for line in server.output), server.output[-20:]
    finally:
        await _stop_all([server])


@pytest.mark.timeout(90)
async def test_a_stalled_process_stops_the_run_another_process_took_over(
    tmp_path: Path, database: Database
) -> None:
    # The first attempt blocks its server's event loop for 8 s, well past the 2 s lease (a
    # reap comes within about 3 s, with room for a loaded machine): the other server reaps the
    # run and executes it again, for 7 s. When the first server wakes, its attempt goes on (3 s
    # more) unless stopped; but the run is no longer its own: its heartbeat finds that and
    # stops it, and it neither writes to the thread nor ends the run (which would let the run
    # queued behind start beside the second attempt).
    first = _server(tmp_path, database, config=SHORT_LEASE_CONFIG)
    second = _server(tmp_path, database, config=SHORT_LEASE_CONFIG)
    log = tmp_path / "executions.log"
    try:
        client = await first.start()
        other = await second.start()
        thread_id = (await client.threads.create())["thread_id"]
        context: dict[str, Any] = {"log": str(log), "stall": 8.0, "delay": 3.0, "retry_delay": 7.0}
        taken = await client.runs.create(thread_id, "record", input={"runs": []}, context=context)
        behind = await client.runs.create(
            thread_id,
            "record",
            input={"runs": []},
            context={"log": str(log)},
            multitask_strategy="enqueue",
        )

        async def both_ended() -> bool:
            runs = await other.runs.list(thread_id)
            return all(run["status"] == "success" for run in runs) and len(runs) == 2

        await _until(both_ended, "both runs to end", within=60)
        ended = json_of(await other.runs.get(thread_id, taken["run_id"]))
        assert (ended["status"], ended["attempt"]) == ("success", 2)
        lines = {(line.run_id, line.event, line.attempt): line for line in _lines(log)}
        # The stalled attempt started when its server woke; had it gone on, it would have
        # ended 3 s later.
        stalled = lines[(taken["run_id"], "start", 1)]
        assert stalled.pid == first.pid
        await asyncio.sleep(max(0.0, stalled.at + 3.5 - time.time()))
        lines = {(line.run_id, line.event, line.attempt): line for line in _lines(log)}
        assert (taken["run_id"], "end", 1) not in lines
        retried_end = lines[(taken["run_id"], "end", 2)]
        assert retried_end.pid == second.pid
        assert any(
            taken["run_id"] in line and "stopping its execution here" in line
            for line in first.output
        ), first.output[-20:]
        # The queued run started only once the run ahead of it had ended where it was taken.
        assert lines[(behind["run_id"], "start", 1)].at >= retried_end.at
        # Each run wrote to the thread once: the stopped attempt wrote nothing.
        state: Any = (await other.threads.get_state(thread_id))["values"]
        assert state["runs"] == [taken["run_id"], behind["run_id"]]
    finally:
        await _stop_all([first, second])
