"""A run created claimed reads its thread's latest checkpoint with its creation, and its graph's
first read takes that read (`storage.primed`), on every backend: the tuple the creation saw, blobs
and pending writes included, served once, and only to the run's root read of the latest."""

from __future__ import annotations

import operator
from datetime import timedelta
from typing import Annotated, Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from langgraph.types import interrupt
from typing_extensions import TypedDict

from agent_runtime.runs.options import RunOptions
from agent_runtime.storage.base import Storage
from agent_runtime.storage.primed import PrimedReads
from agent_runtime.storage.records import Claim, NewRun, NewThread, RunOutcome
from tests.storage.sqlite.test_saver import _comparable

CLAIM = Claim(owner="p1", lease=timedelta(seconds=60))


class _State(TypedDict):
    notes: Annotated[list[str], operator.add]
    asked: str


def _graph(storage: Storage) -> Any:
    # A list channel (a blob on Postgres) and an interrupt (a pending write on the latest).
    def note(state: _State) -> dict[str, Any]:
        return {"notes": [f"note {len(state['notes'])}"]}

    def ask(state: _State) -> dict[str, Any]:
        return {"asked": str(interrupt("more?"))}

    graph = StateGraph(_State).add_sequence([("note", note), ("ask", ask)])
    graph.add_edge(START, "note")
    graph.add_edge("ask", END)
    return graph.compile(checkpointer=storage.checkpointer)


def _new(run_id: str, **options: Any) -> NewRun:
    return NewRun(
        run_id=run_id,
        thread_id="t",
        assistant_id="a",
        graph_id="g",
        options=RunOptions.from_json(options),
    )


def _run_config(run_id: str, **configurable: Any) -> RunnableConfig:
    # What a run's root graph reads with: the run's config, `checkpoint_ns` at the root.
    return {
        "configurable": {"thread_id": "t", "run_id": run_id, "checkpoint_ns": ""} | configurable
    }


def _primed(storage: Storage) -> PrimedReads:
    primed: PrimedReads = storage.checkpointer.primed  # type: ignore[attr-defined]
    return primed


async def _asked_thread(storage: Storage) -> Any:
    """Thread "t", stopped at the interrupt, and its graph."""
    await storage.create_thread(NewThread(thread_id="t", metadata={}, ttl=None), if_exists="raise")
    graph = _graph(storage)
    await graph.ainvoke({"notes": [], "asked": ""}, {"configurable": {"thread_id": "t"}})
    return graph


async def test_a_claimed_runs_first_read_is_the_one_its_creation_made(storage: Storage) -> None:
    graph = await _asked_thread(storage)
    latest: RunnableConfig = {"configurable": {"thread_id": "t"}}
    before = await storage.checkpointer.aget_tuple(latest)
    assert before is not None and before.pending_writes  # the interrupt

    created = await storage.create_run(_new("r1"), claim=CLAIM)
    assert created.run["status"] == "running"
    # Written behind storage's back (state edits refuse a busy thread): only a read made by the
    # creation can still return the checkpoint before it.
    await graph.aupdate_state(latest, {"notes": ["edited"]})

    first = await storage.checkpointer.aget_tuple(_run_config("r1"))
    again = await storage.checkpointer.aget_tuple(_run_config("r1"))

    assert _comparable(first) == _comparable(before)
    assert again is not None and again.checkpoint["id"] != before.checkpoint["id"]
    assert again.checkpoint["channel_values"]["notes"] == ["note 0", "edited"]
    assert len(_primed(storage)) == 0


async def test_a_queued_runs_claim_reads_the_latest_for_it(storage: Storage) -> None:
    graph = await _asked_thread(storage)
    latest: RunnableConfig = {"configurable": {"thread_id": "t"}}
    await storage.create_run(_new("r1"))  # queued: its creation claims nothing
    assert len(_primed(storage)) == 0
    before = await storage.checkpointer.aget_tuple(latest)

    claimed = await storage.claim_next_run("t", owner="p1", lease=CLAIM.lease)
    assert claimed is not None and claimed["run_id"] == "r1"
    await graph.aupdate_state(latest, {"notes": ["edited"]})

    assert _comparable(await storage.checkpointer.aget_tuple(_run_config("r1"))) == _comparable(
        before
    )
    assert len(_primed(storage)) == 0


async def test_a_claimed_run_from_a_past_checkpoint_keeps_no_read(storage: Storage) -> None:
    await _asked_thread(storage)
    await storage.create_run(_new("r1", checkpoint_id="x"))
    assert await storage.claim_next_run("t", owner="p1", lease=CLAIM.lease) is not None
    assert len(_primed(storage)) == 0


async def test_a_run_on_a_thread_without_checkpoints_reads_none(storage: Storage) -> None:
    await storage.create_thread(NewThread(thread_id="t", metadata={}, ttl=None), if_exists="raise")
    await storage.create_run(_new("r1"), claim=CLAIM)
    assert len(_primed(storage)) == 1

    assert await storage.checkpointer.aget_tuple(_run_config("r1")) is None
    assert len(_primed(storage)) == 0


async def test_only_the_runs_root_read_of_the_latest_takes_it(storage: Storage) -> None:
    graph = await _asked_thread(storage)
    await storage.create_run(_new("r1"), claim=CLAIM)
    await graph.aupdate_state({"configurable": {"thread_id": "t"}}, {"notes": ["edited"]})

    # Another run's read, a subgraph's and a read without a run read the database and leave it.
    plain: RunnableConfig = {"configurable": {"thread_id": "t"}}
    for config in (_run_config("r2"), _run_config("r1", checkpoint_ns="sub:1"), plain):
        found = await storage.checkpointer.aget_tuple(config)
        assert found is None or found.checkpoint["channel_values"]["notes"][-1:] == ["edited"]
    assert len(_primed(storage)) == 1
    # The run's root read of a past checkpoint is served by the database, and drops it.
    history = [
        found async for found in storage.checkpointer.alist({"configurable": {"thread_id": "t"}})
    ]
    past = history[-1].config["configurable"]["checkpoint_id"]
    found = await storage.checkpointer.aget_tuple(_run_config("r1", checkpoint_id=past))
    assert found is not None and found.checkpoint["id"] == past
    assert len(_primed(storage)) == 0


@pytest.mark.parametrize(
    "options",
    [{"checkpoint_id": "x"}, {"checkpoint": {"checkpoint_id": "x"}}],
    ids=["id", "object"],
)
async def test_a_run_from_a_past_checkpoint_reads_nothing_ahead(
    storage: Storage, options: dict[str, Any]
) -> None:
    await _asked_thread(storage)
    created = await storage.create_run(_new("r1", **options), claim=CLAIM)
    assert created.run["status"] == "running"
    assert len(_primed(storage)) == 0


async def test_a_queued_run_reads_nothing_ahead_and_an_ended_one_keeps_nothing(
    storage: Storage,
) -> None:
    await _asked_thread(storage)
    await storage.create_run(_new("r1"), claim=CLAIM)
    queued = await storage.create_run(_new("r2"), claim=CLAIM)  # behind r1: not claimed
    assert queued.run["status"] == "pending"
    assert len(_primed(storage)) == 1  # r1's
    # r1 ends without its graph having read (it failed first, say).
    await storage.finish_run("r1", RunOutcome(status="error", thread_status="error"))
    assert len(_primed(storage)) == 0


def test_reads_kept_are_bounded_oldest_first() -> None:
    primed = PrimedReads(max_entries=2)
    for run_id in ("r1", "r2", "r3"):
        primed.put(run_id, "t", None)
    assert len(primed) == 2
    assert primed.take(_run_config("r1")) is None
    taken = primed.take(_run_config("r3"))
    assert taken is not None and taken.thread_id == "t"
    assert primed.take({"configurable": {"thread_id": "other", "run_id": "r2"}}) is None
    assert len(primed) == 0  # r2's, dropped by a read of another thread
