"""What runs leave on their thread and what bounds a thread (issue 5): the tool-call log, token
usage and cost per model, the limits and retention settings of langgraph.json, the background
sweeper and POST /threads/prune."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.config import RuntimeConfig, config_from_dict
from agent_runtime.config.model import LimitsConfig
from tests.conftest import ROOT, RunningServer, json_of

EXAMPLES = ROOT / "langgraph.json"
FIXTURES = ROOT / "tests" / "fixtures" / "runs" / "langgraph.json"
ECHO_PRICE = {"input_per_million": 2.5, "output_per_million": 10.0}
PRICING = {"echo": ECHO_PRICE}  # "offline:other" reports "other", which has no price
TINY_DAYS = 0.00002  # 1.728 seconds
SWEEP_FAST = {"sweep_interval_seconds": 0.1}
LIMIT_HINT = "(agent_runtime.limits.max_messages_per_thread in langgraph.json)"
Served = tuple[LangGraphClient, httpx.AsyncClient]


def config_for(tmp_path: Path, source: Path, sections: dict[str, Any]) -> RuntimeConfig:
    """`source` (a langgraph.json) with some top-level sections replaced, on a fresh database."""
    data = {**json.loads(source.read_text()), **sections}
    return config_from_dict(
        data, base_dir=source.parent, database=tmp_path / "db.sqlite", environ={}
    )


@contextlib.asynccontextmanager
async def serving(
    tmp_path: Path, source: Path = EXAMPLES, **sections: Any
) -> AsyncIterator[Served]:
    server = await RunningServer(config_for(tmp_path, source, sections)).start()
    sdk = get_client(url=server.url, api_key=None)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield sdk, http
    finally:
        await sdk.http.client.aclose()
        await server.stop()


@pytest.fixture
async def priced(tmp_path: Path) -> AsyncIterator[Served]:
    async with serving(tmp_path, agent_runtime={"pricing": PRICING}) as served:
        yield served


def says(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def echo_cost(inputs: int, outputs: int) -> float:
    return (inputs * 2.5 + outputs * 10.0) / 1_000_000


def model_usage(inputs: int, outputs: int, cost: float | None) -> dict[str, Any]:
    return {
        "input_tokens": inputs,
        "output_tokens": outputs,
        "total_tokens": inputs + outputs,
        "cost_usd": None if cost is None else pytest.approx(cost),
    }


def usage(**by_model: tuple[int, int]) -> dict[str, Any]:
    """The expected usage of a run or thread, pricing only the echo model."""
    models = {
        name: model_usage(i, o, echo_cost(i, o) if name == "echo" else None)
        for name, (i, o) in by_model.items()
    }
    inputs = sum(i for i, _ in by_model.values())
    outputs = sum(o for _, o in by_model.values())
    costs = [echo_cost(i, o) if name == "echo" else None for name, (i, o) in by_model.items()]
    total = None if None in costs else sum(c for c in costs if c is not None)
    return {**model_usage(inputs, outputs, total), "by_model": models}


async def run_on(http: httpx.AsyncClient, thread_id: str, **body: Any) -> tuple[str, Any]:
    """Run to the end with /runs/wait; returns (run_id, result)."""
    response = await http.post(f"/threads/{thread_id}/runs/wait", json=body)
    assert response.status_code == 200, response.text
    return response.headers["content-location"].rsplit("/", 1)[1], response.json()


async def new_thread(http: httpx.AsyncClient, **body: Any) -> str:
    response = await http.post("/threads", json=body)
    assert response.status_code == 200, response.text
    thread_id: str = response.json()["thread_id"]
    return thread_id


async def exists(http: httpx.AsyncClient, thread_id: str) -> bool:
    status = (await http.get(f"/threads/{thread_id}")).status_code
    assert status in (200, 404)
    return status == 200


async def wait_until_gone(http: httpx.AsyncClient, thread_id: str, *, within: float) -> None:
    deadline = time.monotonic() + within
    while await exists(http, thread_id):
        assert time.monotonic() < deadline, f"thread {thread_id} was not swept in {within} s"
        await asyncio.sleep(0.05)


async def history_length(http: httpx.AsyncClient, thread_id: str) -> int:
    return len((await http.get(f"/threads/{thread_id}/history", params={"limit": 100})).json())


# Tool-call log


async def test_tool_calls_are_logged_with_outcome_and_duration(
    client: LangGraphClient, http: httpx.AsyncClient
) -> None:
    thread_id = await new_thread(http)
    ok_run, _ = await run_on(http, thread_id, assistant_id="agent", input=says("what is 2 + 3"))
    bad_run, _ = await run_on(
        http, thread_id, assistant_id="agent", input=says('calculator {"expression": "1/0"}')
    )

    response = await http.get(f"/threads/{thread_id}/tool-calls")
    assert response.status_code == 200
    assert response.headers["x-pagination-total"] == "2"
    calls = response.json()
    variable = ("checkpoint_id", "started_at", "duration_ms")
    assert [{k: v for k, v in call.items() if k not in variable} for call in calls] == [
        {
            "id": "call_1_0",
            "name": "calculator",
            "args": {"expression": "2 + 3"},
            "status": "success",
            "result": "5",
            "error": None,
            "run_id": ok_run,
        },
        {
            "id": "call_5_0",
            "name": "calculator",
            "args": {"expression": "1/0"},
            "status": "error",
            "result": None,
            "error": '"1/0" divides by zero',
            "run_id": bad_run,
        },
    ]
    history = await client.threads.get_history(thread_id, limit=50)
    for call in calls:
        # The SDK types the stamps as datetimes; over JSON they are ISO strings.
        run = json_of(await client.runs.get(thread_id, call["run_id"]))
        created = datetime.fromisoformat(run["created_at"])
        ended = datetime.fromisoformat(run["updated_at"])
        assert created <= datetime.fromisoformat(call["started_at"]) <= ended
        assert isinstance(call["duration_ms"], float)
        assert 0 < call["duration_ms"] < (ended - created).total_seconds() * 1000
        # The checkpoint the call ran from is the one of that run waiting on the tools node.
        [source] = [
            s["checkpoint"]["checkpoint_id"]
            for s in history
            if s["next"] == ["tools"] and json_of(s["metadata"])["run_id"] == call["run_id"]
        ]
        assert call["checkpoint_id"] == source


async def test_tool_call_that_raises_is_logged_as_error(http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    await run_on(http, thread_id, assistant_id="agent", input=says('calculator {"expression": 5}'))
    [call] = (await http.get(f"/threads/{thread_id}/tool-calls")).json()
    assert (call["name"], call["args"], call["status"], call["result"]) == (
        "calculator",
        {"expression": 5},
        "error",
        None,
    )
    assert call["error"].startswith("ValidationError: 1 validation error for calculator\n")


async def test_tool_calls_filter_and_page(client: LangGraphClient, http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    both, _ = await run_on(
        http, thread_id, assistant_id="agent", input=says("what time is it in UTC and 2 * 21")
    )
    later, _ = await run_on(http, thread_id, assistant_id="agent", input=says("what is 1 + 1"))
    route = f"/threads/{thread_id}/tool-calls"

    async def listed(**params: Any) -> tuple[list[tuple[str, str]], str]:
        response = await http.get(route, params=params)
        assert response.status_code == 200
        calls = [(c["run_id"], c["name"]) for c in response.json()]
        return calls, response.headers["x-pagination-total"]

    # The first run's two calls run in parallel: oldest first leaves their order open.
    everything, total = await listed()
    assert total == "3"
    assert sorted(everything[:2]) == [(both, "calculator"), (both, "current_time")]
    assert everything[2] == (later, "calculator")
    assert await listed(name="calculator") == ([(both, "calculator"), (later, "calculator")], "2")
    assert await listed(name="current_time") == ([(both, "current_time")], "1")
    assert await listed(run_id=both) == (everything[:2], "2")
    assert await listed(run_id=later, name="current_time") == ([], "0")
    assert await listed(limit=1, offset=1) == ([everything[1]], "3")
    assert await listed(name="calculator", offset=1) == ([(later, "calculator")], "2")
    sdk_calls = await client.http.get(route, params={"run_id": later})
    assert [c["args"] for c in sdk_calls] == [{"expression": "1 + 1"}]


async def test_tool_calls_errors(http: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    response = await http.get(f"/threads/{missing}/tool-calls")
    assert response.status_code == 404
    assert response.json() == {
        "detail": f'Thread "{missing}" not found',
        "code": "thread_not_found",
    }
    thread_id = await new_thread(http)
    response = await http.get(f"/threads/{thread_id}/tool-calls", params={"run_id": "nope"})
    assert response.status_code == 422
    assert response.json() == {"detail": 'run_id must be a UUID, got "nope"', "code": "invalid_id"}
    response = await http.get(f"/threads/{thread_id}/tool-calls", params={"limit": 0})
    assert response.status_code == 422
    assert response.json()["detail"] == 'limit: value should be greater than or equal to 1, got "0"'


async def test_tool_calls_go_with_their_thread(http: httpx.AsyncClient) -> None:
    thread_id = await new_thread(http)
    await run_on(http, thread_id, assistant_id="agent", input=says("what is 2 + 3"))
    assert (await http.delete(f"/threads/{thread_id}")).status_code == 204
    await new_thread(http, thread_id=thread_id)
    assert (await http.get(f"/threads/{thread_id}/tool-calls")).json() == []


# Usage and cost


async def test_run_usage_comes_from_usage_metadata(priced: Served) -> None:
    client, http = priced
    thread_id = await new_thread(http)
    run_id, _ = await run_on(http, thread_id, assistant_id="chat", input=says("hello there"))
    # Input: the system prompt's "Current time (UTC): <time>" (4 words) and "hello there" (2);
    # output: "[offline model] You said: hello there" (6).
    assert json_of(await client.runs.get(thread_id, run_id))["usage"] == usage(echo=(6, 6))

    streamed = await new_thread(http)
    body = {"assistant_id": "chat", "input": says("hello there"), "stream_mode": "messages-tuple"}
    async with http.stream("POST", f"/threads/{streamed}/runs/stream", json=body) as response:
        assert response.status_code == 200
        await response.aread()
    [run] = await client.runs.list(streamed)
    assert json_of(run)["usage"] == usage(echo=(6, 6))


async def test_run_usage_counts_every_model_call(priced: Served) -> None:
    client, http = priced
    thread_id = await new_thread(http)
    run_id, _ = await run_on(http, thread_id, assistant_id="agent", input=says("what is 2 + 3"))
    # The tool call (5 in, 5 out), then the answer after the tool result (11 in, 4 out).
    assert json_of(await client.runs.get(thread_id, run_id))["usage"] == usage(echo=(16, 9))
    assert json_of(await client.threads.get(thread_id))["usage"] == usage(echo=(16, 9))


async def test_thread_usage_sums_runs_over_two_models(priced: Served) -> None:
    client, http = priced
    thread_id = await new_thread(http)
    first, _ = await run_on(http, thread_id, assistant_id="chat", input=says("hello there"))
    second, _ = await run_on(
        http, thread_id, assistant_id="chat", input=says("hi"), context={"model": "offline:other"}
    )
    third, _ = await run_on(http, thread_id, assistant_id="chat", input=says("ok"))

    runs = {run["run_id"]: run for run in await client.runs.list(thread_id)}
    # Each call's input is the system prompt's time line (4 words) and the conversation so far.
    assert json_of(runs[first])["usage"] == usage(echo=(6, 6))
    assert json_of(runs[second])["usage"] == usage(other=(13, 5))
    assert json_of(runs[third])["usage"] == usage(echo=(19, 5))
    assert json_of(runs[second])["usage"]["cost_usd"] is None

    thread = await client.threads.get(thread_id)
    assert json_of(thread)["usage"] == usage(echo=(25, 11), other=(13, 5))
    assert json_of(thread)["usage"]["cost_usd"] is None
    assert json_of(thread)["usage"]["by_model"]["echo"]["cost_usd"] == pytest.approx(
        echo_cost(25, 11)
    )
    assert json_of(thread)["run_count"] == 3
    assert json_of(thread)["first_run_at"] == runs[first]["created_at"]
    assert json_of(thread)["last_run_at"] == runs[third]["created_at"]


async def test_search_sorts_by_cost_with_unpriced_threads_last(priced: Served) -> None:
    _, http = priced
    cheap, dear, unpriced, unrun = [await new_thread(http, tags=["cost"]) for _ in range(4)]
    await run_on(http, cheap, assistant_id="chat", input=says("hi"))
    await run_on(http, dear, assistant_id="chat", input=says("a much longer message than hi"))
    await run_on(
        http, unpriced, assistant_id="chat", input=says("hi"), context={"model": "offline:other"}
    )

    async def order(sort_order: str) -> list[str]:
        body = {"tags": ["cost"], "sort_by": "cost_usd", "sort_order": sort_order}
        return [t["thread_id"] for t in (await http.post("/threads/search", json=body)).json()]

    descending, ascending = await order("desc"), await order("asc")
    assert descending[:2] == [dear, cheap]
    assert ascending[:2] == [cheap, dear]
    assert set(descending[2:]) == set(ascending[2:]) == {unpriced, unrun}


# Limits


async def test_limits_default(server: RunningServer) -> None:
    limits = server.services().config.limits
    assert limits == LimitsConfig()
    assert (limits.max_metadata_bytes, limits.max_messages_per_thread) == (16384, 10_000)
    assert (limits.inactivity_ttl_days, limits.max_age_days) == (None, None)


async def test_metadata_limit_default_is_16_kib(http: httpx.AsyncClient) -> None:
    # {"k":"..."} takes 8 bytes around the value.
    at_limit = {"k": "x" * (16384 - 8)}
    thread_id = await new_thread(http, metadata=at_limit)
    response = await http.post("/threads", json={"metadata": {"k": "x" * (16385 - 8)}})
    assert response.status_code == 413
    assert response.json() == {
        "detail": "The thread's metadata would be 16385 bytes, over the limit of 16384 bytes "
        "(agent_runtime.limits.max_metadata_bytes in langgraph.json)",
        "code": "metadata_too_large",
    }
    # Merging adds ,"k2":1 (7 bytes).
    response = await http.patch(f"/threads/{thread_id}", json={"metadata": {"k2": 1}})
    assert response.status_code == 413
    assert response.json()["detail"].startswith("The thread's metadata would be 16391 bytes,")
    assert (await http.get(f"/threads/{thread_id}")).json()["metadata"] == at_limit


async def test_metadata_limit_from_config(tmp_path: Path) -> None:
    limits = {"max_metadata_bytes": 100}
    async with serving(tmp_path, agent_runtime={"limits": limits}) as (_, http):
        response = await http.post("/threads", json={"metadata": {"k": "x" * 93}})
        assert response.status_code == 413
        assert response.json() == {
            "detail": "The thread's metadata would be 101 bytes, over the limit of 100 bytes "
            "(agent_runtime.limits.max_metadata_bytes in langgraph.json)",
            "code": "metadata_too_large",
        }
        thread_id = await new_thread(http, metadata={"a": "x" * 40})
        # Merged: {"a":"x…40","b":"y…50"} is 6 + 40 + 7 + 50 + 2 bytes.
        response = await http.patch(f"/threads/{thread_id}", json={"metadata": {"b": "y" * 50}})
        assert response.status_code == 413
        assert response.json()["detail"] == (
            "The thread's metadata would be 105 bytes, over the limit of 100 bytes "
            "(agent_runtime.limits.max_metadata_bytes in langgraph.json)"
        )
        assert (await http.get(f"/threads/{thread_id}")).json()["metadata"] == {"a": "x" * 40}
        fits = await http.patch(f"/threads/{thread_id}", json={"metadata": {"b": "y" * 40}})
        assert fits.status_code == 200


async def test_message_limit_refuses_a_run_whose_input_would_pass_it(tmp_path: Path) -> None:
    limits = {"max_messages_per_thread": 3}
    async with serving(tmp_path, agent_runtime={"limits": limits}) as (client, http):
        thread_id = await new_thread(http)
        await run_on(http, thread_id, assistant_id="chat", input=says("hi"))
        two = {"messages": [{"role": "user", "content": "a"}, {"role": "user", "content": "b"}]}
        run_id, result = await run_on(http, thread_id, assistant_id="chat", input=two)
        message = f"The thread would hold 4 messages, over the limit of 3 {LIMIT_HINT}"
        assert result == {"__error__": {"error": "MessageLimitError", "message": message}}
        run = await client.runs.get(thread_id, run_id)
        assert (run["status"], json_of(run)["error"]) == ("error", f"MessageLimitError: {message}")
        assert json_of(run)["usage"] is None
        state = await client.threads.get_state(thread_id)
        assert len(json_of(state["values"])["messages"]) == 2


async def test_message_limit_fails_a_run_that_would_pass_it(tmp_path: Path) -> None:
    limits = {"max_messages_per_thread": 3}
    async with serving(tmp_path, agent_runtime={"limits": limits}) as (client, http):
        thread_id = await new_thread(http)
        await run_on(http, thread_id, assistant_id="chat", input=says("hi"))
        # One message in fits (3), but the reply makes 4.
        run_id, result = await run_on(http, thread_id, assistant_id="chat", input=says("again"))
        message = f"The thread would hold 4 messages, over the limit of 3 {LIMIT_HINT}"
        assert result == {"__error__": {"error": "MessageLimitError", "message": message}}
        run = await client.runs.get(thread_id, run_id)
        assert (run["status"], json_of(run)["error"]) == ("error", f"MessageLimitError: {message}")
        # The limit holds: the refused run leaves no more than 3 messages behind.
        state = await client.threads.get_state(thread_id)
        assert len(json_of(state["values"])["messages"]) <= 3
        assert json_of(await client.threads.get(thread_id))["message_count"] <= 3


# The sweeper


async def test_sweeper_deletes_inactive_threads_and_holds_locked_ones(tmp_path: Path) -> None:
    limits = {"inactivity_ttl_days": TINY_DAYS, **SWEEP_FAST}
    async with serving(tmp_path, agent_runtime={"limits": limits}) as (_, http):
        started = time.monotonic()
        idle, locked, archived, touched = [await new_thread(http) for _ in range(4)]
        await http.patch(f"/threads/{locked}", json={"lifecycle": "locked"})
        await http.patch(f"/threads/{archived}", json={"lifecycle": "archived"})
        await asyncio.sleep(1.0)
        assert [await exists(http, t) for t in (idle, locked, archived, touched)] == [True] * 4
        await http.patch(f"/threads/{touched}", json={"metadata": {"still": "here"}})

        await wait_until_gone(http, idle, within=3.0)
        assert time.monotonic() - started >= 1.5
        await wait_until_gone(http, archived, within=0.5)
        assert await exists(http, touched)  # updated a second later, so it expires later
        await wait_until_gone(http, touched, within=3.0)
        assert (await http.get(f"/threads/{locked}")).json()["lifecycle"] == "locked"


async def test_sweeper_deletes_threads_past_max_age_even_when_active(tmp_path: Path) -> None:
    limits = {"max_age_days": TINY_DAYS, **SWEEP_FAST}
    async with serving(tmp_path, agent_runtime={"limits": limits}) as (_, http):
        started = time.monotonic()
        aged, locked = await new_thread(http), await new_thread(http)
        await http.patch(f"/threads/{locked}", json={"lifecycle": "locked"})
        for n in range(3):
            await asyncio.sleep(0.4)
            await http.patch(f"/threads/{aged}", json={"metadata": {"touch": n}})
        await wait_until_gone(http, aged, within=3.0)
        assert time.monotonic() - started >= 1.5
        assert await exists(http, locked)


async def test_sweeper_applies_each_threads_ttl(tmp_path: Path) -> None:
    async with serving(tmp_path, agent_runtime={"limits": SWEEP_FAST}) as (client, http):
        doomed = await client.threads.create(ttl={"strategy": "delete", "ttl": 0.01})
        assert json_of(doomed)["ttl"] == {"strategy": "delete", "ttl": 0.01}
        held = await client.threads.create(ttl={"strategy": "delete", "ttl": 0.01})
        await http.patch(f"/threads/{held['thread_id']}", json={"lifecycle": "locked"})
        keeper = await new_thread(http)
        await wait_until_gone(http, doomed["thread_id"], within=3.0)
        await asyncio.sleep(0.3)
        assert await exists(http, held["thread_id"])
        assert await exists(http, keeper)


async def test_sweeper_keep_latest_trims_plain_threads_and_spares_delta_channels(
    tmp_path: Path,
) -> None:
    limits = {"inactivity_ttl_days": TINY_DAYS / 2, "strategy": "keep_latest", **SWEEP_FAST}
    async with serving(tmp_path, FIXTURES, agent_runtime={"limits": limits}) as (client, http):
        plain, delta = await new_thread(http), await new_thread(http)
        slow = {"assistant_id": "slow", "input": {"steps": []}, "context": {"delay": 0.01}}
        await run_on(http, plain, **slow)
        await run_on(http, delta, assistant_id="chat", input=says("hi"))
        assert await history_length(http, plain) == 5
        assert await history_length(http, delta) == 3

        deadline = time.monotonic() + 4.0
        while await history_length(http, plain) > 1:
            assert time.monotonic() < deadline, "keep_latest did not trim the thread"
            await asyncio.sleep(0.05)
        state = await client.threads.get_state(plain)
        assert state["values"] == {"steps": ["one", "two", "three"]}
        assert state["parent_checkpoint"] is None
        assert await history_length(http, delta) == 3
        assert len(json_of((await client.threads.get_state(delta))["values"])["messages"]) == 2

        _, result = await run_on(http, plain, **slow)
        assert result == {"steps": ["one", "two", "three"] * 2}


async def test_checkpointer_default_ttl_applies_to_new_threads(tmp_path: Path) -> None:
    checkpointer = {"ttl": {"strategy": "keep_latest", "default_ttl": 0.02}}
    sections = {"checkpointer": checkpointer, "agent_runtime": {"limits": SWEEP_FAST}}
    async with serving(tmp_path, FIXTURES, **sections) as (client, http):
        defaulted = await client.threads.create()
        assert json_of(defaulted)["ttl"] == {"strategy": "keep_latest", "ttl": 0.02}
        explicit = await client.threads.create(ttl={"strategy": "delete", "ttl": 30})
        assert json_of(explicit)["ttl"] == {"strategy": "delete", "ttl": 30}
        thread_id = defaulted["thread_id"]
        body = {"assistant_id": "slow", "input": {"steps": []}, "context": {"delay": 0.01}}
        await run_on(http, thread_id, **body)
        assert await history_length(http, thread_id) == 5

        deadline = time.monotonic() + 4.0
        while await history_length(http, thread_id) > 1:
            assert time.monotonic() < deadline, "the default TTL did not trim the thread"
            await asyncio.sleep(0.05)
        assert (await client.threads.get(thread_id))["values"] == {"steps": ["one", "two", "three"]}
        assert await history_length(http, explicit["thread_id"]) == 0


async def test_checkpointer_default_ttl_applies_to_threads_runs_create(tmp_path: Path) -> None:
    checkpointer = {"ttl": {"strategy": "delete", "default_ttl": 30}}
    async with serving(tmp_path, FIXTURES, checkpointer=checkpointer) as (client, http):
        thread_id = str(uuid.uuid4())
        body = {"assistant_id": "slow", "input": {"steps": []}, "context": {"delay": 0}}
        await run_on(http, thread_id, **body, if_not_exists="create")
        assert json_of(await client.threads.get(thread_id))["ttl"] == {
            "strategy": "delete",
            "ttl": 30,
        }
        kept = await http.post("/runs/wait", json={**body, "on_completion": "keep"})
        kept_id = kept.headers["content-location"].split("/")[2]
        assert json_of(await client.threads.get(kept_id))["ttl"] == {
            "strategy": "delete",
            "ttl": 30,
        }


async def test_checkpointer_sweep_interval_minutes_paces_the_sweeper(tmp_path: Path) -> None:
    ttl = {"strategy": "delete", "default_ttl": 0.005, "sweep_interval_minutes": 0.002}
    async with serving(tmp_path, checkpointer={"ttl": ttl}) as (_, http):
        thread_id = await new_thread(http)
        # 0.3 s to live, swept every 0.12 s: gone well within 3 s.
        await wait_until_gone(http, thread_id, within=3.0)


# Prune


async def test_prune_deletes_and_skips_locked_busy_and_unknown_threads(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    slow = {"assistant_id": "slow", "input": {"steps": []}, "context": {"delay": 0.01}}
    idle, archived, locked, busy = [await new_thread(rhttp) for _ in range(4)]
    await run_on(rhttp, idle, **slow)
    await rhttp.patch(f"/threads/{archived}", json={"lifecycle": "archived"})
    await rhttp.patch(f"/threads/{locked}", json={"lifecycle": "locked"})
    running = await rclient.runs.create(busy, "slow", input={"steps": []}, context={"delay": 1})
    unknown = str(uuid.uuid4())

    result = await rclient.threads.prune([idle, archived, locked, busy, unknown, idle])
    assert result == {
        "pruned_count": 2,
        "skipped": [
            {"thread_id": locked, "reason": "locked threads are held; unlock it first"},
            {"thread_id": busy, "reason": "a run is active on it"},
            {"thread_id": unknown, "reason": "not found"},
        ],
    }
    for gone in (idle, archived):
        response = await rhttp.get(f"/threads/{gone}/history")
        assert response.status_code == 404
    assert await exists(rhttp, locked)
    assert await exists(rhttp, busy)
    await rclient.runs.cancel(busy, running["run_id"], wait=True)


async def test_prune_keep_latest_refuses_delta_channel_threads(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    plain, delta = await new_thread(rhttp), await new_thread(rhttp)
    await run_on(rhttp, plain, assistant_id="slow", input={"steps": []}, context={"delay": 0.01})
    await run_on(rhttp, delta, assistant_id="chat", input=says("hi"))
    delta_history = await rclient.threads.get_history(delta)

    result = await rclient.threads.prune([plain, delta], strategy="keep_latest")
    assert result == {
        "pruned_count": 1,
        "skipped": [
            {
                "thread_id": delta,
                "reason": "keep_latest cannot prune a thread that uses a DeltaChannel",
            }
        ],
    }
    [latest] = await rclient.threads.get_history(plain)
    assert latest["values"] == {"steps": ["one", "two", "three"]}
    assert latest["parent_checkpoint"] is None
    assert await rclient.threads.get_history(delta) == delta_history


async def test_prune_request_errors(rhttp: httpx.AsyncClient) -> None:
    cases = [
        (
            {"thread_ids": []},
            "thread_ids: list should have at least 1 item after validation, not 0, got []",
            "validation_error",
        ),
        ({"thread_ids": ["nope"]}, 'thread_ids[] must be a UUID, got "nope"', "invalid_id"),
        (
            {"thread_ids": [str(uuid.uuid4())], "strategy": "shred"},
            "strategy: value should be 'delete' or 'keep_latest', got \"shred\"",
            "validation_error",
        ),
        ({}, 'The request body is missing the required field "thread_ids"', "validation_error"),
    ]
    for body, detail, code in cases:
        response = await rhttp.post("/threads/prune", json=body)
        assert response.status_code == 422
        assert response.json() == {"detail": detail, "code": code}
