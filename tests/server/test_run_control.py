"""Run control beyond cancelling: after_seconds, webhooks, strict_resume, the thread status runs
leave, listing runs and the run shape."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import pytest
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.config import config_from_dict
from agent_runtime.registry import default_assistant_id
from tests.conftest import RunningServer, json_of
from tests.server.conftest import RUNS_CONFIG
from tests.server.run_probes import (
    EMPTY,
    MISSING,
    THREE,
    body_of,
    status_of,
    thread_status,
    until_status,
)

# after_seconds


async def test_after_seconds_delays_the_run_but_not_other_threads(
    rclient: LangGraphClient,
) -> None:
    loop = asyncio.get_running_loop()
    delayed_tid = (await rclient.threads.create())["thread_id"]
    other_tid = (await rclient.threads.create())["thread_id"]
    started = loop.time()
    delayed = await rclient.runs.create(
        delayed_tid, "slow", input=EMPTY, context={"delay": 0}, after_seconds=1
    )
    assert delayed["status"] == "pending"
    assert json_of(delayed)["kwargs"]["after_seconds"] == 1

    prompt = await rclient.runs.create(other_tid, "slow", input=EMPTY, context={"delay": 0})
    assert await rclient.runs.join(other_tid, prompt["run_id"]) == {"steps": THREE}
    assert loop.time() - started < 0.8
    await asyncio.sleep(max(0.0, 0.7 - (loop.time() - started)))
    assert await status_of(rclient, delayed_tid, delayed["run_id"]) == "pending"
    assert await thread_status(rclient, delayed_tid) == "busy"

    await until_status(rclient, delayed_tid, delayed["run_id"], "running", "success", within=2)
    assert loop.time() - started >= 1.0
    assert await rclient.runs.join(delayed_tid, delayed["run_id"]) == {"steps": THREE}
    assert loop.time() - started < 2.0
    assert await thread_status(rclient, delayed_tid) == "idle"


async def test_after_seconds_negative_is_refused(rhttp: httpx.AsyncClient) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    response = await rhttp.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "after_seconds": -1}
    )
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith("after_seconds: ")


# Webhooks


class WebhookReceiver:
    """A tiny HTTP/1.1 server that records each request it gets and answers 204."""

    def __init__(self) -> None:
        self.requests: asyncio.Queue[tuple[str, dict[str, str], bytes]] = asyncio.Queue()
        self.url = ""
        self._server: asyncio.Server | None = None

    async def start(self) -> WebhookReceiver:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        port = self._server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/hook"
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = (await reader.readuntil(b"\r\n\r\n")).decode("latin-1")
        request_line, *lines = head.split("\r\n")
        headers = {}
        for line in lines:
            name, _, value = line.partition(":")
            if name:
                headers[name.strip().lower()] = value.strip()
        body = await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.put_nowait((request_line, headers, body))
        writer.write(b"HTTP/1.1 204 No Content\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        await writer.drain()
        writer.close()
        with contextlib.suppress(ConnectionError):
            await writer.wait_closed()


@pytest.fixture
async def receiver() -> AsyncIterator[WebhookReceiver]:
    running = await WebhookReceiver().start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def hook_server(database: Path) -> AsyncIterator[RunningServer]:
    data = json.loads(RUNS_CONFIG.read_text())
    data["agent_runtime"] = {"webhooks_allow_private": True}
    config = config_from_dict(data, base_dir=RUNS_CONFIG.parent, database=database, environ={})
    assert config.webhooks_allow_private is True
    running = await RunningServer(config).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.mark.timeout(20)
async def test_webhook_receives_the_finished_run(
    hook_server: RunningServer, receiver: WebhookReceiver
) -> None:
    sdk = get_client(url=hook_server.url, api_key=None)
    try:
        tid = (await sdk.threads.create())["thread_id"]
        run = await sdk.runs.create(
            tid, "slow", input=EMPTY, context={"delay": 0}, webhook=receiver.url
        )
        request_line, headers, body = await asyncio.wait_for(receiver.requests.get(), 5)
        stored = await sdk.runs.get(tid, run["run_id"])
    finally:
        await sdk.http.client.aclose()
    assert request_line == "POST /hook HTTP/1.1"
    assert headers["content-type"] == "application/json"
    posted = json.loads(body)
    assert posted["run_id"] == run["run_id"]
    assert posted["thread_id"] == tid
    assert posted["status"] == "success"
    assert posted["kwargs"]["webhook"] == receiver.url
    assert posted == stored

    # A cancelled run ends too, and is posted as it ended.
    sdk = get_client(url=hook_server.url, api_key=None)
    try:
        run = await sdk.runs.create(
            tid, "slow", input=EMPTY, context={"delay": 1}, webhook=receiver.url
        )
        await until_status(sdk, tid, run["run_id"], "running")
        await sdk.runs.cancel(tid, run["run_id"])
        _, _, body = await asyncio.wait_for(receiver.requests.get(), 5)
    finally:
        await sdk.http.client.aclose()
    posted = json.loads(body)
    assert (posted["run_id"], posted["status"]) == (run["run_id"], "interrupted")


async def test_webhook_to_loopback_is_refused_by_default(
    rhttp: httpx.AsyncClient, receiver: WebhookReceiver
) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    body = {"assistant_id": "slow", "input": EMPTY, "webhook": receiver.url}
    for path in (f"/threads/{tid}/runs", f"/threads/{tid}/runs/stream", "/runs/wait"):
        response = await rhttp.post(path, json=body)
        assert response.status_code == 422, path
        error = body_of(response)
        assert error["code"] == "webhook_refused"
        assert error["detail"].startswith(
            'webhook: "127.0.0.1" resolves to 127.0.0.1, a private or loopback address; '
        )
        # The way out must name the key the config actually reads.
        assert '"webhooks_allow_private": true' in error["detail"], error["detail"]
    assert (await rhttp.get(f"/threads/{tid}/runs")).json() == []
    assert receiver.requests.empty()

    response = await rhttp.post(
        f"/threads/{tid}/runs", json={"assistant_id": "slow", "webhook": "ftp://example.com/x"}
    )
    assert response.status_code == 422
    assert response.json()["detail"] == 'webhook: "ftp://example.com/x" is not an http or https URL'


async def test_webhook_refusal_advice_is_a_valid_config(tmp_path: Path) -> None:
    """Following the refusal's advice must give a config that allows private webhooks."""
    config = config_from_dict(
        {"graphs": {"slow": "./graphs.py:slow"}, "agent_runtime": {"webhooks_allow_private": True}},
        base_dir=RUNS_CONFIG.parent,
        database=tmp_path / "db.sqlite",
        environ={},
    )
    assert config.webhooks_allow_private is True


# strict_resume


async def test_strict_resume_on_thread_not_interrupted(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    body = {"assistant_id": "nested", "command": {"resume": "yes"}, "strict_resume": True}
    detail = (
        f'Thread "{tid}" is idle, not interrupted, so there is nothing to resume '
        "(strict_resume is set)"
    )
    for path in ("/runs", "/runs/wait", "/runs/stream"):
        response = await rhttp.post(f"/threads/{tid}{path}", json=body)
        assert response.status_code == 409, path
        assert body_of(response) == {"detail": detail, "code": "nothing_to_resume"}, path
    assert await rclient.runs.list(tid) == []

    paused = await rclient.runs.wait(tid, "nested", input=EMPTY)
    assert json_of(paused)["__interrupt__"][0]["value"] == {"question": "continue?"}
    assert await thread_status(rclient, tid) == "interrupted"
    done = await rclient.runs.wait(tid, "nested", command={"resume": "yes"}, strict_resume=True)
    assert json_of(done)["steps"][-1] == "after"
    assert await thread_status(rclient, tid) == "idle"

    response = await rhttp.post(f"/threads/{tid}/runs", json=body)
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_resume"


async def test_strict_resume_on_a_thread_it_would_create(rhttp: httpx.AsyncClient) -> None:
    tid = "22222222-2222-4222-8222-222222222222"
    response = await rhttp.post(
        f"/threads/{tid}/runs",
        json={
            "assistant_id": "nested",
            "command": {"resume": "yes"},
            "strict_resume": True,
            "if_not_exists": "create",
        },
    )
    # A thread created for this run has nothing to resume: the refusal is strict_resume's.
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_resume"
    assert (await rhttp.get(f"/threads/{tid}")).status_code == 404
    # A stateless run's thread is always new, so the same holds.
    response = await rhttp.post(
        "/runs", json={"assistant_id": "nested", "command": {"resume": 1}, "strict_resume": True}
    )
    assert response.status_code == 409
    assert response.json()["code"] == "nothing_to_resume"


async def test_strict_resume_after_a_failed_run(rhttp: httpx.AsyncClient) -> None:
    tid = (await rhttp.post("/threads", json={})).json()["thread_id"]
    await rhttp.post(f"/threads/{tid}/runs/wait", json={"assistant_id": "failing", "input": EMPTY})
    response = await rhttp.post(
        f"/threads/{tid}/runs",
        json={"assistant_id": "nested", "command": {"resume": 1}, "strict_resume": True},
    )
    assert response.status_code == 409
    assert response.json() == {
        "detail": f'Thread "{tid}" is error, not interrupted, so there is nothing to resume '
        "(strict_resume is set)",
        "code": "nothing_to_resume",
    }


# Thread status and listing runs


async def test_thread_status_follows_runs(rclient: LangGraphClient) -> None:
    failed = (await rclient.threads.create())["thread_id"]
    assert await thread_status(rclient, failed) == "idle"
    await rclient.runs.wait(failed, "failing", input=EMPTY, raise_error=False)
    assert await thread_status(rclient, failed) == "error"

    paused = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(paused, "nested", input=EMPTY)
    thread = await rclient.threads.get(paused)
    assert thread["status"] == "interrupted"
    assert [i["value"] for group in thread["interrupts"].values() for i in group] == [
        {"question": "continue?"}
    ]
    await rclient.runs.wait(paused, "nested", command={"resume": "yes"})
    thread = await rclient.threads.get(paused)
    assert thread["status"] == "idle"
    assert thread["interrupts"] == {}

    recovered = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(recovered, "slow", input=EMPTY, context={"delay": 0})
    await rclient.runs.wait(recovered, "failing", input=EMPTY, raise_error=False)
    assert await thread_status(rclient, recovered) == "error"
    await rclient.runs.wait(recovered, "slow", input=EMPTY, context={"delay": 0})
    assert await thread_status(rclient, recovered) == "idle"


async def test_list_runs_filters_and_pages(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    made = []
    for graph in ("slow", "failing", "slow", "slow"):
        run = await rclient.runs.create(tid, graph, input=EMPTY, context={"delay": 0})
        await rclient.runs.join(tid, run["run_id"])
        made.append(run["run_id"])
    newest_first = list(reversed(made))
    url = f"/threads/{tid}/runs"

    async def ids(**params: Any) -> list[str]:
        response = await rhttp.get(url, params=params)
        assert response.status_code == 200, response.text
        return [r["run_id"] for r in response.json()]

    assert await ids() == newest_first
    assert await ids(status="success") == [made[3], made[2], made[0]]
    assert await ids(status="error") == [made[1]]
    assert await ids(status="pending") == []
    assert await ids(limit=2) == newest_first[:2]
    assert await ids(limit=2, offset=1) == newest_first[1:3]
    assert await ids(offset=3) == newest_first[3:]
    assert await ids(offset=10) == []
    assert await ids(status="success", limit=1, offset=1) == [made[2]]
    sdk = await rclient.runs.list(tid, status="success", limit=2)
    assert [r["run_id"] for r in sdk] == [made[3], made[2]]

    for params, field in (
        ({"status": "done"}, "status"),
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
    ):
        response = await rhttp.get(url, params=params)
        assert response.status_code == 422, params
        assert response.json()["code"] == "validation_error"
        assert response.json()["detail"].startswith(f"{field}: ")
    response = await rhttp.get(f"/threads/{MISSING}/runs")
    assert response.status_code == 404
    assert response.json()["detail"] == f'Thread "{MISSING}" not found'


async def test_list_runs_select(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await rclient.runs.create(tid, "slow", input=EMPTY, context={"delay": 0})
    await rclient.runs.join(tid, run["run_id"])

    # The SDK sends one `select` parameter per field.
    # `select` trims the fields: these are not whole Runs, as the SDK declares.
    picked: list[Any] = await rclient.runs.list(tid, select=["run_id", "status"])
    assert picked == [{"run_id": run["run_id"], "status": "success"}]
    response = await rhttp.get(f"/threads/{tid}/runs", params={"select": "run_id"})
    assert response.status_code == 200
    assert response.json() == [{"run_id": run["run_id"]}]
    response = await rhttp.get(f"/threads/{tid}/runs", params={"select": "colour"})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert "colour" in response.json()["detail"]


# Run shape


async def test_run_shape(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    created = await rhttp.post(
        f"/threads/{tid}/runs",
        json={
            "assistant_id": "slow",
            "input": EMPTY,
            "context": {"delay": 0},
            "metadata": {"purpose": "shape"},
        },
    )
    assert created.status_code == 200
    run = created.json()
    rid = run["run_id"]
    assert created.headers["content-location"] == f"/threads/{tid}/runs/{rid}"
    await rclient.runs.join(tid, rid)

    response = await rhttp.get(f"/threads/{tid}/runs/{rid}")
    assert response.status_code == 200
    final = response.json()
    # The fields every run carries; extensions (usage) may sit beside them.
    assert set(final) >= {
        "run_id",
        "thread_id",
        "assistant_id",
        "created_at",
        "updated_at",
        "status",
        "metadata",
        "multitask_strategy",
        "kwargs",
        "attempt",
        "error",
    }
    assert final["run_id"] == rid
    assert final["thread_id"] == tid
    assert final["assistant_id"] == default_assistant_id("slow")
    assert final["status"] == "success"
    assert final["metadata"] == {"purpose": "shape"}
    assert final["multitask_strategy"] == "enqueue"
    assert final["kwargs"]["input"] == EMPTY
    assert final["kwargs"]["context"] == {"delay": 0}
    assert final["kwargs"]["stream_mode"] == ["values"]
    assert final["attempt"] == 1
    assert final["error"] is None
    created_at = datetime.fromisoformat(final["created_at"])
    updated_at = datetime.fromisoformat(final["updated_at"])
    assert created_at.tzinfo is not None
    assert created_at == datetime.fromisoformat(run["created_at"])
    assert created_at <= updated_at
    assert run["status"] == "pending"
    assert run["attempt"] == 0

    response = await rhttp.get(f"/threads/{tid}/runs/{MISSING}")
    assert response.status_code == 404
    assert response.json()["code"] == "run_not_found"
    response = await rhttp.get(f"/threads/{tid}/runs/nope")
    assert response.status_code == 422
    assert response.json() == {"detail": 'run_id must be a UUID, got "nope"', "code": "invalid_id"}
