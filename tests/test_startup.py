"""A start-up that fails exits: one line naming the problem, a non-zero status within 2 s of it,
and the database file as it was. Runs the real CLI, `serve` and `dev` with reload. One that
succeeds freezes what it built (`freeze_startup_heap`)."""

from __future__ import annotations

import contextlib
import gc
import hashlib
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from starlette.applications import Starlette
from starlette.types import Message

from agent_runtime.startup import STARTUP_FAILED, StartupReport
from agent_runtime.storage.sqlite.schema import MIGRATIONS
from tests.test_cli import ECHO, _environ

GRAPH = (ECHO / "graph.py").read_text()
COMMANDS = [("serve",), ("dev", "--no-browser")]
OVERALL_TIMEOUT_SECONDS = 60


def _project(folder: Path, source: str = GRAPH, spec: str = "graph", **data: object) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "agent.py").write_text(source)
    config = folder / "langgraph.json"
    config.write_text(json.dumps({"graphs": {"agent": f"./agent.py:{spec}"}, **data}))
    return config


def _older_database(path: Path) -> None:
    # A file an older release wrote: opening it at all would migrate it, changing its bytes.
    conn = sqlite3.connect(path)
    conn.executescript(MIGRATIONS[0])
    conn.execute("PRAGMA user_version = 1")
    conn.commit()
    conn.close()


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _start_failure(command: tuple[str, ...], config: Path, database: Path) -> list[str]:
    """Run the CLI until it exits; its stderr lines that are ours, after checking it exited
    with the start-up status within 2 s of saying why."""
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "agent_runtime.cli", *command),
            *("--config", str(config), "--port", "0", "--database", str(database)),
            # On loopback, so `serve` has no exposure warning to print before the failure.
            *("--host", "127.0.0.1"),
        ],
        cwd=config.parent,
        env=_environ(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    # Generous: importing LangGraph takes a while on a loaded machine.
    watchdog = threading.Timer(OVERALL_TIMEOUT_SECONDS, process.kill)
    watchdog.start()
    said_at = None
    lines = []
    try:
        assert process.stderr is not None
        for line in process.stderr:
            lines.append(line.rstrip("\n"))
            if line.startswith("agent-runtime: ") and said_at is None:
                said_at = time.monotonic()
        returncode = process.wait()
        exited_at = time.monotonic()
    finally:
        watchdog.cancel()
        process.stderr.close()  # type: ignore[union-attr]
    text = "\n".join(lines)
    assert returncode == STARTUP_FAILED, text
    assert said_at is not None, text
    assert exited_at - said_at < 2, text
    assert "Traceback" not in text
    return [line for line in lines if line.startswith("agent-runtime: ")]


Setup = Callable[[Path], tuple[Path, Path, str]]
"""Makes a failing project in a folder: its config, its database, the line expected."""


def _corrupt_file(folder: Path) -> tuple[Path, Path, str]:
    database = folder / "runtime.sqlite"
    database.write_bytes(os.urandom(16384))
    return (
        _project(folder),
        database,
        f"Cannot open the database {database}: file is not a database",
    )


def _newer_release(folder: Path) -> tuple[Path, Path, str]:
    database = folder / "runtime.sqlite"
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE later (x)")
    conn.execute("PRAGMA user_version = 99")
    conn.commit()
    conn.close()
    return (
        _project(folder),
        database,
        f"Cannot open the database {database}: its schema version is 99, newer than this "
        f"release of agent-runtime knows ({len(MIGRATIONS)}); upgrade agent-runtime, or use "
        "another database file",
    )


def _conflicting_table(folder: Path) -> tuple[Path, Path, str]:
    database = folder / "runtime.sqlite"
    conn = sqlite3.connect(database)
    conn.execute("CREATE TABLE runs (id INTEGER PRIMARY KEY)")
    conn.commit()
    conn.close()
    return (
        _project(folder),
        database,
        f"Cannot open the database {database}: bringing its tables to schema version 1 failed: "
        "no such column: thread_id; is it another program's database? Use another database file",
    )


def _store_index(folder: Path) -> tuple[Path, Path, str]:
    database = folder / "runtime.sqlite"
    _older_database(database)
    index = {"dims": 3, "embed": "openai:text-embedding-3-small"}
    return (
        _project(folder, store={"index": index}),
        database,
        'langgraph.json: store.index.embed: "openai:text-embedding-3-small" names a provider\'s '
        "model, which needs the langchain",
    )


def _raising_factory(folder: Path) -> tuple[Path, Path, str]:
    database = folder / "runtime.sqlite"
    _older_database(database)
    source = GRAPH + "\n\ndef make_graph(config):\n    raise RuntimeError('no model configured')\n"
    return (
        _project(folder, source, spec="make_graph"),
        database,
        'Graph "agent": factory ./agent.py:make_graph raised RuntimeError: no model configured',
    )


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
@pytest.mark.parametrize(
    "setup",
    [_corrupt_file, _newer_release, _conflicting_table, _store_index, _raising_factory],
    ids=lambda setup: setup.__name__.strip("_"),
)
def test_a_failed_start_exits_and_leaves_the_database_untouched(
    tmp_path: Path, command: tuple[str, ...], setup: Setup
) -> None:
    config, database, expected = setup(tmp_path)
    before = _digest(database)

    lines = _start_failure(command, config, database)

    assert len(lines) == 1
    assert lines[0].startswith(f"agent-runtime: {expected}")
    assert _digest(database) == before


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_a_database_path_that_is_a_folder_fails_start(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    # Unreadable, as root sees it: chmod does not stop root from reading a file.
    database = tmp_path / "runtime.sqlite"
    database.mkdir()

    lines = _start_failure(command, _project(tmp_path), database)

    assert lines == [
        f"agent-runtime: Cannot open the database {database}: it is a folder; pass a file path "
        "(--database or AGENT_RUNTIME_DATABASE)"
    ]
    assert list(database.iterdir()) == []


@pytest.mark.skipif(
    os.name != "posix" or os.geteuid() == 0, reason="root reads files whatever their mode"
)
def test_an_unreadable_database_fails_start(tmp_path: Path) -> None:
    database = tmp_path / "runtime.sqlite"
    _older_database(database)
    database.chmod(0)
    try:
        lines = _start_failure(("serve",), _project(tmp_path), database)
    finally:
        database.chmod(0o600)

    assert lines == [
        f"agent-runtime: Cannot open the database {database}: unable to open database file"
    ]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: command[0])
def test_an_unreachable_redis_fails_start_without_showing_its_password(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]  # closed again: nothing listens there
    uri = f"redis://:hunter2@127.0.0.1:{port}/0"
    database = tmp_path / "runtime.sqlite"
    config = _project(tmp_path, agent_runtime={"redis": uri})

    lines = _start_failure(command, config, database)

    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"agent-runtime: Cannot reach Redis at redis://:***@127.0.0.1:{port}/0: "
    )
    assert lines[0].endswith("; start it, or point --redis (or REDIS_URI) at a running one")
    assert "hunter2" not in lines[0]
    assert not database.exists()  # Redis is reached before the database is opened


async def _lifespan(app: StartupReport) -> list[str]:
    """Run the app's lifespan as uvicorn does, start-up then shut-down; what it answered."""
    incoming: list[Message] = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[str] = []

    async def receive() -> Message:
        return incoming.pop(0)

    async def send(message: Message) -> None:
        sent.append(message["type"])

    with contextlib.suppress(RuntimeError):  # a failed start-up's, once reported
        await app({"type": "lifespan"}, receive, send)
    return sent


def _app(*, fail: bool) -> StartupReport:
    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        if fail:
            raise RuntimeError("no model configured")
        yield

    return StartupReport(Starlette(lifespan=lifespan), lambda line: None)


async def test_a_started_server_freezes_what_start_up_built() -> None:
    assert gc.get_freeze_count() == 0
    try:
        sent = await _lifespan(_app(fail=False))
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()

    assert sent == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    # Every object alive and tracked at start-up: the modules alone are tens of thousands.
    assert frozen > 10_000


async def test_a_failed_start_freezes_nothing() -> None:
    try:
        sent = await _lifespan(_app(fail=True))
        frozen = gc.get_freeze_count()
    finally:
        gc.unfreeze()

    assert sent == ["lifespan.startup.failed"]
    assert frozen == 0
