"""Token usage of `openai-compatible:` models, streamed and waited, against a fake
OpenAI-compatible server on 127.0.0.1 (the only fake: the model behind the HTTP API)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from tests.conftest import ROOT, RunningServer, json_of

from agent_runtime.config import config_from_dict
from agent_runtime.models import load_chat_model

pytest.importorskip("langchain_openai")

MODEL = "fake-gpt"
REPLY = ["Hello", " from", " the", " fake"]
PROMPT_TOKENS, COMPLETION_TOKENS = 17, 4
PRICE = {"input_per_million": 1.0, "output_per_million": 2.0}


class FakeOpenAI:
    """`POST /v1/chat/completions` as OpenAI answers it: SSE chunks when `stream` is set (with
    a last, choice-less usage chunk only if `stream_options.include_usage`), else one JSON body."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.url = ""
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None

    async def completions(self, request: Request) -> Response:
        body = await request.json()
        self.requests.append(body)
        usage = {
            "prompt_tokens": PROMPT_TOKENS,
            "completion_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
        }
        head = {"id": "chatcmpl-fake", "created": 1_700_000_000, "model": MODEL}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(REPLY)}
            return JSONResponse(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [{"index": 0, "message": message, "finish_reason": "stop"}],
                    "usage": usage,
                }
            )
        include_usage = (body.get("stream_options") or {}).get("include_usage")

        async def chunks() -> AsyncIterator[str]:
            chunk = {**head, "object": "chat.completion.chunk"}
            for n, piece in enumerate(REPLY):
                delta = {"role": "assistant", "content": piece} if n == 0 else {"content": piece}
                choice = {"index": 0, "delta": delta, "finish_reason": None}
                yield f"data: {json.dumps({**chunk, 'choices': [choice]})}\n\n"
            done = {"index": 0, "delta": {}, "finish_reason": "stop"}
            yield f"data: {json.dumps({**chunk, 'choices': [done]})}\n\n"
            if include_usage:
                yield f"data: {json.dumps({**chunk, 'choices': [], 'usage': usage})}\n\n"
            yield "data: [DONE]\n\n"

        return StreamingResponse(chunks(), media_type="text/event-stream")

    async def start(self) -> FakeOpenAI:
        app = Starlette(routes=[Route("/v1/chat/completions", self.completions, methods=["POST"])])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            assert not self._task.done(), "the fake OpenAI server stopped during start-up"
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/v1"
        return self

    async def stop(self) -> None:
        assert self._server is not None and self._task is not None
        self._server.should_exit = True
        await self._task


@pytest.fixture
async def fake_openai(monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[FakeOpenAI]:
    fake = await FakeOpenAI().start()
    monkeypatch.setenv("OPENAI_BASE_URL", fake.url)
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    try:
        yield fake
    finally:
        await fake.stop()


@pytest.fixture
async def served(
    tmp_path: Path, fake_openai: FakeOpenAI
) -> AsyncIterator[tuple[LangGraphClient, httpx.AsyncClient]]:
    data = json.loads((ROOT / "langgraph.json").read_text())
    data["agent_runtime"] = {"pricing": {MODEL: PRICE}}
    config = config_from_dict(data, base_dir=ROOT, database=tmp_path / "db.sqlite", environ={})
    server = await RunningServer(config).start()
    sdk = get_client(url=server.url, api_key=None)
    try:
        async with httpx.AsyncClient(base_url=server.url, timeout=30) as http:
            yield sdk, http
    finally:
        await sdk.http.client.aclose()
        await server.stop()


@pytest.fixture
async def run_body(fake_openai: FakeOpenAI) -> AsyncIterator[dict[str, Any]]:
    # A spec per test: chat models are cached per spec, with the base URL of their first load.
    spec = f"openai-compatible:{MODEL}-{uuid.uuid4().hex[:8]}"
    yield {
        "input": {"messages": [{"role": "user", "content": "hi"}]},
        "context": {"model": spec},
    }
    # The cached model keeps its connections to the fake server open; close them here.
    model: Any = load_chat_model(spec)
    await model.root_async_client.close()


EXPECTED_COST = (PROMPT_TOKENS * 1.0 + COMPLETION_TOKENS * 2.0) / 1_000_000
EXPECTED_USAGE = {
    "input_tokens": PROMPT_TOKENS,
    "output_tokens": COMPLETION_TOKENS,
    "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
    "cost_usd": pytest.approx(EXPECTED_COST),
    "by_model": {
        MODEL: {
            "input_tokens": PROMPT_TOKENS,
            "output_tokens": COMPLETION_TOKENS,
            "total_tokens": PROMPT_TOKENS + COMPLETION_TOKENS,
            "cost_usd": pytest.approx(EXPECTED_COST),
        }
    },
}


@pytest.mark.timeout(30)
async def test_streamed_and_waited_runs_record_the_same_usage(
    served: tuple[LangGraphClient, httpx.AsyncClient],
    fake_openai: FakeOpenAI,
    run_body: dict[str, Any],
) -> None:
    client, _ = served
    body = run_body
    waited = await client.threads.create()
    await client.runs.wait(waited["thread_id"], "chat", **body)
    streamed = await client.threads.create()
    events = [
        part
        async for part in client.runs.stream(
            streamed["thread_id"], "chat", stream_mode="messages-tuple", **body
        )
    ]

    # The streamed run really streamed, token by token, and asked for its usage.
    pieces = [e.data[0]["content"] for e in events if e.event == "messages"]
    assert "".join(pieces) == "".join(REPLY)
    [plain, streaming] = fake_openai.requests
    assert "stream" not in plain or plain["stream"] is False
    assert streaming["stream"] is True
    assert streaming["stream_options"] == {"include_usage": True}

    for thread in (waited, streamed):
        [run] = await client.runs.list(thread["thread_id"])
        assert run["status"] == "success"
        assert json_of(run)["usage"] == EXPECTED_USAGE
        assert json_of(await client.threads.get(thread["thread_id"]))["usage"] == EXPECTED_USAGE


@pytest.mark.timeout(30)
async def test_streamed_run_over_raw_sse_records_usage(
    served: tuple[LangGraphClient, httpx.AsyncClient], run_body: dict[str, Any]
) -> None:
    client, http = served
    thread_id = (await client.threads.create())["thread_id"]
    body = {**run_body, "assistant_id": "chat", "stream_mode": ["messages-tuple", "values"]}
    async with http.stream("POST", f"/threads/{thread_id}/runs/stream", json=body) as response:
        assert response.status_code == 200
        text = (await response.aread()).decode()
    assert "event: error" not in text
    [run] = await client.runs.list(thread_id)
    assert json_of(run)["usage"] == EXPECTED_USAGE
