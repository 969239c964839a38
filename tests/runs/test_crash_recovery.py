"""Crash recovery: a real `agent-runtime serve` process is killed with SIGKILL mid-run and started
again on the same database (SQLite, or Postgres with `--backend postgres`); runs resume from
their last checkpoint, a bounded number of times."""

from __future__ import annotations

import asyncio
import os
import re
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ROOT, Database, json_of

CRASH_CONFIG = ROOT / "tests" / "fixtures" / "crash" / "langgraph.json"
STEPS = ("one", "two", "three", "four")
STARTUP_TIMEOUT_SECONDS = 20.0
SETTLE_TIMEOUT_SECONDS = 20.0
POLL_SECONDS = 0.05
# The first step is quick so every run checkpoints soon; the later ones leave seconds to kill in.
STEPS_CONTEXT = {"first_delay": 0.1, "delay": 0.8}
_API_LINE = re.compile(r"API: (http://\S+)")


class ServerProcess:
    """`agent-runtime serve` as a child process, restarted on the same database."""

    def __init__(
        self,
        folder: Path,
        database: Database,
        *,
        config: Path = CRASH_CONFIG,
        args: Sequence[str] = (),
        env: Mapping[str, str] | None = None,
    ) -> None:
        """Args:
        folder: the working directory (where relative paths in the config resolve).
        database: a SQLite file or a Postgres URI (the `database` fixture's), shared by every
            server of a test.
        args: more flags for `serve` (`--redis ...`).
        env: variables set for the server beside this process's.
        """
        self.folder = folder
        self.config = config
        self.args = tuple(args)
        self.env = dict(env or {})
        self.url = ""
        self.database = database
        self.output: list[str] = []
        self._process: asyncio.subprocess.Process | None = None
        self._reader: asyncio.Task[None] | None = None
        self._client: LangGraphClient | None = None

    async def start(self) -> LangGraphClient:
        """Start the server, wait until `/ok` answers, and return a client for it."""
        self._process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "agent_runtime.cli",
            "serve",
            "--config",
            str(self.config),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--database",
            str(self.database),
            *self.args,
            cwd=self.folder,
            env={**os.environ, **self.env},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        found: asyncio.Future[str] = asyncio.get_running_loop().create_future()
        self._reader = asyncio.create_task(self._read(self._process, found))
        try:
            url = await asyncio.wait_for(found, STARTUP_TIMEOUT_SECONDS)
            await _until(lambda: _answers_ok(url), "the server to answer GET /ok")
        except BaseException:
            await self.kill()
            raise
        self.url = url
        self._client = get_client(url=url, api_key=None)
        return self._client

    async def exited(self) -> int:
        """Wait until the server ends on its own (a run killed it); return its exit code."""
        assert self._process is not None
        code = await asyncio.wait_for(self._process.wait(), SETTLE_TIMEOUT_SECONDS)
        await self.kill()
        return code

    @property
    def pid(self) -> int:
        """The id of the `serve` process (the supervisor, with `--workers`)."""
        assert self._process is not None
        return self._process.pid

    async def terminate(self, within: float = SETTLE_TIMEOUT_SECONDS) -> int:
        """SIGTERM, as an orchestrator stops a server; wait for it to exit and return its code
        (uvicorn ends a server that stopped cleanly on a signal by re-raising it: -15)."""
        assert self._process is not None
        self._process.terminate()
        code = await asyncio.wait_for(self._process.wait(), within)
        await self.kill()
        return code

    async def kill(self) -> None:
        """SIGKILL: no lifespan shutdown, no cleanup, as when the machine loses the process."""
        if self._client is not None:
            await self._client.http.client.aclose()
            self._client = None
        if self._process is not None and self._process.returncode is None:
            self._process.kill()
            await self._process.wait()
        if self._reader is not None:
            await self._reader
            self._reader = None

    async def _read(self, process: asyncio.subprocess.Process, found: asyncio.Future[str]) -> None:
        assert process.stdout is not None
        async for raw in process.stdout:
            line = raw.decode(errors="replace").rstrip()
            self.output.append(line)
            match = _API_LINE.search(line)
            if match and not found.done():
                found.set_result(match.group(1))
        if not found.done():
            log = "\n".join(self.output[-20:])
            found.set_exception(RuntimeError(f"the server exited before serving:\n{log}"))


@pytest.fixture
async def server(tmp_path: Path, database: Database) -> AsyncIterator[ServerProcess]:
    process = ServerProcess(tmp_path, database)
    try:
        yield process
    finally:
        await process.kill()


async def _answers_ok(url: str) -> bool:
    async with httpx.AsyncClient(base_url=url, timeout=2) as http:
        try:
            return (await http.get("/ok")).status_code == 200
        except httpx.TransportError:
            return False


async def _until(
    check: Callable[[], Awaitable[bool]], what: str, *, within: float = SETTLE_TIMEOUT_SECONDS
) -> None:
    try:
        async with asyncio.timeout(within):
            # Polled: the server is another process, with nothing here to be notified by.
            while True:
                if await check():
                    return
                await asyncio.sleep(POLL_SECONDS)
    except TimeoutError:
        raise TimeoutError(f"gave up after {within:.0f} s waiting for {what}") from None


async def _steps(client: LangGraphClient, thread_id: str) -> list[str]:
    values: Any = (await client.threads.get_state(thread_id))["values"]
    return list(values.get("steps", []))


async def _history(client: LangGraphClient, thread_id: str) -> list[dict[str, Any]]:
    return [dict(c) for c in await client.threads.get_history(thread_id, limit=100)]


async def _ended(client: LangGraphClient, thread_id: str, run_id: str) -> dict[str, Any]:
    async def done() -> bool:
        run = await client.runs.get(thread_id, run_id)
        return run["status"] not in ("pending", "running")

    await _until(done, f"run {run_id} to end")
    return dict(await client.runs.get(thread_id, run_id))


async def _blocked_in(client: LangGraphClient, thread_id: str, run_id: str, attempt: int) -> bool:
    run = await client.runs.get(thread_id, run_id)
    started = await _steps(client, thread_id) == ["start"]
    return (run["status"], json_of(run)["attempt"], started) == ("running", attempt, True)


def _labelled(label: str, attempts: list[int]) -> list[str]:
    return [f"{label}{name}@{attempt}" for name, attempt in zip(STEPS, attempts, strict=True)]


@pytest.mark.timeout(90)
async def test_crash_resumes_running_runs_from_their_last_checkpoint(server: ServerProcess) -> None:
    client = await server.start()
    thread_ids = [(await client.threads.create())["thread_id"] for _ in range(3)]
    running = [
        await client.runs.create(
            thread_id, "steps", input={"steps": []}, context={**STEPS_CONTEXT, "label": f"{i}:"}
        )
        for i, thread_id in enumerate(thread_ids)
    ]
    queued = await client.runs.create(
        thread_ids[0],
        "steps",
        input={"steps": []},
        context={**STEPS_CONTEXT, "label": "q:"},
        multitask_strategy="enqueue",
    )

    async def each_checkpointed_a_step() -> bool:
        return all([await _steps(client, thread_id) for thread_id in thread_ids])

    await _until(each_checkpointed_a_step, "every running run to checkpoint a step")
    before = {
        thread_id: [c["checkpoint"]["checkpoint_id"] for c in await _history(client, thread_id)]
        for thread_id in thread_ids
    }
    await server.kill()

    client = await server.start()
    resumed = []
    for i, (thread_id, run) in enumerate(zip(thread_ids, running, strict=True)):
        ended = await _ended(client, thread_id, run["run_id"])
        assert (ended["status"], ended["attempt"], ended["error"]) == ("success", 2, None)
        steps = (await _steps(client, thread_id))[: len(STEPS)]
        attempts = [int(step.rsplit("@", 1)[1]) for step in steps]
        # Each step exactly once, in order: those done before the kill were not done again,
        # and the rest were done by the second attempt.
        assert steps == _labelled(f"{i}:", attempts)
        assert attempts == sorted(attempts)
        assert (attempts[0], attempts[-1]) == (1, 2)
        resumed.append(steps)
        history = await _history(client, thread_id)
        assert set(before[thread_id]) <= {c["checkpoint"]["checkpoint_id"] for c in history}
        attempts_seen = {
            c["metadata"].get("run_attempt")
            for c in history
            if c["metadata"].get("run_id") == run["run_id"]
        }
        assert attempts_seen == {1, 2}

    ended = await _ended(client, thread_ids[0], queued["run_id"])
    assert (ended["status"], ended["attempt"], ended["error"]) == ("success", 1, None)
    assert await _steps(client, thread_ids[0]) == resumed[0] + _labelled("q:", [1, 1, 1, 1])
    for thread_id, steps in zip(thread_ids[1:], resumed[1:], strict=True):
        assert await _steps(client, thread_id) == steps
    for thread_id in thread_ids:
        assert (await client.threads.get(thread_id))["status"] == "idle"
        assert await client.runs.list(thread_id, status="running") == []
        assert await client.runs.list(thread_id, status="pending") == []


@pytest.mark.timeout(90)
async def test_run_killed_in_every_attempt_ends_in_error(server: ServerProcess) -> None:
    client = await server.start()
    thread_id = (await client.threads.create())["thread_id"]
    run_id = (await client.runs.create(thread_id, "blocking", input={"steps": []}))["run_id"]
    for attempt in (1, 2, 3):
        blocked = partial(_blocked_in, client, thread_id, run_id, attempt)
        await _until(blocked, f"attempt {attempt} to reach the blocking step")
        await server.kill()
        client = await server.start()

    ended = await _ended(client, thread_id, run_id)
    assert ended["status"] == "error"
    assert ended["error"] == (
        "RunAttemptsExhausted: The run did not finish in 3 attempts; the server stopped "
        "during each of them"
    )
    assert await client.runs.join(thread_id, run_id) == {
        "__error__": {
            "error": "RunAttemptsExhausted",
            "message": "The run did not finish in 3 attempts; the server stopped during each "
            "of them",
        }
    }
    # The retries resumed after the finished first step rather than replaying the input.
    assert await _steps(client, thread_id) == ["start"]
    assert (await client.threads.get(thread_id))["status"] == "error"
    assert await client.runs.list(thread_id, status="running") == []
    assert await client.runs.list(thread_id, status="pending") == []
