"""Several real `agent-runtime serve` processes on one database (SQLite, or Postgres with
`--backend postgres`): with `--redis`, any process
streams, resumes, joins and cancels a run that another executes, also across a kill -9 of the
executing process and a restart of Redis; without Redis, join still sees the end.

Which process executes a run is whichever claims it first; the ticker graph's `custom` events
name it (its pid), and each test picks the others for the clients."""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import socket
import subprocess
import time
from collections.abc import AsyncGenerator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from agent_runtime.streaming.eventlog import ATTEMPT_ID_SPAN
from tests.conftest import ROOT, Database
from tests.runs.test_crash_recovery import ServerProcess, _ended, _until
from tests.services import redis_prefix, require_redis

CLUSTER_CONFIG = ROOT / "tests" / "fixtures" / "cluster" / "langgraph.json"
MODES = httpx.QueryParams([("stream_mode", "custom"), ("stream_mode", "updates")])


@dataclass(frozen=True, slots=True)
class Event:
    id: int | None
    event: str
    data: Any


async def _events(
    url: str, path: str, *, last_event_id: str | None = None
) -> AsyncGenerator[Event]:
    """A run's stream read raw, so the test sees every `id:` as sent."""
    headers = {} if last_event_id is None else {"Last-Event-ID": last_event_id}
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        http.stream("GET", path, headers=headers, params=MODES) as response,
    ):
        assert response.status_code == 200
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "event" in fields:
                raw_id = fields.get("id")
                yield Event(
                    int(raw_id) if raw_id else None, fields["event"], json.loads(fields["data"])
                )
            fields = {}


def _path(thread_id: str, run_id: str) -> str:
    return f"/threads/{thread_id}/runs/{run_id}/stream"


async def _read(
    url: str, path: str, *, last_event_id: str | None, until: Any = None
) -> list[Event]:
    """Events until `until(event)` is true (the connection then drops) or the stream ends."""
    seen: list[Event] = []
    async with contextlib.aclosing(_events(url, path, last_event_id=last_event_id)) as events:
        async for event in events:
            seen.append(event)
            if until is not None and until(event):
                break
    return seen


async def _start(
    folder: Path,
    database: Database,
    count: int,
    *,
    redis: str | None,
    prefix: str | None = None,
) -> list[ServerProcess]:
    args = ["--redis", redis] if redis else []
    env = {"REDIS_KEY_PREFIX": prefix} if prefix else {}
    servers = [
        ServerProcess(folder, database, config=CLUSTER_CONFIG, args=args, env=env)
        for _ in range(count)
    ]
    try:
        # One after another: the first creates the database's tables.
        for server in servers:
            await server.start()
    except BaseException:
        await _stop(servers)
        raise
    return servers


async def _stop(servers: Sequence[ServerProcess]) -> None:
    for server in servers:
        await server.kill()


async def _executor(servers: Sequence[ServerProcess], thread_id: str, run_id: str) -> int:
    """The index of the server executing the run: the pid its first tick names."""
    first = await _read(
        servers[0].url,
        _path(thread_id, run_id),
        last_event_id="-1",
        until=lambda event: event.event == "custom",
    )
    pid = first[-1].data["pid"]
    return next(i for i, server in enumerate(servers) if server.pid == pid)


async def _new_run(server: ServerProcess, **context: Any) -> tuple[str, str]:
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        body = {
            "assistant_id": "ticker",
            "input": {"steps": []},
            "context": context,
            "stream_mode": ["custom", "updates"],
        }
        run = (await http.post(f"/threads/{thread_id}/runs", json=body)).json()
    return thread_id, run["run_id"]


def _strictly_increasing(ids: list[int | None]) -> bool:
    numbers = [n for n in ids if n is not None]
    return len(numbers) == len(ids) and all(a < b for a, b in itertools.pairwise(numbers))


@pytest.mark.timeout(120)
async def test_a_run_streamed_through_one_process_resumes_through_another(
    tmp_path: Path,
    database: Database,
) -> None:
    servers = await _start(tmp_path, database, 3, redis=require_redis(), prefix=redis_prefix())
    try:
        thread_id, run_id = await _new_run(servers[0], ticks=5, tick_seconds=0.1)
        executing = await _executor(servers, thread_id, run_id)
        streamer, resumer = [s for i, s in enumerate(servers) if i != executing]
        path = _path(thread_id, run_id)
        async with httpx.AsyncClient(base_url=streamer.url, timeout=60) as http:
            join = asyncio.create_task(http.get(f"/threads/{thread_id}/runs/{run_id}/join"))
            count = 0

            def ninth(event: Event) -> bool:
                nonlocal count
                count += 1
                return count >= 9

            before = await _read(streamer.url, path, last_event_id="-1", until=ninth)
            after = await _read(resumer.url, path, last_event_id=str(before[-1].id))
            answer = await join
        everything = await _read(servers[executing].url, path, last_event_id="-1")

        ids = [e.id for e in before + after]
        assert _strictly_increasing(ids)
        assert ids == [e.id for e in everything]  # 0 gaps, 0 duplicates
        assert everything[0].event == "metadata"
        assert everything[-1].event == "end"
        pids = {e.data["pid"] for e in everything if e.event == "custom"}
        assert pids == {servers[executing].pid}
        assert len([e for e in everything if e.event == "custom"]) == 6 * 5
        assert answer.status_code == 200
        assert answer.json() == {"steps": [f"{i}@1" for i in range(6)]}
    finally:
        await _stop(servers)


async def _thread_events(
    url: str, thread_id: str, opened: asyncio.Event, *, runs: int
) -> list[tuple[str, str, Any]]:
    """A thread's stream read raw, (id, event, data) each, until `runs` runs have ended on it;
    `opened` is set once the response has begun."""
    seen: list[tuple[str, str, Any]] = []
    ended = 0
    async with (
        httpx.AsyncClient(base_url=url, timeout=30) as http,
        http.stream("GET", f"/threads/{thread_id}/stream") as response,
    ):
        assert response.status_code == 200
        opened.set()
        fields: dict[str, str] = {}
        async for line in response.aiter_lines():
            if line.startswith(":"):
                continue
            if line:
                name, _, value = line.partition(": ")
                fields[name] = value
                continue
            if "event" in fields:
                data = json.loads(fields["data"])
                seen.append((fields.get("id", ""), fields["event"], data))
                if fields["event"] == "metadata" and "status" in data:
                    ended += 1
                    if ended == runs:
                        return seen
            fields = {}
    return seen


@pytest.mark.timeout(120)
async def test_a_thread_stream_through_another_process_sees_the_runs_executed_elsewhere(
    tmp_path: Path, database: Database
) -> None:
    redis, env = require_redis(), {"REDIS_KEY_PREFIX": redis_prefix()}
    # An API-only process cannot execute, so every run executes on the other one.
    executor = ServerProcess(
        tmp_path, database, config=CLUSTER_CONFIG, args=["--redis", redis], env=env
    )
    api = ServerProcess(
        tmp_path,
        database,
        config=CLUSTER_CONFIG,
        args=["--redis", redis, "--role", "api"],
        env=env,
    )
    try:
        for server in (executor, api):
            await server.start()
        async with httpx.AsyncClient(base_url=executor.url, timeout=30) as http:
            thread_id = (await http.post("/threads", json={})).json()["thread_id"]
        opened = asyncio.Event()
        watching = asyncio.create_task(_thread_events(api.url, thread_id, opened, runs=2))
        await asyncio.wait_for(opened.wait(), 10)
        run_ids = []
        # The first run is created through the executing process, the second through the
        # API-only one (queued behind the first, executed by the other).
        for server in (executor, api):
            async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
                body = {
                    "assistant_id": "ticker",
                    "input": {"steps": []},
                    "context": {"ticks": 2, "tick_seconds": 0.05},
                    "stream_mode": ["custom", "updates"],
                    "multitask_strategy": "enqueue",
                }
                run = (await http.post(f"/threads/{thread_id}/runs", json=body)).json()
            run_ids.append(run["run_id"])
        seen = await asyncio.wait_for(watching, 60)

        for run_id in run_ids:
            own = [(i, e, d) for i, e, d in seen if i.startswith(f"{run_id}:")]
            assert own[0][1:] == ("metadata", {"run_id": run_id, "attempt": 1})
            ticks = [d for _, e, d in own if e == "custom"]
            assert len(ticks) == 6 * 2
            assert {tick["pid"] for tick in ticks} == {executor.pid}
            assert [e for _, e, _ in own].count("updates") == 6
            assert own[-1][1:] == (
                "metadata",
                {"run_id": run_id, "thread_id": thread_id, "status": "success"},
            )
            numbers = [int(i.rsplit(":", 1)[1]) for i, _, _ in own]
            assert numbers[:-1] == sorted(set(numbers[:-1]))
        # One run after the other, in the order they were queued.
        firsts = [next(n for n, (i, _, _) in enumerate(seen) if i.startswith(r)) for r in run_ids]
        assert firsts == sorted(firsts)
    finally:
        await _stop([api, executor])


@pytest.mark.timeout(120)
async def test_a_cancel_sent_to_another_process_stops_the_run_within_a_second(
    tmp_path: Path,
    database: Database,
) -> None:
    servers = await _start(tmp_path, database, 2, redis=require_redis(), prefix=redis_prefix())
    try:
        thread_id, run_id = await _new_run(servers[0], ticks=100, tick_seconds=0.1)
        executing = await _executor(servers, thread_id, run_id)
        other = servers[1 - executing]
        path = _path(thread_id, run_id)
        ended: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def stopped(event: Event) -> bool:
            if event.event == "error" and not ended.done():
                ended.set_result(time.monotonic())
            return event.event == "end"

        watching = asyncio.create_task(_read(other.url, path, last_event_id="-1", until=stopped))
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=other.url, timeout=30) as http:
            sent = time.monotonic()
            response = await http.post(f"/threads/{thread_id}/runs/{run_id}/cancel")
        assert response.status_code == 202
        seen = await asyncio.wait_for(watching, 10)
        took = await ended - sent
        print(f"cancel through another process: stopped after {took * 1000:.0f} ms")
        assert took < 1.0
        assert [e.event for e in seen[-2:]] == ["error", "end"]
        assert seen[-2].data == {
            "error": "CancelledError",
            "message": "The run was cancelled (interrupt)",
        }
        async with httpx.AsyncClient(base_url=other.url, timeout=30) as http:
            run = (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()
        assert run["status"] == "interrupted"
    finally:
        await _stop(servers)


@pytest.mark.timeout(120)
async def test_a_client_reconnecting_after_a_kill_gets_every_later_event(
    tmp_path: Path, database: Database
) -> None:
    servers = await _start(tmp_path, database, 2, redis=require_redis(), prefix=redis_prefix())
    try:
        thread_id, run_id = await _new_run(servers[0], ticks=4, tick_seconds=0.2)
        executing = await _executor(servers, thread_id, run_id)
        survivor = servers[1 - executing]
        path = _path(thread_id, run_id)

        def second_step(event: Event) -> bool:
            return event.event == "custom" and event.data["step"] == 1

        before = await _read(survivor.url, path, last_event_id="-1", until=second_step)
        await servers[executing].kill()
        after = await _read(survivor.url, path, last_event_id=str(before[-1].id))

        assert _strictly_increasing([e.id for e in before + after])
        assert after[0].id == ATTEMPT_ID_SPAN + 1
        assert after[0].event == "metadata"
        assert after[0].data == {"run_id": run_id, "attempt": 2}
        assert after[-1].event == "end"
        ticks = [e.data for e in after if e.event == "custom"]
        assert {(t["pid"], t["attempt"]) for t in ticks} == {(survivor.pid, 2)}
        client = survivor._client
        assert client is not None
        final = await _ended(client, thread_id, run_id)
        assert (final["status"], final["attempt"]) == ("success", 2)
    finally:
        await _stop(servers)


@pytest.mark.timeout(120)
async def test_without_redis_join_through_another_process_sees_the_end(
    tmp_path: Path, database: Database
) -> None:
    servers = await _start(tmp_path, database, 2, redis=None)
    try:
        thread_id, run_id = await _new_run(servers[0], ticks=3, tick_seconds=0.1)
        async with httpx.AsyncClient(base_url=servers[1].url, timeout=60) as http:
            answer = await http.get(f"/threads/{thread_id}/runs/{run_id}/join")
        assert answer.status_code == 200
        assert answer.json() == {"steps": [f"{i}@1" for i in range(6)]}
    finally:
        await _stop(servers)


async def test_an_assistant_changed_through_another_process_is_the_one_the_next_run_takes(
    tmp_path: Path, database: Database
) -> None:
    # Process A caches the assistants its runs were made with; a change made through B must
    # reach A's next run all the same (the run's creation checks the assistant it cached).
    servers = await _start(tmp_path, database, 2, redis=None)
    try:
        async with (
            httpx.AsyncClient(base_url=servers[0].url, timeout=30) as on_a,
            httpx.AsyncClient(base_url=servers[1].url, timeout=30) as on_b,
        ):
            made = await on_a.post(
                "/assistants",
                json={"graph_id": "ticker", "context": {"ticks": 1, "tick_seconds": 0}},
            )
            assistant_id = made.json()["assistant_id"]

            async def ticks() -> int:
                thread_id = (await on_a.post("/threads", json={})).json()["thread_id"]
                body = {"assistant_id": assistant_id, "input": {"steps": []}}
                text = (
                    await on_a.post(
                        f"/threads/{thread_id}/runs/stream",
                        json={**body, "stream_mode": ["custom"]},
                    )
                ).text
                frames = [_frame(block) for block in text.split("\n\n") if "event: " in block]
                assert frames[-1] == ("end", None)
                return len([name for name, _ in frames if name == "custom"])

            assert await ticks() == 6
            assert await ticks() == 6  # from A's cache now
            changed = await on_b.patch(
                f"/assistants/{assistant_id}", json={"context": {"ticks": 2, "tick_seconds": 0}}
            )
            assert changed.status_code == 200
            assert await ticks() == 12
            # A switch back to the first version, made through B too.
            latest = await on_b.post(f"/assistants/{assistant_id}/latest", json={"version": 1})
            assert latest.status_code == 200
            assert await ticks() == 6
            deleted = await on_b.delete(f"/assistants/{assistant_id}")
            assert deleted.status_code == 204
            thread_id = (await on_a.post("/threads", json={})).json()["thread_id"]
            refused = await on_a.post(
                f"/threads/{thread_id}/runs/wait", json={"assistant_id": assistant_id}
            )
            assert refused.status_code == 404, refused.text
    finally:
        await _stop(servers)


async def _executor_and_api(
    folder: Path, database: Database, *, redis: str | None = None
) -> tuple[ServerProcess, ServerProcess]:
    """Two processes on one database, the second API-only: every run executes on the first."""
    args = ["--redis", redis] if redis else []
    env = {"REDIS_KEY_PREFIX": redis_prefix()} if redis else {}
    executor = ServerProcess(folder, database, config=CLUSTER_CONFIG, args=args, env=env)
    api = ServerProcess(
        folder, database, config=CLUSTER_CONFIG, args=[*args, "--role", "api"], env=env
    )
    try:
        for server in (executor, api):
            await server.start()
    except BaseException:
        await _stop([api, executor])
        raise
    return executor, api


@pytest.mark.timeout(120)
async def test_without_redis_a_cancel_sent_to_another_process_stops_the_run(
    tmp_path: Path, database: Database
) -> None:
    executor, api = await _executor_and_api(tmp_path, database)
    try:
        thread_id, run_id = await _new_run(api, ticks=100, tick_seconds=0.1)
        path = _path(thread_id, run_id)
        ended: asyncio.Future[float] = asyncio.get_running_loop().create_future()

        def stopped(event: Event) -> bool:
            if event.event == "error" and not ended.done():
                ended.set_result(time.monotonic())
            return event.event == "end"

        async def running() -> bool:
            async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
                run = (await http.get(f"/threads/{thread_id}/runs/{run_id}")).json()
            return bool(run["status"] == "running")

        await _until(running, "the run to start")
        # The executing process holds the events; the API process records the cancel.
        watching = asyncio.create_task(_read(executor.url, path, last_event_id="-1", until=stopped))
        await asyncio.sleep(0.5)
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            sent = time.monotonic()
            response = await http.post(
                f"/threads/{thread_id}/runs/{run_id}/cancel", params={"wait": "true"}
            )
            answered = time.monotonic()
        seen = await asyncio.wait_for(watching, 10)
        took = await ended - sent
        print(f"cancel through another process without Redis: stopped after {took * 1000:.0f} ms")
        # Found at the executing process's next look (1 s), then the run ends as usual.
        assert took < 2.0
        assert answered - sent < 3.0
        assert response.status_code == 200
        assert (response.json()["status"], response.json()["run_id"]) == ("interrupted", run_id)
        assert [e.event for e in seen[-2:]] == ["error", "end"]
        assert seen[-2].data == {
            "error": "CancelledError",
            "message": "The run was cancelled (interrupt)",
        }
        assert {e.data["pid"] for e in seen if e.event == "custom"} == {executor.pid}
    finally:
        await _stop([api, executor])


@pytest.mark.timeout(120)
async def test_without_redis_a_stream_through_another_process_ends_with_the_final_values(
    tmp_path: Path, database: Database
) -> None:
    executor, api = await _executor_and_api(tmp_path, database)
    final = {"steps": [f"{i}@1" for i in range(6)]}
    try:
        async with httpx.AsyncClient(base_url=api.url, timeout=30) as http:
            thread_id = (await http.post("/threads", json={})).json()["thread_id"]
            body = {
                "assistant_id": "ticker",
                "input": {"steps": []},
                "context": {"ticks": 2, "tick_seconds": 0.05},
                "stream_mode": ["values", "custom"],
            }
            began = time.monotonic()
            async with http.stream(
                "POST", f"/threads/{thread_id}/runs/stream", json=body
            ) as response:
                assert response.status_code == 200
                text = "".join([chunk async for chunk in response.aiter_text()])
            took = time.monotonic() - began
        frames = [_frame(block) for block in text.split("\n\n") if "event: " in block]
        run_id = frames[0][1]["run_id"]
        # What this process can tell without the events: the run, its final values, the end.
        assert frames == [
            ("metadata", {"run_id": run_id, "attempt": 1}),
            ("values", final),
            ("end", None),
        ]
        assert took < 15.0
        # The same through a join stream, once the run has ended.
        joined = await _read(api.url, _path(thread_id, run_id), last_event_id="-1")
        assert [(e.event, e.id) for e in joined] == [("error", None), ("end", None)]
        assert joined[0].data["error"] == "EventsExpired"
        # The executing process has every event.
        everything = await _read(executor.url, _path(thread_id, run_id), last_event_id="-1")
        assert len([e for e in everything if e.event == "custom"]) == 6 * 2
    finally:
        await _stop([api, executor])


def _frame(block: str) -> tuple[str, Any]:
    fields = dict(line.partition(": ")[::2] for line in block.splitlines() if ": " in line)
    return fields["event"], json.loads(fields["data"])


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _redis_server(port: int) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def _redis_answers(port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection("127.0.0.1", port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


@pytest.mark.timeout(120)
async def test_a_run_finishes_and_its_stream_rejoins_across_a_redis_restart(
    tmp_path: Path,
    database: Database,
) -> None:
    require_redis()
    port = _free_port()
    redis = _redis_server(port)
    servers: list[ServerProcess] = []
    try:
        await _until(lambda: _redis_answers(port), "the test's Redis to listen")
        servers = await _start(tmp_path, database, 2, redis=f"redis://127.0.0.1:{port}/0")
        thread_id, run_id = await _new_run(servers[0], ticks=5, tick_seconds=0.15)
        executing = await _executor(servers, thread_id, run_id)
        other = servers[1 - executing]
        async with httpx.AsyncClient(base_url=other.url, timeout=60) as http:
            join = asyncio.create_task(http.get(f"/threads/{thread_id}/runs/{run_id}/join"))
            await asyncio.sleep(0.5)
            redis.kill()
            redis.wait()
            await asyncio.sleep(1.0)
            redis = _redis_server(port)
            await _until(lambda: _redis_answers(port), "the test's Redis to restart")
            answer = await asyncio.wait_for(join, 30)
        assert answer.status_code == 200
        assert answer.json() == {"steps": [f"{i}@1" for i in range(6)]}
        rejoined = await _read(other.url, _path(thread_id, run_id), last_event_id="-1")
        assert rejoined, "the stream could not be rejoined"
        assert _strictly_increasing([e.id for e in rejoined])
        assert rejoined[-1].event == "end"
    finally:
        await _stop(servers)
        redis.kill()
        redis.wait()
