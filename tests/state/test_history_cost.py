"""What reading a thread costs does not grow with the thread: history pages and state on a
3,000-checkpoint thread cost what they cost on a 10-checkpoint one, the checkpoint tree of the
long thread answers in well under a second, and a history reader left paused mid-read does not
hold up a run's checkpoint writes."""

from __future__ import annotations

import asyncio
import importlib.util
import statistics
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import aiosqlite
import httpx
import pytest
from langgraph.checkpoint.base import BaseCheckpointSaver, CheckpointTuple
from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ROOT, RunningServer

GRAPHS = ROOT / "graphs"
# The long thread ends one update short of a delta snapshot of its message list, so its reads
# replay the most writes they ever have to.
LONG = 1_500
SHORT = 10
KEPT = 10
"""Messages in either thread's state: the long thread replaces them in turn, so both states are
the same size and only the number of checkpoints differs."""
REPEAT = 9
COST_FACTOR = 3.0
TREE_SECONDS = 1.0
RUN_SECONDS = 5.0
BLOCKED_SECONDS = 1.5
LONG_TEST_TIMEOUT = 120
# The long thread is written straight into the SQLite file the server reads.
pytestmark = pytest.mark.sqlite_only


async def _build(database: Path, thread_id: str, graph: Any, updates: int) -> None:
    # Written through the graph, on a second connection to the server's file so the server
    # reads exactly what a run would have left; synchronous=OFF only to build faster.
    async with aiosqlite.connect(database) as conn:
        await conn.execute("PRAGMA journal_mode=WAL")
        await conn.execute("PRAGMA synchronous=OFF")
        saver = AsyncSqliteSaver(conn)
        bound = graph.copy(update={"checkpointer": saver})
        config = {"configurable": {"thread_id": thread_id}}
        for number in range(updates):
            message = {"role": "user", "content": f"note {number}", "id": f"m{number % KEPT}"}
            await bound.aupdate_state(config, {"messages": [message]}, as_node="model")


async def _thread(
    server: RunningServer, client: LangGraphClient, database: Path, updates: int
) -> str:
    thread_id: str = (await client.threads.create(metadata={"graph_id": "chat"}))["thread_id"]
    graph = await server.services().registry.get_graph("chat")
    await _build(database, thread_id, graph, updates)
    return thread_id


async def _median_seconds(call: Callable[[], Awaitable[httpx.Response]]) -> float:
    await call()  # warm up
    times = []
    for _ in range(REPEAT):
        start = time.perf_counter()
        response = await call()
        times.append(time.perf_counter() - start)
        assert response.status_code == 200
    return statistics.median(times)


@pytest.mark.timeout(LONG_TEST_TIMEOUT)
async def test_reads_of_a_long_thread_cost_what_they_cost_on_a_short_one(
    server: RunningServer, client: LangGraphClient, http: httpx.AsyncClient, database: Path
) -> None:
    short = await _thread(server, client, database, SHORT)
    long = await _thread(server, client, database, LONG)
    history = await http.get(f"/threads/{long}/history", params={"limit": 10})
    assert [len(s["values"]["messages"]) for s in history.json()] == [KEPT] * 10
    assert await _replayed_writes(server, long) == _snapshot_frequency() - 1

    costs: dict[str, dict[str, float]] = {}
    for name, thread_id in (("short", short), ("long", long)):
        costs[name] = {
            "history": await _median_seconds(
                partial(http.get, f"/threads/{thread_id}/history", params={"limit": 10})
            ),
            "state": await _median_seconds(partial(http.get, f"/threads/{thread_id}/state")),
        }
    tree_seconds = await _median_seconds(lambda: http.get(f"/threads/{long}/tree"))
    tree = (await http.get(f"/threads/{long}/tree")).json()
    for endpoint in ("history", "state"):
        ratio = costs["long"][endpoint] / costs["short"][endpoint]
        print(
            f"{endpoint}: {costs['short'][endpoint] * 1000:.1f} ms on {SHORT} checkpoints, "
            f"{costs['long'][endpoint] * 1000:.1f} ms on {LONG} ({ratio:.2f}x)"
        )
    print(f"tree: {len(tree)} checkpoints in {tree_seconds * 1000:.0f} ms")

    for endpoint in ("history", "state"):
        ratio = costs["long"][endpoint] / costs["short"][endpoint]
        assert ratio < COST_FACTOR, f"{endpoint} costs {ratio:.2f}x more on the long thread"
    assert len(tree) == LONG
    assert [n["parent_checkpoint_id"] for n in tree[1:]] == [n["checkpoint_id"] for n in tree[:-1]]
    assert tree_seconds < TREE_SECONDS


def _snapshot_frequency() -> int:
    spec = importlib.util.spec_from_file_location("history_cost_state", GRAPHS / "state.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    frequency: int = module.SNAPSHOT_FREQUENCY
    return frequency


async def _replayed_writes(server: RunningServer, thread_id: str) -> int:
    saver = server.services().storage.read_checkpointer
    head = await saver.aget_tuple({"configurable": {"thread_id": thread_id, "checkpoint_ns": ""}})
    assert head is not None
    history = await saver.aget_delta_channel_history(config=head.config, channels=["messages"])
    return len(history["messages"]["writes"])


async def _paused_reader(
    saver: BaseCheckpointSaver[str], thread_id: str
) -> AsyncGenerator[CheckpointTuple, None]:
    # The caller pulls one checkpoint and then stops consuming: upstream's alist keeps the
    # saver's lock (and a cursor) until the iterator is finished or closed.
    reader = saver.alist({"configurable": {"thread_id": thread_id}})
    assert isinstance(reader, AsyncGenerator)
    first: CheckpointTuple = await reader.__anext__()
    assert first.checkpoint["id"]
    return reader


async def _turn(client: LangGraphClient, thread_id: str) -> Any:
    turn: dict[str, Any] = {"messages": [{"role": "user", "content": "still there?"}]}
    return await client.runs.wait(thread_id, "chat", input=turn)


async def test_paused_history_reader_does_not_delay_a_run(
    server: RunningServer, client: LangGraphClient
) -> None:
    thread_id = (await client.threads.create())["thread_id"]
    await _turn(client, thread_id)
    storage = server.services().storage
    reader = await _paused_reader(storage.read_checkpointer, thread_id)
    try:
        start = time.perf_counter()
        values = await asyncio.wait_for(_turn(client, thread_id), RUN_SECONDS)
        elapsed = time.perf_counter() - start
    finally:
        await reader.aclose()
    assert len(values["messages"]) == 4
    print(f"run beside a paused history reader: {elapsed * 1000:.0f} ms")


async def test_paused_reader_on_the_writing_saver_would_delay_a_run(
    server: RunningServer, client: LangGraphClient
) -> None:
    # The control for the test above: the same paused read, but on the saver the runs write
    # through, which is what reading history through upstream's saver would do.
    thread_id = (await client.threads.create())["thread_id"]
    await _turn(client, thread_id)
    storage = server.services().storage
    reader = await _paused_reader(storage.checkpointer, thread_id)
    turn = asyncio.create_task(_turn(client, thread_id))
    try:
        done, _ = await asyncio.wait({turn}, timeout=BLOCKED_SECONDS)
        assert not done, "the run finished although the saver it writes through was held"
    finally:
        await reader.aclose()
    values = await asyncio.wait_for(turn, RUN_SECONDS)
    assert len(values["messages"]) == 4
