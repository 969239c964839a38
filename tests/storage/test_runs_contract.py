"""The runs part of the storage contract: the per-thread queue, multitask strategies, the thread
status runs imply, and rollback of a run's checkpoints."""

from __future__ import annotations

import sqlite3
from datetime import timedelta, timezone
from typing import Any

import pytest
from langchain_core.runnables import RunnableConfig
from langgraph.graph import END, START, StateGraph
from typing_extensions import TypedDict

from agent_runtime.clock import FakeClock
from agent_runtime.errors import ConflictError, NotFoundError
from agent_runtime.runs.options import RunOptions
from agent_runtime.schema import Interrupt, MultitaskStrategy, Run
from agent_runtime.storage.base import Storage
from agent_runtime.storage.records import (
    AssistantChangedError,
    AssistantPatch,
    AssistantStamp,
    Claim,
    NewAssistant,
    NewRun,
    NewThread,
    RunOutcome,
    ThreadQuery,
)
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.usage import add_usage, model_usage, summarize


class _Counter(TypedDict):
    n: int


def _increment(state: _Counter) -> dict[str, int]:
    return {"n": state["n"] + 1}


def _counter_graph(storage: Storage) -> Any:
    # A subgraph too, so rollback is seen to reach checkpoints in nested namespaces.
    inner = StateGraph(_Counter)
    inner.add_node("inc", _increment)
    inner.add_edge(START, "inc")
    inner.add_edge("inc", END)
    outer = StateGraph(_Counter)
    outer.add_node("inc", _increment)
    outer.add_node("sub", inner.compile())
    outer.add_edge(START, "inc")
    outer.add_edge("inc", "sub")
    outer.add_edge("sub", END)
    return outer.compile(checkpointer=storage.checkpointer)


def _new(run_id: str, thread_id: str = "t", **fields: Any) -> NewRun:
    return NewRun(run_id=run_id, thread_id=thread_id, assistant_id="a", graph_id="g", **fields)


async def _thread(storage: Storage, thread_id: str = "t", **metadata: Any) -> None:
    await storage.create_thread(
        NewThread(thread_id=thread_id, metadata=metadata, ttl=None), if_exists="raise"
    )


async def _checkpoints_of(storage: Storage, thread_id: str, run_id: str) -> list[tuple[str, str]]:
    # Without a checkpoint_ns the saver lists every namespace, subgraphs included.
    config: RunnableConfig = {"configurable": {"thread_id": thread_id}}
    found = storage.checkpointer.alist(config, filter={"run_id": run_id})
    return [
        (c.config["configurable"]["checkpoint_ns"], c.config["configurable"]["checkpoint_id"])
        async for c in found
    ]


async def test_create_run_queues_pending_run_and_marks_thread_busy(storage: Storage) -> None:
    await _thread(storage, user="u")
    before = await storage.get_thread("t")
    run, active, _ = await storage.create_run(
        _new("r1", metadata={"m": 1}, options=RunOptions(input={"n": 0}))
    )
    assert active == []
    assert run == {
        "run_id": "r1",
        "thread_id": "t",
        "assistant_id": "a",
        "created_at": run["created_at"],
        "updated_at": run["created_at"],
        "status": "pending",
        "metadata": {"m": 1},
        "multitask_strategy": "enqueue",
        "kwargs": {"input": {"n": 0}, "stream_mode": ["values"], "stateless": False},
        "attempt": 0,
        "error": None,
        "usage": None,
    }
    assert await storage.get_run("t", "r1") == run
    assert await storage.find_run("r1") == run
    assert await storage.find_runs(["r1", "nope"]) == {"r1": run}
    assert await storage.find_runs([]) == {}
    thread = await storage.get_thread("t")
    assert thread["status"] == "busy"
    assert thread["metadata"] == {"user": "u", "graph_id": "g", "assistant_id": "a"}
    assert thread["updated_at"] > before["updated_at"]


async def test_create_run_on_unknown_thread_is_not_found(storage: Storage) -> None:
    with pytest.raises(NotFoundError) as caught:
        await storage.create_run(_new("r1", thread_id="nope"))
    assert caught.value.detail == 'Thread "nope" not found'
    assert caught.value.code == "thread_not_found"
    with pytest.raises(NotFoundError):
        await storage.get_thread("nope")
    with pytest.raises(NotFoundError):
        await storage.find_run("r1")


async def test_create_run_if_not_exists_creates_the_thread(storage: Storage) -> None:
    run, _, _ = await storage.create_run(
        _new("r1", thread_id="fresh", if_not_exists="create", thread_metadata={"k": "v"})
    )
    thread = await storage.get_thread("fresh")
    assert thread["status"] == "busy"
    assert thread["metadata"] == {"k": "v", "graph_id": "g", "assistant_id": "a"}
    assert thread["values"] is None
    assert [r["run_id"] for r in await storage.list_runs("fresh", **_all_runs())] == ["r1"]
    await storage.create_run(_new("r2", thread_id="bare", if_not_exists="create"))
    bare = await storage.get_thread("bare")
    assert bare["metadata"] == {"graph_id": "g", "assistant_id": "a"}
    assert run["thread_id"] == "fresh"


async def test_create_run_reject_refuses_while_a_run_is_active(
    storage: Storage, clock: FakeClock
) -> None:
    await _thread(storage)
    later = clock.wall + timedelta(minutes=1)
    _, active, _ = await storage.create_run(
        _new("delayed", multitask_strategy="reject", not_before=later)
    )
    assert active == []
    await storage.create_run(_new("first"))
    await storage.claim_next_run("t")
    with pytest.raises(ConflictError) as caught:
        await storage.create_run(_new("second", multitask_strategy="reject"))
    # The running run is named, not the older one merely waiting for its time.
    assert caught.value.detail == (
        'Thread "t" is busy with run "first"; multitask_strategy="reject" refuses a second run'
    )
    assert caught.value.code == "thread_busy"
    with pytest.raises(NotFoundError):
        await storage.find_run("second")

    await storage.finish_run("first", RunOutcome(status="success"))
    with pytest.raises(ConflictError, match='busy with run "delayed"'):
        await storage.create_run(_new("third", multitask_strategy="reject"))
    await storage.delete_run("t", "delayed", checkpoints=False)
    run, active, _ = await storage.create_run(_new("fourth", multitask_strategy="reject"))
    assert run["status"] == "pending" and active == []


@pytest.mark.parametrize("strategy", ["interrupt", "rollback"])
async def test_create_run_interrupt_and_rollback_return_the_active_runs(
    storage: Storage, strategy: MultitaskStrategy
) -> None:
    await _thread(storage)
    for run_id in ("done", "current", "queued"):
        await storage.create_run(_new(run_id))
    await storage.claim_next_run("t")
    await storage.finish_run("done", RunOutcome(status="success"))
    await storage.claim_next_run("t")
    run, active, _ = await storage.create_run(_new("new", multitask_strategy=strategy))
    assert [(r["run_id"], r["status"]) for r in active] == [
        ("current", "running"),
        ("queued", "pending"),
    ]
    assert run["status"] == "pending" and run["multitask_strategy"] == strategy
    # Cancelling them is the caller's job: storage leaves them as they were.
    assert (await storage.get_run("t", "current"))["status"] == "running"
    assert (await storage.get_thread("t"))["status"] == "busy"


async def test_create_run_enqueue_returns_no_runs_to_cancel(storage: Storage) -> None:
    await _thread(storage)
    await storage.create_run(_new("r1"))
    await storage.claim_next_run("t")
    run, active, _ = await storage.create_run(_new("r2", multitask_strategy="enqueue"))
    assert active == [] and run["status"] == "pending"
    assert [r["run_id"] for r in await storage.list_runs("t", **_all_runs())] == ["r2", "r1"]


async def test_create_run_with_a_taken_id_conflicts(storage: Storage) -> None:
    await _thread(storage)
    await _thread(storage, "other")
    await storage.create_run(_new("r1"))
    with pytest.raises(ConflictError) as caught:
        await storage.create_run(_new("r1", thread_id="other"))
    assert caught.value.detail == 'Run "r1" already exists; choose a new run_id'
    assert caught.value.code == "run_exists"
    assert (await storage.get_thread("other"))["status"] == "idle"


async def test_get_run_and_find_run_name_what_is_missing(storage: Storage) -> None:
    await _thread(storage)
    await _thread(storage, "other")
    await storage.create_run(_new("r1"))
    with pytest.raises(NotFoundError) as on_thread:
        await storage.get_run("other", "r1")
    assert on_thread.value.detail == 'Run "r1" not found on thread "other"'
    assert on_thread.value.code == "run_not_found"
    with pytest.raises(NotFoundError) as anywhere:
        await storage.find_run("nope")
    assert anywhere.value.detail == 'Run "nope" not found'
    assert anywhere.value.code == "run_not_found"


async def test_list_runs_newest_first_with_status_limit_and_offset(
    storage: Storage, clock: FakeClock
) -> None:
    await _thread(storage)
    for run_id in ("r1", "r2", "r3", "r4"):
        await storage.create_run(_new(run_id))
    await storage.claim_next_run("t")
    await storage.finish_run("r1", RunOutcome(status="success"))
    listed = await storage.list_runs("t", **_all_runs())
    assert [r["run_id"] for r in listed] == ["r4", "r3", "r2", "r1"]
    page = await storage.list_runs("t", limit=2, offset=1, status=None)
    assert [r["run_id"] for r in page] == ["r3", "r2"]
    pending = await storage.list_runs("t", limit=10, offset=0, status="pending")
    assert [r["run_id"] for r in pending] == ["r4", "r3", "r2"]
    assert await storage.list_runs("t", limit=10, offset=0, status="error") == []

    # Runs created in the same instant come newest-id first.
    await _thread(storage, "tie")
    for run_id in ("b", "a", "c"):
        clock.set(clock.wall - timedelta(milliseconds=1))
        await storage.create_run(_new(run_id, thread_id="tie"))
    tied = await storage.list_runs("tie", **_all_runs())
    assert [r["run_id"] for r in tied] == ["c", "b", "a"]
    assert len({r["created_at"] for r in tied}) == 1

    with pytest.raises(NotFoundError) as caught:
        await storage.list_runs("nope", **_all_runs())
    assert caught.value.detail == 'Thread "nope" not found'
    assert caught.value.code == "thread_not_found"


async def test_claim_next_run_is_fifo_and_one_at_a_time(storage: Storage) -> None:
    await _thread(storage)
    assert await storage.claim_next_run("t") is None
    first, _, _ = await storage.create_run(_new("r1"))
    await storage.create_run(_new("r2"))
    claimed = await storage.claim_next_run("t")
    assert claimed is not None
    assert claimed["run_id"] == "r1" and claimed["status"] == "running"
    assert claimed["attempt"] == 1
    assert claimed["updated_at"] > first["updated_at"]
    assert await storage.get_run("t", "r1") == claimed
    assert await storage.claim_next_run("t") is None
    await storage.finish_run("r1", RunOutcome(status="success"))
    second = await storage.claim_next_run("t")
    assert second is not None and second["run_id"] == "r2"
    assert await storage.claim_next_run("unknown") is None


async def test_claim_next_run_waits_for_not_before(storage: Storage, clock: FakeClock) -> None:
    await _thread(storage)
    assert await storage.next_due_time("t") is None
    # Given in another zone on purpose: due times compare as instants, not as text.
    later = (clock.wall + timedelta(seconds=10)).astimezone(timezone(timedelta(hours=-5)))
    await storage.create_run(_new("delayed", not_before=later))
    assert await storage.claim_next_run("t") is None
    assert await storage.next_due_time("t") == later
    clock.advance(timedelta(seconds=5))
    assert await storage.claim_next_run("t") is None
    # A run without a delay is due at once and may overtake the delayed one.
    undelayed, _, _ = await storage.create_run(_new("now"))
    assert await storage.next_due_time("t") == undelayed["created_at"]
    overtaking = await storage.claim_next_run("t")
    assert overtaking is not None and overtaking["run_id"] == "now"
    finished = await storage.finish_run("now", RunOutcome(status="success"))
    assert finished is not None and finished.next_due == later  # the delayed one's time
    assert await storage.claim_next_run("t") is None
    assert await storage.next_due_time("t") == later
    clock.advance(timedelta(seconds=5))
    due = await storage.claim_next_run("t")
    assert due is not None and due["run_id"] == "delayed"
    assert await storage.next_due_time("t") is None


async def test_create_run_with_a_claim_claims_it_as_claim_next_run_would(
    storage: Storage, clock: FakeClock
) -> None:
    # "now" is created claimed; "then" is created pending and claimed, by the same owner.
    await _thread(storage, "now")
    await _thread(storage, "then")
    lease = timedelta(seconds=60)
    claim = Claim(owner="p1", lease=lease)
    created, active, _ = await storage.create_run(_new("r-now", "now"), claim=claim)
    assert active == []
    await storage.create_run(_new("r-then", "then"))
    claimed = await storage.claim_next_run("then", owner="p1", lease=lease)
    assert claimed is not None
    ids = ("run_id", "thread_id", "created_at", "updated_at")
    assert {k: v for k, v in created.items() if k not in ids} == {
        k: v for k, v in claimed.items() if k not in ids
    }
    assert created["status"] == "running" and created["attempt"] == 1
    assert created["updated_at"] == created["created_at"]
    assert await storage.get_run("now", "r-now") == created
    assert (await storage.get_thread("now", values=False))["status"] == "busy"
    # Held by its owner as a claim is: nothing more to claim, nothing ready elsewhere.
    assert await storage.claim_next_run("now", owner="p2", lease=lease) is None
    assert "now" not in await storage.ready_threads(10)
    assert await storage.renew_leases("p1", ["r-now", "r-then"], lease) == ["r-now", "r-then"]
    assert await storage.renew_leases("p2", ["r-now"], lease) == []
    assert await storage.request_cancel("r-now", "interrupt")
    assert await storage.cancel_requests("p1") == {"r-now": "interrupt"}
    # Its lease lapses like a claim's, and its progress mark blames it like a claim's.
    clock.advance(timedelta(seconds=59))
    assert await storage.reap_expired_leases() == []
    clock.advance(lease)
    assert await storage.reap_expired_leases() == ["now", "then"]
    assert await storage.charged_attempts("r-now") == await storage.charged_attempts("r-then")
    again = await storage.claim_next_run("now", owner="p2", lease=lease)
    assert again is not None and again["run_id"] == "r-now" and again["attempt"] == 2


async def test_create_run_with_a_claim_queues_it_pending_behind_other_work(
    storage: Storage,
) -> None:
    await _thread(storage)
    claim = Claim(owner="p1", lease=timedelta(seconds=60))
    first, _, _ = await storage.create_run(_new("r1"), claim=claim)
    assert first["status"] == "running"
    # Behind a running run, and behind a pending one: queued as without a claim.
    second, _, _ = await storage.create_run(_new("r2"), claim=claim)
    assert (second["status"], second["attempt"]) == ("pending", 0)
    await storage.finish_run("r1", RunOutcome(status="success"))
    third, _, _ = await storage.create_run(_new("r3"), claim=claim)
    assert (third["status"], third["attempt"]) == ("pending", 0)
    assert await storage.renew_leases("p1", ["r2", "r3"], timedelta(seconds=60)) == []
    # An interrupting run behind an active one is not claimed either: the active one ends first.
    _, active, _ = await storage.create_run(_new("r4", multitask_strategy="interrupt"), claim=claim)
    assert [run["run_id"] for run in active] == ["r2", "r3"]
    assert (await storage.get_run("t", "r4"))["status"] == "pending"
    queued = await storage.claim_next_run("t")
    assert queued is not None and queued["run_id"] == "r2"


async def test_create_run_with_a_claim_brings_the_thread_brief_the_run_starts_with(
    storage: Storage,
) -> None:
    # Read in the creating transaction, as `thread_brief` reads it once the run exists; a
    # claim that need not be durable (an attended run) creates the same.
    await _thread(storage, tz="Europe/Paris")
    for durable in (True, False):
        claim = Claim(owner="p1", lease=timedelta(seconds=60), durable=durable)
        run_id = f"r-{durable}"
        created = await storage.create_run(_new(run_id), claim=claim)
        assert created.run["status"] == "running"
        assert created.brief == await storage.thread_brief("t")
        assert created.brief is not None
        assert created.brief.metadata == {
            "tz": "Europe/Paris",
            "graph_id": "g",
            "assistant_id": "a",
        }
        assert await storage.get_run("t", run_id) == created.run
        messages = [{"type": "human", "content": str(n)} for n in range(3 if durable else 5)]
        outcome = RunOutcome(status="success", values={"messages": messages})
        await storage.finish_run(run_id, outcome)
    after = await storage.create_run(_new("r-next"), claim=Claim(owner="p1", lease=timedelta(60)))
    assert after.brief is not None and after.brief.message_count == 5
    # A queued run reads its thread when it starts: none comes with it.
    queued = await storage.create_run(
        _new("r-queued"), claim=Claim(owner="p1", lease=timedelta(60))
    )
    assert queued.run["status"] == "pending" and queued.brief is None
    assert (
        await storage.create_run(_new("r-plain", "other-thread", if_not_exists="create"))
    ).brief is None


async def test_create_run_refuses_an_assistant_changed_since_it_was_seen(
    storage: Storage,
) -> None:
    # `assistant_seen` (a cached read) is checked in the transaction that queues the run: a
    # stale one writes nothing, whatever changed the assistant (an update, a switch back to
    # an earlier version, which keeps the version number of a past read, or a deletion).
    await _thread(storage)
    created = await storage.create_assistant(
        NewAssistant(assistant_id="a", graph_id="g"), if_exists="raise"
    )
    first = AssistantStamp(created["version"], created["updated_at"])
    claim = Claim(owner="p1", lease=timedelta(seconds=60), durable=False)
    made = await storage.create_run(_new("r1", assistant_seen=first), claim=claim)
    assert made.run["status"] == "running"
    await storage.finish_run("r1", RunOutcome(status="success"))
    updated = await storage.update_assistant("a", AssistantPatch(config={"tags": ["x"]}))
    back = await storage.set_latest_assistant_version("a", 1)
    for stale in (first, AssistantStamp(updated["version"], updated["updated_at"])):
        with pytest.raises(AssistantChangedError) as refused:
            await storage.create_run(_new("r2", assistant_seen=stale), claim=claim)
        assert refused.value.assistant_id == "a"
    assert back["version"] == first.version
    with pytest.raises(NotFoundError):
        await storage.get_run("t", "r2")
    thread = await storage.get_thread("t", values=False)
    assert thread["status"] == "idle"
    assert [r["run_id"] for r in await storage.list_runs("t", limit=10, offset=0, status=None)] == [
        "r1"
    ]
    current = AssistantStamp(back["version"], back["updated_at"])
    assert (await storage.create_run(_new("r2", assistant_seen=current))).run["run_id"] == "r2"
    await storage.delete_assistant("a", delete_threads=False, thread_auth=None)
    with pytest.raises(AssistantChangedError):
        await storage.create_run(_new("r3", "t2", if_not_exists="create", assistant_seen=current))
    with pytest.raises(NotFoundError):
        await storage.get_thread("t2", values=False)


async def test_create_run_with_a_claim_leaves_a_delayed_run_pending(
    storage: Storage, clock: FakeClock
) -> None:
    await _thread(storage)
    claim = Claim(owner="p1", lease=timedelta(seconds=60))
    later = clock.wall + timedelta(seconds=10)
    delayed, _, _ = await storage.create_run(_new("delayed", not_before=later), claim=claim)
    assert (delayed["status"], delayed["attempt"]) == ("pending", 0)
    assert await storage.claim_next_run("t") is None
    clock.advance(timedelta(seconds=11))
    due = await storage.claim_next_run("t")
    assert due is not None and due["run_id"] == "delayed"


async def test_ready_threads_lists_due_unclaimed_work_oldest_first(
    storage: Storage, clock: FakeClock
) -> None:
    assert await storage.ready_threads(10) == []
    for thread_id in ("a", "b", "c", "d", "e"):
        await _thread(storage, thread_id)
    await storage.create_run(_new("b1", "b"))
    await storage.create_run(_new("a1", "a"))
    await storage.create_run(_new("b2", "b"))
    await storage.create_run(_new("c1", "c", not_before=clock.wall + timedelta(seconds=10)))
    await storage.create_run(_new("d1", "d"))
    await storage.create_run(_new("e1", "e"))
    await storage.finish_run("e1", RunOutcome(status="success"))
    # b's oldest run is older than a's; c is not due; e has nothing pending.
    assert await storage.ready_threads(10) == ["b", "a", "d"]
    assert await storage.ready_threads(2) == ["b", "a"]
    # Reading claims nothing.
    assert await storage.ready_threads(10) == ["b", "a", "d"]
    claimed = await storage.claim_next_run("b")
    assert claimed is not None and claimed["run_id"] == "b1"
    # b still has b2 queued, but a run of its own is running: not ready.
    assert await storage.ready_threads(10) == ["a", "d"]
    clock.advance(timedelta(seconds=10))
    await storage.finish_run("b1", RunOutcome(status="success"))
    # Once due, a delayed run ranks by when it was created, not by when it fell due.
    assert await storage.ready_threads(10) == ["a", "b", "c", "d"]
    assert await storage.ready_threads(0) == []


async def test_finish_run_keeps_the_thread_busy_while_runs_are_queued(storage: Storage) -> None:
    await _thread(storage)
    await storage.create_run(_new("r1"))
    queued = (await storage.create_run(_new("r2"))).run
    await storage.claim_next_run("t")
    finished = await storage.finish_run("r1", RunOutcome(status="success", values={"n": 1}))
    assert finished is not None
    assert finished.run["status"] == "success" and finished.run["error"] is None
    # When the run queued behind it falls due (it is due since its creation), as
    # `next_due_time` tells, read by the finish itself.
    assert finished.next_due == queued["created_at"] == await storage.next_due_time("t")
    thread = await storage.get_thread("t")
    assert thread["status"] == "busy" and thread["values"] == {"n": 1}
    await storage.claim_next_run("t")
    interrupts: dict[str, list[Interrupt]] = {"task": [{"value": "approve?", "id": "i1"}]}
    last = await storage.finish_run(
        "r2", RunOutcome(status="interrupted", thread_status="interrupted", interrupts=interrupts)
    )
    assert last is not None and last.next_due is None  # nothing queued any more
    thread = await storage.get_thread("t")
    assert thread["status"] == "interrupted"
    assert thread["interrupts"] == interrupts
    # None keeps the values the thread had.
    assert thread["values"] == {"n": 1}


async def test_finish_run_records_the_error_and_thread_state(storage: Storage) -> None:
    await _thread(storage, "a")
    await _thread(storage, "b")
    await storage.create_run(_new("r1", thread_id="a"))
    await storage.claim_next_run("a")
    await storage.finish_run(
        "r1",
        RunOutcome(status="interrupted", thread_status="interrupted", interrupts={"x": []}),
    )
    await storage.create_run(_new("r2", thread_id="a"))
    run = await storage.claim_next_run("a")
    assert run is not None
    ended = await storage.finish_run(
        "r2",
        RunOutcome(status="error", error="ValueError: boom", thread_status="error", values={}),
    )
    assert ended is not None
    finished = ended.run
    assert finished["status"] == "error" and finished["error"] == "ValueError: boom"
    assert finished["updated_at"] > run["updated_at"]
    assert finished["attempt"] == 1
    thread = await storage.get_thread("a")
    assert thread["status"] == "error"
    assert thread["values"] == {}
    # Interrupts are replaced every time, so a finished run clears stale ones.
    assert thread["interrupts"] == {}
    by_state = await storage.search_threads(ThreadQuery(sort_by="state_updated_at"))
    assert [t["thread_id"] for t in by_state] == ["a", "b"]
    with pytest.raises(NotFoundError) as caught:
        await storage.finish_run("nope", RunOutcome(status="success"))
    assert caught.value.detail == 'Run "nope" not found'


async def test_finish_run_only_if_pending_leaves_a_started_run_alone(storage: Storage) -> None:
    # A cancellation that lost the race to the run's start: nothing changes, the thread stays
    # busy with it; a pending run is finished; a missing one is not found either way.
    await _thread(storage)
    await storage.create_run(_new("r1"))
    started = await storage.claim_next_run("t")
    assert started is not None
    outcome = RunOutcome(status="interrupted", values={"lost": True}, usage=None)
    assert await storage.finish_run("r1", outcome, only_if_pending=True) is None
    assert (await storage.get_run("t", "r1"))["status"] == "running"
    thread = await storage.get_thread("t")
    assert thread["status"] == "busy" and thread["values"] is None
    await storage.create_run(_new("r2"))  # queued behind r1
    ended = await storage.finish_run("r2", RunOutcome(status="interrupted"), only_if_pending=True)
    assert ended is not None and ended.run["status"] == "interrupted"
    assert (await storage.get_thread("t"))["status"] == "busy"  # r1 still runs
    with pytest.raises(NotFoundError):
        await storage.finish_run("nope", outcome, only_if_pending=True)
    finished = await storage.finish_run("r1", RunOutcome(status="success", values={"n": 1}))
    assert finished is not None and finished.next_due is None
    thread = await storage.get_thread("t")
    assert thread["status"] == "idle" and thread["values"] == {"n": 1}


async def test_finish_run_stores_values_already_encoded(storage: Storage) -> None:
    await _thread(storage)
    await storage.create_run(_new("r1"))
    await storage.claim_next_run("t")
    encoded = b'{"messages":[{"content":"hi"},{"content":"hello"}],"n":2}'
    outcome = RunOutcome(status="success", values_json=encoded, message_count=2)
    await storage.finish_run("r1", outcome)
    thread = await storage.get_thread("t")
    assert thread["values"] == {"messages": [{"content": "hi"}, {"content": "hello"}], "n": 2}
    assert thread["message_count"] == 2
    # Decoded values count their own messages; without a message list the count stays.
    await storage.settle_thread("t", RunOutcome(status="success", values={"messages": [{}]}))
    assert (await storage.get_thread("t"))["message_count"] == 1
    await storage.settle_thread("t", RunOutcome(status="success", values_json=b'{"n":3}'))
    thread = await storage.get_thread("t")
    assert (thread["values"], thread["message_count"]) == ({"n": 3}, 1)


async def test_settle_thread_sets_status_without_a_run(storage: Storage) -> None:
    await _thread(storage)
    await storage.create_run(_new("r1"))
    await storage.create_run(_new("r2"))
    await storage.delete_run("t", "r1", checkpoints=False)
    await storage.settle_thread("t", RunOutcome(status="success", values={"n": 0}))
    thread = await storage.get_thread("t")
    assert thread["status"] == "busy" and thread["values"] == {"n": 0}
    await storage.delete_run("t", "r2", checkpoints=False)
    await storage.settle_thread("t", RunOutcome(status="success"))
    assert (await storage.get_thread("t"))["status"] == "idle"
    await storage.settle_thread("gone", RunOutcome(status="success"))
    with pytest.raises(NotFoundError):
        await storage.get_thread("gone")


async def test_search_runs_by_status_on_one_thread_or_all(storage: Storage) -> None:
    await _thread(storage, "a")
    await _thread(storage, "b")
    for run_id, thread_id in (("a1", "a"), ("b1", "b"), ("a2", "a"), ("b2", "b")):
        await storage.create_run(_new(run_id, thread_id=thread_id))
    await storage.claim_next_run("a")
    await storage.finish_run("a1", RunOutcome(status="success"))
    await storage.claim_next_run("a")
    await storage.claim_next_run("b")

    def ids(runs: list[Run]) -> list[str]:
        return [r["run_id"] for r in runs]

    active = await storage.search_runs(thread_id=None, statuses=("pending", "running"))
    assert ids(active) == ["b1", "a2", "b2"]
    on_a = await storage.search_runs(thread_id="a", statuses=["running", "success"])
    assert ids(on_a) == ["a1", "a2"]
    assert ids(await storage.search_runs(thread_id="b", statuses=["pending"])) == ["b2"]
    assert await storage.search_runs(thread_id=None, statuses=[]) == []
    assert await storage.search_runs(thread_id="nope", statuses=["pending"]) == []


async def test_delete_run_not_found(storage: Storage) -> None:
    await _thread(storage)
    await _thread(storage, "other")
    await storage.create_run(_new("r1"))
    with pytest.raises(NotFoundError) as caught:
        await storage.delete_run("other", "r1", checkpoints=True)
    assert caught.value.detail == 'Run "r1" not found on thread "other"'
    assert caught.value.code == "run_not_found"
    await storage.delete_run("t", "r1", checkpoints=False)
    with pytest.raises(NotFoundError):
        await storage.delete_run("t", "r1", checkpoints=False)


async def test_delete_run_with_checkpoints_rolls_back_exactly_that_run(storage: Storage) -> None:
    await _thread(storage)
    graph = _counter_graph(storage)
    for run_id, start in (("r1", 0), ("r2", 10)):
        await storage.create_run(_new(run_id))
        config = {"configurable": {"thread_id": "t"}, "metadata": {"run_id": run_id}}
        await graph.ainvoke({"n": start}, config)
    kept = await _checkpoints_of(storage, "t", "r1")
    doomed = await _checkpoints_of(storage, "t", "r2")
    assert {ns for ns, _ in doomed} > {""}, "the subgraph checkpoints carry the run_id too"
    config = {"configurable": {"thread_id": "t"}}
    assert (await graph.aget_state(config)).values == {"n": 12}

    await storage.delete_run("t", "r1", checkpoints=False)
    assert await _checkpoints_of(storage, "t", "r1") == kept
    await storage.delete_run("t", "r2", checkpoints=True)
    assert await _checkpoints_of(storage, "t", "r2") == []
    assert await _checkpoints_of(storage, "t", "r1") == kept
    with pytest.raises(NotFoundError):
        await storage.find_run("r2")

    state = await graph.aget_state(config)
    assert state.values == {"n": 2} and state.metadata["run_id"] == "r1"
    history = [s async for s in graph.aget_state_history(config)]
    assert [s.metadata["step"] for s in history] == [2, 1, 0, -1]
    assert {s.metadata["run_id"] for s in history} == {"r1"}
    assert {("", s.config["configurable"]["checkpoint_id"]) for s in history} < set(kept)
    # The thread goes on from where the surviving run left it.
    await graph.ainvoke({"n": 20}, {**config, "metadata": {"run_id": "r3"}})
    assert (await graph.aget_state(config)).values == {"n": 22}
    assert len([s async for s in graph.aget_state_history(config)]) == 8
    if isinstance(storage, SqliteStorage):
        assert _orphan_writes(storage) == 0


async def test_requeue_interrupted_work_after_a_crash(storage: Storage) -> None:
    for thread_id in ("late", "early", "idle"):
        await _thread(storage, thread_id)
    await storage.create_run(_new("e1", thread_id="early"))
    await storage.create_run(_new("l1", thread_id="late"))
    await storage.create_run(_new("e2", thread_id="early"))
    await storage.create_run(_new("i1", thread_id="idle"))
    for thread_id in ("early", "late", "idle"):
        await storage.claim_next_run(thread_id)
    await storage.finish_run("i1", RunOutcome(status="success"))
    # The process dies here with e1 and l1 running; the next one starts up.
    assert await storage.requeue_interrupted_work() == ["early", "late"]
    requeued = await storage.get_run("early", "e1")
    assert requeued["status"] == "pending" and requeued["attempt"] == 1
    assert (await storage.get_run("idle", "i1"))["status"] == "success"
    resumed = await storage.claim_next_run("early")
    assert resumed is not None and resumed["run_id"] == "e1" and resumed["attempt"] == 2
    assert await storage.requeue_interrupted_work() == ["early", "late"]


async def test_delete_thread_deletes_its_runs(storage: Storage) -> None:
    await _thread(storage)
    await _thread(storage, "other")
    await storage.create_run(_new("r1"))
    await storage.create_run(_new("r2", thread_id="other"))
    await storage.claim_next_run("t")
    await storage.delete_thread("t")
    with pytest.raises(NotFoundError):
        await storage.find_run("r1")
    assert await storage.requeue_interrupted_work() == ["other"]
    assert (await storage.find_run("r2"))["status"] == "pending"


async def test_copy_thread_does_not_copy_runs(storage: Storage) -> None:
    await _thread(storage, "src")
    await storage.create_run(_new("r1", thread_id="src"))
    copied = await storage.copy_thread("src", "dst")
    assert copied["status"] == "idle"
    assert await storage.list_runs("dst", **_all_runs()) == []
    assert await storage.claim_next_run("dst") is None
    assert [r["run_id"] for r in await storage.list_runs("src", **_all_runs())] == ["r1"]


def _all_runs() -> dict[str, Any]:
    return {"limit": 100, "offset": 0, "status": None}


def _orphan_writes(storage: SqliteStorage) -> int:
    with sqlite3.connect(storage.path) as conn:
        (count,) = conn.execute(
            "SELECT COUNT(*) FROM writes w WHERE NOT EXISTS (SELECT 1 FROM checkpoints c"
            " WHERE c.thread_id = w.thread_id AND c.checkpoint_ns = w.checkpoint_ns"
            " AND c.checkpoint_id = w.checkpoint_id)"
        ).fetchone()
    return int(count)


LEASE = timedelta(seconds=30)


async def test_a_reaper_spares_its_own_processs_runs(storage: Storage, clock: FakeClock) -> None:
    await _thread(storage)
    await storage.create_run(_new("r1"))
    await storage.claim_next_run("t", owner="A", lease=LEASE)
    clock.advance(timedelta(seconds=31))
    # A's event loop stalled past its lease; when it wakes its own reaper leaves the run to
    # its heartbeat, which renews it: nothing re-queued, nothing charged.
    assert await storage.reap_expired_leases(sparing="A") == []
    assert await storage.renew_leases("A", ["r1"], LEASE) == ["r1"]
    run = await storage.get_run("t", "r1")
    assert (run["status"], run["attempt"]) == ("running", 1)
    assert await storage.charged_attempts("r1") == 0
    # Another process's reaper does not spare A once A's lease lapses again.
    clock.advance(timedelta(seconds=31))
    assert await storage.reap_expired_leases(sparing="B") == ["t"]
    assert (await storage.get_run("t", "r1"))["status"] == "pending"
    assert await storage.renew_leases("A", ["r1"], LEASE) == []


async def test_a_leased_run_is_its_owners_until_the_lease_lapses(
    storage: Storage, clock: FakeClock
) -> None:
    await _thread(storage)
    await storage.create_run(_new("r1"))
    await storage.create_run(_new("r2"))
    claimed = await storage.claim_next_run("t", owner="A", lease=LEASE)
    assert claimed is not None and (claimed["run_id"], claimed["attempt"]) == ("r1", 1)
    # Another process finds the thread busy, and a start-up or a reap leaves A's run alone
    # (the thread is listed at start-up for its pending r2).
    assert await storage.claim_next_run("t", owner="B", lease=LEASE) is None
    assert await storage.requeue_interrupted_work() == ["t"]
    assert await storage.reap_expired_leases() == []
    assert (await storage.get_run("t", "r1"))["status"] == "running"
    # Renewing pushes the expiry: 20 s + 20 s is past the first lease, not the renewed one.
    clock.advance(timedelta(seconds=20))
    assert await storage.renew_leases("A", ["r1", "r2", "gone"], LEASE) == ["r1"]
    assert await storage.renew_leases("B", ["r1"], LEASE) == []
    clock.advance(timedelta(seconds=20))
    assert await storage.reap_expired_leases() == []
    assert (await storage.get_run("t", "r1"))["status"] == "running"
    # A falls silent: once its lease lapses the run goes back, same id, and B resumes it.
    clock.advance(timedelta(seconds=31))
    assert await storage.reap_expired_leases() == ["t"]
    requeued = await storage.get_run("t", "r1")
    assert (requeued["status"], requeued["attempt"]) == ("pending", 1)
    assert await storage.charged_attempts("r1") == 1
    resumed = await storage.claim_next_run("t", owner="B", lease=LEASE)
    assert resumed is not None and (resumed["run_id"], resumed["attempt"]) == ("r1", 2)
    # A's late renewal no longer holds anything.
    assert await storage.renew_leases("A", ["r1"], LEASE) == []
    assert await storage.reap_expired_leases() == []
    # Nor can A, still executing its attempt, end B's: r2 would start beside B's attempt.
    assert await storage.finish_run("r1", RunOutcome(status="success"), held_by="A") is None
    assert (await storage.get_run("t", "r1"))["status"] == "running"
    assert await storage.claim_next_run("t", owner="C", lease=LEASE) is None
    ended = await storage.finish_run("r1", RunOutcome(status="success"), held_by="B")
    assert ended is not None and ended.run["status"] == "success"
    claimed = await storage.claim_next_run("t", owner="C", lease=LEASE)
    assert claimed is not None and claimed["run_id"] == "r2"


@pytest.mark.parametrize("queued_behind", [False, True])
async def test_a_lapsed_owner_cannot_end_a_run_created_claimed_and_taken_over(
    storage: Storage, clock: FakeClock, queued_behind: bool
) -> None:
    # Created claimed on an idle thread (on Postgres the one-statement creation, whose run
    # ends in one statement while the thread's row is unchanged: a reap and a claim leave it
    # so); with a run queued behind it the end takes the transaction.
    await _thread(storage)
    created, _, _ = await storage.create_run(_new("r1"), claim=Claim(owner="A", lease=LEASE))
    assert created["status"] == "running"
    if queued_behind:
        await storage.create_run(_new("r2"))
    clock.advance(LEASE + timedelta(seconds=1))
    assert await storage.reap_expired_leases() == ["t"]
    resumed = await storage.claim_next_run("t", owner="B", lease=LEASE)
    assert resumed is not None and (resumed["run_id"], resumed["attempt"]) == ("r1", 2)

    success = RunOutcome(status="success", thread_status="idle")
    assert await storage.finish_run("r1", success, held_by="A") is None
    assert (await storage.get_run("t", "r1"))["status"] == "running"
    assert (await storage.get_thread("t", values=False))["status"] == "busy"
    ended = await storage.finish_run("r1", success, held_by="B")
    assert ended is not None and ended.run["status"] == "success"
    thread = await storage.get_thread("t", values=False)
    assert thread["status"] == ("busy" if queued_behind else "idle")


async def test_a_dead_owners_runs_are_blamed_unless_they_progressed_beside_others(
    storage: Storage, clock: FakeClock
) -> None:
    for thread_id in ("worker", "poison", "alone"):
        await _thread(storage, thread_id)
        await storage.create_run(_new(f"{thread_id}-run", thread_id=thread_id))
    for thread_id in ("worker", "poison"):
        assert await storage.claim_next_run(thread_id, owner="A", lease=LEASE) is not None
    assert await storage.claim_next_run("alone", owner="C", lease=LEASE) is not None
    # The worker writes a step checkpoint after its claim; the poison run writes none.
    graph = _counter_graph(storage)
    config: RunnableConfig = {
        "configurable": {"thread_id": "worker"},
        "metadata": {"run_id": "worker-run"},
    }
    await graph.ainvoke({"n": 0}, config)
    clock.advance(timedelta(seconds=31))
    assert sorted(await storage.reap_expired_leases()) == ["alone", "poison", "worker"]
    assert await storage.charged_attempts("worker-run") == 0
    assert await storage.charged_attempts("poison-run") == 1
    # A run alone in its dead process is the only suspect, whatever it wrote.
    assert await storage.charged_attempts("alone-run") == 1
    # Claimed again, the worker's progress is counted from the new claim.
    assert await storage.claim_next_run("worker", owner="B", lease=LEASE) is not None
    assert await storage.claim_next_run("poison", owner="B", lease=LEASE) is not None
    clock.advance(timedelta(seconds=31))
    assert sorted(await storage.reap_expired_leases()) == ["poison", "worker"]
    assert await storage.charged_attempts("worker-run") == 1
    assert await storage.charged_attempts("poison-run") == 2
    with pytest.raises(NotFoundError):
        await storage.charged_attempts("missing")


async def test_release_hands_an_owners_runs_back_uncharged(storage: Storage) -> None:
    for thread_id in ("a", "b", "c"):
        await _thread(storage, thread_id)
        await storage.create_run(_new(f"{thread_id}1", thread_id=thread_id))
    await storage.claim_next_run("a", owner="A", lease=LEASE)
    await storage.claim_next_run("b", owner="A", lease=LEASE)
    await storage.claim_next_run("c", owner="B", lease=LEASE)
    assert await storage.release("A") == ["a", "b"]
    released = await storage.get_run("a", "a1")
    assert (released["status"], released["attempt"]) == ("pending", 1)
    assert await storage.charged_attempts("a1") == 0
    assert (await storage.get_run("c", "c1"))["status"] == "running"
    resumed = await storage.claim_next_run("a", owner="B", lease=LEASE)
    assert resumed is not None and resumed["attempt"] == 2


async def test_a_cancel_request_reaches_whichever_owner_holds_the_run(
    storage: Storage, clock: FakeClock
) -> None:
    for thread_id in ("a", "b"):
        await _thread(storage, thread_id)
        await storage.create_run(_new(f"{thread_id}1", thread_id=thread_id))
    # Only a running run takes a request: a pending one is cancelled where it is.
    assert await storage.request_cancel("a1", "rollback") is False
    assert await storage.request_cancel("missing", "interrupt") is False
    await storage.claim_next_run("a", owner="A", lease=LEASE)
    await storage.claim_next_run("b", owner="A", lease=LEASE)
    assert await storage.cancel_requests("A") == {}
    assert await storage.request_cancel("a1", "rollback") is True
    assert await storage.cancel_requests("A") == {"a1": "rollback"}
    assert await storage.cancel_requests("B") == {}
    # Asked again, the latest action holds.
    assert await storage.request_cancel("a1", "interrupt") is True
    assert await storage.cancel_requests("A") == {"a1": "interrupt"}
    # A dies before acting on it: the request follows the run to its next owner.
    clock.advance(timedelta(seconds=31))
    assert await storage.reap_expired_leases() == ["a", "b"]
    assert await storage.cancel_requests("A") == {}
    await storage.claim_next_run("a", owner="B", lease=LEASE)
    assert await storage.cancel_requests("B") == {"a1": "interrupt"}
    # An ended run asks nothing more, and takes no new request.
    await storage.finish_run("a1", RunOutcome(status="interrupted"))
    assert await storage.cancel_requests("B") == {}
    assert await storage.request_cancel("a1", "interrupt") is False


async def test_usage_reads_back_as_recorded_and_sums_on_the_thread(storage: Storage) -> None:
    priced = model_usage(1000, 200, {"input_per_million": 3.0, "output_per_million": 15.0})
    first = summarize({"gpt": priced, "echo": model_usage(5, 7, None)})
    second = summarize({"gpt": model_usage(10, 20, {"input_per_million": 3.0})})
    await _thread(storage)
    for run_id, usage in (("r1", first), ("r2", second)):
        await storage.create_run(_new(run_id))
        await storage.claim_next_run("t", owner="A", lease=LEASE)
        finished = await storage.finish_run(run_id, RunOutcome(status="success", usage=usage))
        assert finished is not None and finished.run["usage"] == usage
        assert (await storage.get_run("t", run_id))["usage"] == usage
    thread = await storage.get_thread("t")
    assert thread["usage"] == add_usage(first, second)
    assert thread["usage"] is not None and thread["usage"]["cost_usd"] is None
    assert thread["usage"]["by_model"]["gpt"]["total_tokens"] == 1230
