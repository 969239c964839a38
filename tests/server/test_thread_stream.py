"""A thread's stream through langgraph_sdk and raw httpx: it follows run after run while the
client stays, its three modes (run_modes, lifecycle, state_update), its `<run_id>:<n>` ids and
reconnecting with them, and its errors."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.schema import StreamPart

STEPS: dict[str, Any] = {"steps": []}
THREE = ["one", "two", "three"]
MISSING = "00000000-0000-4000-8000-000000000000"
TIMEOUT = 15
# The `slow` graph's own stream under ["values", "updates"], without its `end`.
RUN_EVENTS = ["metadata"] + ["values", "updates"] * 3 + ["values"]


@dataclass(frozen=True, slots=True)
class Frame:
    event: str
    data: Any
    id: str | None


async def frames(response: httpx.Response) -> AsyncGenerator[Frame, None]:
    """Parse a raw SSE body: `event`, `data` and an optional `id` line per frame."""
    lines: list[str] = []
    async for line in response.aiter_lines():
        if line.startswith(":"):
            continue
        if line:
            lines.append(line)
            continue
        fields = dict(field.partition(": ")[::2] for field in lines)
        assert list(fields)[:2] == ["event", "data"], lines
        lines = []
        yield Frame(event=fields["event"], data=json.loads(fields["data"]), id=fields.get("id"))


@contextlib.asynccontextmanager
async def thread_stream(
    rhttp: httpx.AsyncClient, url: str, **kwargs: Any
) -> AsyncIterator[AsyncIterator[Frame]]:
    """The frames of a stream opened with raw httpx, closed when the block ends."""
    async with rhttp.stream("GET", url, **kwargs) as response:
        assert response.status_code == 200
        async with contextlib.aclosing(frames(response)) as stream:
            yield stream


async def take_until(stream: AsyncIterator[Any], done: Callable[[list[Any]], bool]) -> list[Any]:
    """Items of a never-ending stream until `done` says enough."""
    taken: list[Any] = []
    async with asyncio.timeout(TIMEOUT):
        async for item in stream:
            taken.append(item)
            if done(taken):
                return taken
    raise AssertionError(f"the thread stream ended: {taken}")


def ends(count: int) -> Callable[[list[Any]], bool]:
    """Enough once `count` runs have ended (their end event: `metadata` with a final status)."""

    def done(taken: list[Any]) -> bool:
        finished = [p for p in taken if p.event == "metadata" and p.data.get("status") not in
                    (None, "running")]  # fmt: skip
        return len(finished) >= count

    return done


def names(parts: list[Any]) -> list[str]:
    return [part.event for part in parts]


async def start(client: LangGraphClient, thread_id: str, *, delay: float = 0, **kwargs: Any) -> str:
    run = await client.runs.create(
        thread_id,
        "slow",
        input=STEPS,
        stream_mode=["values", "updates"],  # type: ignore[arg-type]
        context={"delay": delay},
        **kwargs,
    )
    return run["run_id"]


def end_of(run_id: str, thread_id: str, status: str = "success") -> dict[str, Any]:
    return {"run_id": run_id, "thread_id": thread_id, "status": status}


async def test_thread_stream_follows_run_after_run(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    # Queued for a second, so the stream is surely connected before the run starts.
    first = await start(rclient, tid, after_seconds=1)
    stream = await rclient.threads.join_stream(tid)
    async with contextlib.aclosing(stream) as parts:  # type: ignore[type-var]
        reading = asyncio.create_task(take_until(parts, ends(2)))
        await rclient.runs.join(tid, first)
        second = await start(rclient, tid)
        seen: list[StreamPart] = await reading
    assert names(seen) == [*RUN_EVENTS, "metadata", *RUN_EVENTS, "metadata"]
    one, two = seen[: len(RUN_EVENTS) + 1], seen[len(RUN_EVENTS) + 1 :]
    assert one[0].data == {"run_id": first, "attempt": 1}
    assert one[-1].data == end_of(first, tid)
    assert two[0].data == {"run_id": second, "attempt": 1}
    assert two[-1].data == end_of(second, tid)
    assert two[-2].data == {"steps": THREE * 2}
    # Ids name the run and its own event number; the end event takes the run's `end` id.
    assert [p.id for p in one] == [f"{first}:{n}" for n in [*range(1, 9), 9]]
    assert [p.id for p in two] == [f"{second}:{n}" for n in [*range(1, 9), 9]]


async def test_thread_stream_lifecycle_only(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start(rclient, tid, after_seconds=1)
    stream = await rclient.threads.join_stream(tid, stream_mode="lifecycle")
    async with contextlib.aclosing(stream) as parts:  # type: ignore[type-var]
        reading = asyncio.create_task(take_until(parts, ends(2)))
        await rclient.runs.join(tid, first)
        failing = await rclient.runs.create(tid, "failing", input=STEPS)
        seen: list[StreamPart] = await reading
    second = failing["run_id"]
    assert [(p.event, p.data, p.id) for p in seen] == [
        ("metadata", end_of(first, tid, "running"), f"{first}:0"),
        ("metadata", end_of(first, tid), f"{first}:9"),
        ("metadata", end_of(second, tid, "running"), f"{second}:0"),
        ("metadata", end_of(second, tid, "error"), f"{second}:5"),
    ]


async def test_thread_stream_state_update(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start(rclient, tid)
    await rclient.runs.join(tid, first)
    async with rhttp.stream(
        "GET", f"/threads/{tid}/stream", params={"stream_mode": "state_update"}
    ) as response:
        assert response.status_code == 200
        assert response.headers["location"] == f"/threads/{tid}/stream?stream_mode=state_update"
        async with contextlib.aclosing(frames(response)) as stream:
            second = await start(rclient, tid)
            [after_run] = await take_until(stream, lambda seen: len(seen) == 1)
            await rclient.runs.join(tid, second)
            # A change outside any run: it has no id, so a reconnect position stays put.
            await rclient.threads.update_state(tid, {"steps": ["by hand"]}, as_node="three")
            [by_hand] = await take_until(stream, lambda seen: len(seen) == 1)
    assert after_run == Frame(event="values", data={"steps": THREE * 2}, id=f"{second}:9")
    assert by_hand == Frame(event="values", data={"steps": [*THREE * 2, "by hand"]}, id=None)


async def test_thread_stream_resumes_across_runs_with_last_event_id(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first = await start(rclient, tid, after_seconds=1)
    url = f"/threads/{tid}/stream"
    async with (
        rhttp.stream("GET", url) as response,
        contextlib.aclosing(frames(response)) as stream,
    ):
        head = await take_until(stream, lambda seen: len(seen) == 3)
    assert [f.id for f in head] == [f"{first}:1", f"{first}:2", f"{first}:3"]
    # Disconnected while the first run goes on; a second one runs and ends meanwhile.
    await rclient.runs.join(tid, first)
    second = await start(rclient, tid)
    await rclient.runs.join(tid, second)
    async with thread_stream(rhttp, url, headers={"Last-Event-ID": head[-1].id}) as stream:
        rest = await take_until(stream, ends(2))
    assert [f.id for f in rest] == [f"{first}:{n}" for n in range(4, 10)] + [
        f"{second}:{n}" for n in range(1, 10)
    ]
    assert names(rest) == [*RUN_EVENTS[3:], "metadata", *RUN_EVENTS, "metadata"]
    # -1: every run the event log still holds, oldest first.
    async with thread_stream(rhttp, url, headers={"Last-Event-ID": "-1"}) as stream:
        everything = await take_until(stream, ends(2))
    assert everything[3:] == rest
    # Resuming after the last run's end event: nothing again, then the next run.
    async with thread_stream(rhttp, url, headers={"Last-Event-ID": rest[-1].id}) as stream:
        third = await start(rclient, tid)
        more = await take_until(stream, ends(1))
    assert [f.id for f in more] == [f"{third}:{n}" for n in range(1, 10)]


async def test_thread_stream_active_run_is_followed_from_now(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await start(rclient, tid, delay=0.3)
    async with rhttp.stream("GET", f"/threads/{tid}/runs/{run}/stream", headers={
        "Last-Event-ID": "-1"
    }) as watch, contextlib.aclosing(frames(watch)) as run_stream:  # fmt: skip
        await take_until(run_stream, lambda seen: len(seen) == 3)
        async with thread_stream(rhttp, f"/threads/{tid}/stream") as stream:
            tail = await take_until(stream, ends(1))
    first_id = int((tail[0].id or "").partition(":")[2])
    assert first_id > 3, "events published before connecting were replayed"
    assert [f.id for f in tail] == [f"{run}:{n}" for n in range(first_id, 10)]
    assert tail[-1].data == end_of(run, tid)


async def test_thread_stream_errors(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    url = f"/threads/{tid}/stream"
    response = await rhttp.get(url, params={"stream_mode": ["lifecycle", "values"]})
    assert response.status_code == 422
    assert response.json() == {
        "detail": 'stream_mode: unknown stream mode "values"; the modes are run_modes, '
        "lifecycle, state_update",
        "code": "invalid_stream_mode",
    }
    response = await rhttp.get(url, headers={"Last-Event-ID": "7"})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "Last-Event-ID on a thread's stream must be the id of the last event "
        'received ("<run_id>:<n>") or -1 to replay every run still held, got "7"',
        "code": "invalid_last_event_id",
    }
    response = await rhttp.get(f"/threads/{MISSING}/stream")
    assert response.status_code == 404
    assert response.json()["code"] == "thread_not_found"
