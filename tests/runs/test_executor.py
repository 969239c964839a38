"""The run executor's own contracts, below the run manager and HTTP: the events it publishes and
their order, the context, config and input it hands the graph, how a graph's failure and the
message limit end a run, and how a retried attempt continues. Each run here is queued and claimed
through the real storage and executed directly; the manager never sees it."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from langchain_core.messages import HumanMessage

from agent_runtime.encoding import STABLE_JSON, dumps
from agent_runtime.runs.executor import RunExecutor, build_config
from agent_runtime.runs.options import RunOptions
from agent_runtime.schema import Assistant, Run
from agent_runtime.storage.records import NewRun, RunOutcome
from tests.conftest import until
from tests.runs.harness import Harness

EMPTY: dict[str, Any] = {"steps": []}
HELLO = {"messages": [{"role": "user", "content": "hello there"}]}
LIMIT_DETAIL = (
    "The thread would hold {count} messages, over the limit of {limit} "
    "(agent_runtime.limits.max_messages_per_thread in langgraph.json)"
)

Events = list[tuple[str, Any]]


def executor_of(harness: Harness, *, max_messages: int = 10_000) -> RunExecutor:
    return RunExecutor(
        harness.storage,
        harness.registry,
        harness.events,
        pricing={},
        max_messages=max_messages,
    )


async def claim(harness: Harness, new: NewRun) -> Run:
    """Queue the run and claim it, as a worker does (attempt 1)."""
    await harness.storage.create_run(new)
    run = await harness.storage.claim_next_run(new.thread_id)
    assert run is not None and run["run_id"] == new.run_id
    await harness.events.open(run["run_id"])
    return run


async def execute(
    harness: Harness,
    run: Run,
    *,
    executor: RunExecutor | None = None,
    assistant: Assistant | None = None,
) -> tuple[RunOutcome, Events]:
    """Execute a claimed run, record its outcome as the manager would, and return the outcome
    and every event it published."""
    executor = executor or executor_of(harness)
    options = RunOptions.from_json(run["kwargs"])
    outcome = await executor.execute(run, options, assistant=assistant)
    await harness.events.close(run["run_id"])
    await harness.storage.finish_run(run["run_id"], outcome)
    return outcome, await harness.published(run["run_id"])


async def run_once(harness: Harness, new: NewRun, **kwargs: Any) -> tuple[Run, RunOutcome, Events]:
    run = await claim(harness, new)
    outcome, events = await execute(harness, run, **kwargs)
    return run, outcome, events


# Events


async def test_events_are_metadata_then_the_requested_modes_in_order(harness: Harness) -> None:
    tid = await harness.thread()
    new = harness.new_run(
        tid, "slow", input=EMPTY, context={"delay": 0}, stream_mode=["values", "updates"]
    )
    run, outcome, events = await run_once(harness, new)
    # No `end`: the manager publishes it once it has recorded the run.
    assert events == [
        ("metadata", {"run_id": run["run_id"], "attempt": 1}),
        ("values", {"steps": []}),
        ("updates", {"one": {"steps": ["one"]}}),
        ("values", {"steps": ["one"]}),
        ("updates", {"two": {"steps": ["two"]}}),
        ("values", {"steps": ["one", "two"]}),
        ("updates", {"three": {"steps": ["three"]}}),
        ("values", {"steps": ["one", "two", "three"]}),
    ]
    assert outcome.status == "success"
    assert outcome.thread_status == "idle"
    assert outcome.error is None
    assert outcome.decoded_values() == {"steps": ["one", "two", "three"]}


async def test_only_the_requested_mode_is_published(harness: Harness) -> None:
    tid = await harness.thread()
    new = harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0}, stream_mode="updates")
    _, outcome, events = await run_once(harness, new)
    assert [name for name, _ in events] == ["metadata", "updates", "updates", "updates"]
    # The state is still what the outcome reports, though no `values` event carried it.
    assert outcome.decoded_values() == {"steps": ["one", "two", "three"]}


async def test_the_first_token_of_a_burst_reaches_a_waiting_stream_before_the_rest(
    harness: Harness,
) -> None:
    # The offline model has every token of its reply ready at once, as a cached or batched
    # reply would: the first must not wait behind the others' publishing.
    tid = await harness.thread()
    new = harness.new_run(tid, "chat", input=HELLO, stream_mode="messages-tuple")
    run = await claim(harness, new)
    subscription = harness.events.subscribe(run["run_id"], after=-1)

    async def waited_for_the_second_token() -> bool:
        async for event in subscription:
            if event.event == "messages":
                break
        # Runs only if reading the next token has to wait for the loop: it was not yet published.
        loop_ran: list[bool] = []
        asyncio.get_running_loop().call_soon(loop_ran.append, True)
        second = await anext(subscription)
        assert second.event == "messages"
        return bool(loop_ran)

    watcher = asyncio.create_task(waited_for_the_second_token())
    _, events = await execute(harness, run)

    assert await watcher
    assert [name for name, _ in events].count("messages") > 2


# What the graph is given


async def test_a_state_says_how_much_of_it_the_threads_next_state_starts_with(
    harness: Harness,
) -> None:
    # `values_json_stable` (what SQLite's compressor keeps, `storage.sqlite.values`): the state
    # up to the end of the messages known not to change (a message boundary), which the next
    # run's state starts with.
    tid = await harness.thread()
    executor = executor_of(harness)
    states: list[RunOutcome] = []
    for _ in range(3):
        _, outcome, _ = await run_once(
            harness, harness.new_run(tid, "chat", input=HELLO), executor=executor
        )
        states.append(outcome)
    first, second, third = states
    assert first.values_json is not None and second.values_json is not None
    assert third.values_json is not None
    stable = second.values_json_stable
    # At least the first run's messages (those of the run itself join once checkpointed).
    assert stable >= len(first.values_json) - len(b"]}")
    assert second.values_json[stable : stable + 2] in (b"]}", b",{")
    assert third.values_json.startswith(second.values_json[:stable])
    assert not third.values_json.startswith(second.values_json)


@pytest.mark.parametrize(
    "shape",
    [
        lambda m: {"messages": m},
        lambda m: {"messages": m, "summary": "so far", "n": 2},
        lambda m: {"summary": "so far", "messages": m},
        lambda m: {"messages": "not a list", "n": len(m)},
    ],
)
async def test_states_encode_as_dumps_does_in_every_shape(harness: Harness, shape: Any) -> None:
    # The executor writes a state around its messages' kept JSON (`GrowingListJson`) when they
    # come first; the bytes are always `dumps` of the state.
    executor = executor_of(harness)
    messages = [HumanMessage(content=f"message {n}", id=f"m{n}") for n in range(4)]
    for message in messages:
        STABLE_JSON.remember(message)
    try:
        for count in (2, 3, 4):  # growing, the kept part reused
            values = shape(messages[:count])
            assert executor._values_json("t", values) == dumps(values)
    finally:
        for message in messages:
            STABLE_JSON.forget(message)


async def test_context_is_the_assistants_merged_with_the_runs(harness: Harness) -> None:
    tid = await harness.thread(timezone="Europe/Paris")
    assistant = await harness.assistant("probe", context={"model": "a", "level": "assistant"})
    new = harness.new_run(
        tid,
        "probe",
        assistant_id=assistant["assistant_id"],
        input={"seen": []},
        context={"level": "run", "extra": 1},
    )
    run, outcome, _ = await run_once(harness, new)
    [seen] = (outcome.decoded_values() or {})["seen"]
    assert seen["context"] == {"model": "a", "level": "run", "extra": 1}
    assert seen["configurable"] == {
        "thread_id": tid,
        "run_id": run["run_id"],
        "assistant_id": assistant["assistant_id"],
        "graph_id": "probe",
        "run_attempt": 1,
        "model": None,
        "level": None,
    }
    # The thread's metadata, with the ids the run stamped into it.
    assert seen["thread_metadata"] == {
        "timezone": "Europe/Paris",
        "graph_id": "probe",
        "assistant_id": assistant["assistant_id"],
    }


async def test_context_is_an_empty_dict_when_neither_gives_one(harness: Harness) -> None:
    tid = await harness.thread()
    # `{}`, not None: LangGraph builds the graph's dataclass context from it, with its defaults.
    new = harness.new_run(tid, "defaulted", input=EMPTY)
    _, outcome, _ = await run_once(harness, new)
    assert outcome.error is None
    assert outcome.decoded_values() == {"steps": ["level:default"]}
    new = harness.new_run(tid, "defaulted", input=EMPTY, context={"level": "run"})
    _, outcome, _ = await run_once(harness, new)
    assert outcome.decoded_values() == {"steps": ["level:default", "level:run"]}


async def test_the_assistant_handed_in_is_used_without_a_read(harness: Harness) -> None:
    tid = await harness.thread()
    stored = await harness.assistant("probe", context={"level": "stored"})
    handed: Assistant = {**stored, "context": {"level": "handed"}}
    new = harness.new_run(tid, "probe", assistant_id=stored["assistant_id"], input={"seen": []})
    _, outcome, _ = await run_once(harness, new, assistant=handed)
    [seen] = (outcome.decoded_values() or {})["seen"]
    assert seen["context"] == {"level": "handed"}


async def test_assistant_and_run_config_reach_the_graph(harness: Harness) -> None:
    tid = await harness.thread()
    assistant = await harness.assistant(
        "probe", config={"configurable": {"model": "a", "level": "a"}, "tags": ["x"]}
    )
    new = harness.new_run(
        tid,
        "probe",
        assistant_id=assistant["assistant_id"],
        input={"seen": []},
        config={"configurable": {"level": "run", "thread_id": "spoofed"}, "tags": ["y"]},
    )
    _, outcome, _ = await run_once(harness, new)
    [seen] = (outcome.decoded_values() or {})["seen"]
    assert seen["configurable"]["model"] == "a"
    assert seen["configurable"]["level"] == "run"
    # The run's ids win over whatever the request put in configurable.
    assert seen["configurable"]["thread_id"] == tid
    assert seen["tags"] == ["x", "y"]


async def test_command_resumes_an_interrupt(harness: Harness) -> None:
    tid = await harness.thread()
    _, paused, events = await run_once(harness, harness.new_run(tid, "asker", input=EMPTY))
    assert paused.status == "interrupted"
    assert paused.thread_status == "interrupted"
    assert paused.error is None
    [(_task_id, [pending])] = paused.interrupts.items()
    assert pending["value"] == {"question": "continue?"}
    # The SDK reads the pending interrupt off the last `values` event.
    assert events[-1] == ("values", {"steps": [], "__interrupt__": [pending]})

    resume = harness.new_run(tid, "asker", command={"resume": "yes"})
    _, done, events = await run_once(harness, resume)
    assert done.status == "success"
    assert done.interrupts == {}
    assert done.decoded_values() == {"steps": ["answer:yes"]}
    assert events[-1] == ("values", {"steps": ["answer:yes"]})


async def test_a_command_wins_over_the_input(harness: Harness) -> None:
    tid = await harness.thread()
    await run_once(harness, harness.new_run(tid, "asker", input=EMPTY))
    # As the request parser leaves them: agent-chat-ui sends `input: {}` beside the command.
    options = RunOptions.from_request({"input": {"steps": ["x"]}, "command": {"resume": "ok"}})
    new = harness.new_run(tid, "asker", **options.to_json())
    _, done, _ = await run_once(harness, new)
    assert done.decoded_values() == {"steps": ["answer:ok"]}


# How a run fails


async def test_a_graph_exception_becomes_an_error_event_and_outcome(harness: Harness) -> None:
    tid = await harness.thread()
    run, outcome, events = await run_once(harness, harness.new_run(tid, "failing", input=EMPTY))
    assert events == [
        ("metadata", {"run_id": run["run_id"], "attempt": 1}),
        ("values", {"steps": []}),
        ("values", {"steps": ["ok"]}),
        ("error", {"error": "ValueError", "message": "the fixture graph failed on purpose"}),
    ]
    assert outcome.status == "error"
    assert outcome.thread_status == "error"
    assert outcome.error == "ValueError: the fixture graph failed on purpose"
    # What the graph finished before it failed is the thread's state.
    assert outcome.decoded_values() == {"steps": ["ok"]}


async def test_the_message_limit_undoes_the_runs_checkpoints(harness: Harness) -> None:
    tid = await harness.thread()
    executor = executor_of(harness, max_messages=3)
    first, kept, _ = await run_once(
        harness, harness.new_run(tid, "chat", input=HELLO), executor=executor
    )
    assert kept.status == "success"
    assert kept.count_messages() == 2
    before = await harness.values(tid, "chat")

    # 2 + 1 incoming passes the check made before the run; the reply makes 4.
    run, outcome, events = await run_once(
        harness, harness.new_run(tid, "chat", input=HELLO), executor=executor
    )
    detail = LIMIT_DETAIL.format(count=4, limit=3)
    assert outcome.status == "error"
    assert outcome.error == f"MessageLimitError: {detail}"
    assert events[-1] == ("error", {"error": "MessageLimitError", "message": detail})
    # The thread is back to what it held before the run, and only the first run wrote to it.
    assert await harness.values(tid, "chat") == before
    assert set(await harness.checkpoint_run_ids(tid)) == {first["run_id"]}
    assert run["run_id"] not in await harness.checkpoint_run_ids(tid)


async def test_the_message_limit_refuses_an_input_over_it_before_the_graph_runs(
    harness: Harness,
) -> None:
    tid = await harness.thread()
    executor = executor_of(harness, max_messages=0)
    run, outcome, events = await run_once(
        harness, harness.new_run(tid, "chat", input=HELLO), executor=executor
    )
    detail = LIMIT_DETAIL.format(count=1, limit=0)
    assert events == [
        ("metadata", {"run_id": run["run_id"], "attempt": 1}),
        ("error", {"error": "MessageLimitError", "message": detail}),
    ]
    assert outcome.error == f"MessageLimitError: {detail}"
    assert await harness.storage.list_checkpoint_summaries(tid) == []


# Attempts


async def test_a_retried_attempt_continues_from_its_own_checkpoint(harness: Harness) -> None:
    tid = await harness.thread()
    run = await claim(harness, harness.new_run(tid, "slow", input=EMPTY, context={"delay": 0.5}))
    options = RunOptions.from_json(run["kwargs"])
    executor = executor_of(harness)
    # The first attempt dies after its first step, as if the server had been killed.
    first = asyncio.create_task(executor.execute(run, options))
    await until(lambda: _steps_are(harness, tid, ["one"]))
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    assert await harness.storage.requeue_interrupted_work() == [tid]

    retried = await harness.storage.claim_next_run(tid)
    assert retried is not None and retried["attempt"] == 2
    fast: Run = {**retried, "kwargs": {**retried["kwargs"], "context": {"delay": 0}}}
    outcome, events = await execute(harness, fast, executor=executor)
    # Replaying the input would have run "one" a second time.
    assert outcome.decoded_values() == {"steps": ["one", "two", "three"]}
    assert events[0] == ("metadata", {"run_id": run["run_id"], "attempt": 1})
    assert ("metadata", {"run_id": run["run_id"], "attempt": 2}) in events


# build_config


async def test_build_config_layers_assistant_run_and_ids(harness: Harness) -> None:
    tid = await harness.thread()
    assistant = await harness.assistant(
        "probe",
        config={
            "configurable": {"model": "a", "level": "a"},
            "metadata": {"from": "assistant", "kept": 1},
            "tags": ["x", "shared"],
            "recursion_limit": 5,
        },
    )
    new = harness.new_run(
        tid,
        "probe",
        assistant_id=assistant["assistant_id"],
        metadata={"from": "run row"},
        config={
            "configurable": {"level": "run", "run_id": "spoofed"},
            "metadata": {"from": "run config", "extra": 2},
            "tags": ["shared", "y"],
        },
        checkpoint_id="1f0-checkpoint",
    )
    run = await claim(harness, new)
    options = RunOptions.from_json(run["kwargs"])
    config = build_config(run, options, assistant)
    ids = {
        "thread_id": tid,
        "run_id": run["run_id"],
        "assistant_id": assistant["assistant_id"],
        "graph_id": "probe",
    }
    assert config == {
        "configurable": {
            "model": "a",
            "level": "run",
            **ids,
            "run_attempt": 1,
            "checkpoint_id": "1f0-checkpoint",
        },
        "metadata": {"from": "run row", "kept": 1, "extra": 2, **ids},
        "tags": ["x", "shared", "y"],
        "recursion_limit": 5,
    }
    # A retried attempt continues from its own checkpoints, not the one the request named.
    retried = build_config({**run, "attempt": 2}, options, assistant)
    assert "checkpoint_id" not in retried["configurable"]
    assert retried["configurable"]["run_attempt"] == 2


async def test_build_config_takes_the_checkpoint_object_and_its_namespace(
    harness: Harness,
) -> None:
    tid = await harness.thread()
    assistant = await harness.storage.get_assistant(harness.new_run(tid, "probe").assistant_id)
    new = harness.new_run(
        tid, "probe", checkpoint={"checkpoint_id": "1f0-object", "checkpoint_ns": "child:1"}
    )
    run = await claim(harness, new)
    config = build_config(run, RunOptions.from_json(run["kwargs"]), assistant)
    assert config["configurable"]["checkpoint_id"] == "1f0-object"
    assert config["configurable"]["checkpoint_ns"] == "child:1"
    # Nothing asked for: no tags key at all, and the default assistant adds no config.
    assert "tags" not in config
    assert set(config) == {"configurable", "metadata"}


async def _steps_are(harness: Harness, thread_id: str, steps: list[str]) -> bool:
    return (await harness.values(thread_id)).get("steps") == steps
