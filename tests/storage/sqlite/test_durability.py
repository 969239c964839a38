"""How durably SQLite commits: `synchronous=FULL` by default, `normal` when configured
(`agent_runtime.sqlite_synchronous`), on every connection that writes."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import pytest

from agent_runtime.config import config_from_dict
from agent_runtime.errors import ConfigError
from agent_runtime.storage.records import Claim, NewRun, NewThread
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.storage.sqlite.writer import synchronous_pragma
from tests.conftest import ROOT, RunningServer

FULL, NORMAL = 2, 1  # what `PRAGMA synchronous` reads back


async def _level(conn: aiosqlite.Connection) -> int:
    rows = list(await conn.execute_fetchall("PRAGMA synchronous"))
    return int(rows[0][0])


async def _levels(storage: SqliteStorage) -> list[int]:
    # The checkpointer shares our writer; the store writes on a connection of its own.
    saver: Any = storage.checkpointer
    store: Any = storage.store
    return [await _level(saver.conn), await _level(store.conn)]


async def test_commits_are_full_by_default(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "db.sqlite")
    await storage.setup()
    try:
        assert await _levels(storage) == [FULL, FULL]
    finally:
        await storage.close()


async def test_normal_is_a_setting(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "db.sqlite", synchronous="normal")
    await storage.setup()
    try:
        assert await _levels(storage) == [NORMAL, NORMAL]
    finally:
        await storage.close()


def _config(tmp_path: Path, own: dict[str, Any]) -> Any:
    data = {"graphs": {"chat": "./graphs/chat.py:graph"}, "agent_runtime": own}
    return config_from_dict(data, base_dir=ROOT, database=tmp_path / "db.sqlite", environ={})


async def test_server_commits_as_configured(tmp_path: Path) -> None:
    assert _config(tmp_path, {}).sqlite_synchronous == "full"
    server = await RunningServer(_config(tmp_path, {"sqlite_synchronous": "normal"})).start()
    try:
        storage = server.services().storage
        assert isinstance(storage, SqliteStorage)
        assert await _levels(storage) == [NORMAL, NORMAL]
    finally:
        await server.stop()


def test_sqlite_synchronous_takes_two_values(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, {"sqlite_synchronous": "OFF"})
    assert caught.value.detail == (
        'langgraph.json: agent_runtime.sqlite_synchronous: expected "full" or "normal", got "OFF"'
    )
    with pytest.raises(ValueError, match='synchronous must be "full" or "normal"'):
        synchronous_pragma("off")  # type: ignore[arg-type]


async def test_a_claim_skips_the_disk_wait_and_leaves_commits_full(tmp_path: Path) -> None:
    # A claim lost to a power cut leaves its run pending, as recovery would: its commit need
    # not wait for the disk. Every commit after it must again.
    storage = SqliteStorage(tmp_path / "db.sqlite")
    await storage.setup()
    try:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        await storage.create_run(NewRun(run_id="r", thread_id="t", assistant_id="a", graph_id="g"))
        saver: Any = storage.checkpointer
        statements: list[str] = []
        await saver.conn.set_trace_callback(statements.append)
        claimed = await storage.claim_next_run("t", owner="me")
        await saver.conn.set_trace_callback(None)
        assert claimed is not None and claimed["status"] == "running"
        assert [" ".join(s.split()[:2]) for s in statements] == [
            "PRAGMA synchronous=NORMAL",
            "BEGIN IMMEDIATE",
            "UPDATE runs",
            "SELECT thread_id,",  # the thread's latest checkpoint, for the run (storage.primed)
            "COMMIT",
            "PRAGMA synchronous=FULL",
        ]
        assert await _levels(storage) == [FULL, FULL]
    finally:
        await storage.close()


@pytest.mark.parametrize("durable", [True, False])
async def test_a_run_created_attended_commits_without_waiting_for_the_disk(
    tmp_path: Path, durable: bool
) -> None:
    # `Claim.durable=False` (a stream or a wait creates the run): that one commit is NORMAL,
    # and the writer is FULL again for the checkpoints that follow.
    storage = SqliteStorage(tmp_path / "db.sqlite")
    await storage.setup()
    saver: Any = storage.checkpointer
    statements: list[str] = []
    try:
        await storage.create_thread(NewThread(thread_id="t"), if_exists="raise")
        await saver.conn.set_trace_callback(statements.append)
        claim = Claim(owner="p1", lease=timedelta(seconds=60), durable=durable)
        new = NewRun(run_id="r1", thread_id="t", assistant_id="a", graph_id="g")
        created = await storage.create_run(new, claim=claim)
        assert created.run["status"] == "running"
        pragmas = [s for s in statements if s.startswith("PRAGMA synchronous")]
        if durable:
            assert pragmas == []
        else:
            assert pragmas == [synchronous_pragma("normal"), synchronous_pragma("full")]
            assert statements.index("COMMIT") < statements.index(synchronous_pragma("full"))
        assert await _levels(storage) == [FULL, FULL]
    finally:
        await storage.close()


async def test_streams_and_waits_create_attended_runs_and_background_runs_durably(
    tmp_path: Path,
) -> None:
    # Through the HTTP API: the creating commit of `runs.stream` and `runs.wait` (threaded and
    # stateless) skips the disk wait; `runs.create` keeps it.
    server = await RunningServer(_config(tmp_path, {})).start()
    try:
        storage = server.services().storage
        assert isinstance(storage, SqliteStorage)
        saver: Any = storage.checkpointer
        statements: list[str] = []
        body = {"assistant_id": "chat", "input": {"messages": [{"role": "user", "content": "hi"}]}}
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:

            async def create(method: str, path: str) -> tuple[bool, bool]:
                # Whether the trip that inserts the run switched to NORMAL before its BEGIN
                # (a relaxed create), and whether, by the time the response came, the disk
                # had every durable commit up to the create's (the one after those before the
                # request; `GroupCommit` numbers them).
                group = saver.group_commit
                assert group is not None
                before = group.commits
                statements.clear()
                await saver.conn.set_trace_callback(statements.append)
                try:
                    response = await http.request(method, path, json=body)
                    assert response.status_code == 200, response.text
                    synced = group.synced >= before + 1
                finally:
                    await saver.conn.set_trace_callback(None)
                if path.endswith("/runs"):
                    run = response.json()
                    joined = await http.get(
                        f"/threads/{run['thread_id']}/runs/{run['run_id']}/join"
                    )
                    assert joined.status_code == 200, joined.text
                insert = next(
                    i for i, s in enumerate(statements) if s.startswith("INSERT INTO runs")
                )
                begin = max(i for i in range(insert) if statements[i] == "BEGIN IMMEDIATE")
                return begin > 0 and statements[begin - 1] == synchronous_pragma("normal"), synced

            async def new_thread() -> str:
                thread_id: str = (await http.post("/threads", json={})).json()["thread_id"]
                return thread_id

            for path in (
                f"/threads/{await new_thread()}/runs/wait",
                f"/threads/{await new_thread()}/runs/stream",
                "/runs/wait",
                "/runs/stream",
            ):
                relaxed, _ = await create("POST", path)
                assert relaxed, path
            # A background run's create is on disk before its response: committed FULL, or
            # (the writer busy) in a group whose sync the response waited for, never relaxed.
            for path in (f"/threads/{await new_thread()}/runs", "/runs"):
                _, synced = await create("POST", path)
                assert synced, path
        assert await _levels(storage) == [FULL, FULL]
    finally:
        await server.stop()
