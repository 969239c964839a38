"""The server as browser clients see it, in a real headless Chromium: a page on another
localhost origin connects, streams runs, shows an interrupt and resumes it; a page on an origin
that is not allowed is refused, and the run it asked for never happens."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext

from agent_runtime import __version__
from agent_runtime.cli import dev_defaults
from tests.browser.conftest import EVIL_HOST, BrowserPage, PageServer, open_page
from tests.conftest import RunningServer, example_config, raw_client

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def dev_api(database: Path) -> AsyncIterator[RunningServer]:
    """The example graphs as `agent-runtime dev` serves them: with its default origins."""
    running = await RunningServer(dev_defaults(example_config(database))).start()
    try:
        yield running
    finally:
        await running.stop()


async def _text(page: BrowserPage, element: str) -> str:
    return await page.page.inner_text(f"#{element}")


async def _run_step(page: BrowserPage, call: str) -> tuple[str, str]:
    """Run one of the page's steps; return its status line and its error, if any."""
    await page.page.evaluate(f"steps.{call}")
    return await _text(page, "status"), await _text(page, "error")


async def _events(page: BrowserPage) -> list[str]:
    return await page.page.locator("#events .event").all_inner_texts()


async def test_local_page_streams_a_run_and_resumes_an_interrupt(
    chromium: BrowserContext, page_server: PageServer, dev_api: RunningServer
) -> None:
    page = await open_page(chromium, page_server.url("localhost", dev_api.url))

    assert await _run_step(page, "connect()") == ("connect: done", "")
    assert await _text(page, "server") == f"version {__version__}"
    assert await _run_step(page, "createThread()") == ("createThread: done", "")
    thread_id = await _text(page, "thread")
    assert uuid.UUID(thread_id)

    assert await _run_step(page, "streamRun('chat', 'hello')") == ("streamRun: done", "")
    events = await _events(page)
    assert events[0] == "metadata"
    assert "values" in events
    assert set(events[1:]) <= {"values", "end"}
    assert await _text(page, "answer") != ""
    # Read from Content-Location, which the page sees only because it is exposed to it.
    assert (await _text(page, "reply")).startswith(f"/threads/{thread_id}/runs/")

    asked = "streamRun('approval', 'what is 6 * 7')"
    assert await _run_step(page, asked) == ("streamRun: done", "")
    interrupt = json.loads(await page.page.inner_text("#interrupt .raw"))
    assert "calculator" in json.dumps(interrupt)
    async with raw_client(dev_api) as http:
        thread = (await http.get(f"/threads/{thread_id}")).json()
    assert thread["status"] == "interrupted"

    # LangChain's human-in-the-loop request, resumed as agent-chat-ui does: an empty `input`
    # beside the command, which wins.
    assert await page.page.locator("#interrupt .action").all_inner_texts() == [
        'calculator {"expression":"6 * 7"} [approve, edit, reject, respond]'
    ]
    decision = {"decisions": [{"type": "approve"}]}
    assert await _run_step(page, f"resume({json.dumps(decision)})") == ("resume: done", "")
    assert await _text(page, "answer") == "The result is 42."
    assert await page.page.locator("#interrupt *").count() == 0
    async with raw_client(dev_api) as http:
        thread = (await http.get(f"/threads/{thread_id}")).json()
    assert thread["status"] == "idle"
    assert page.errors == []


async def test_page_on_another_site_is_refused_and_runs_nothing(
    chromium: BrowserContext, page_server: PageServer, dev_api: RunningServer
) -> None:
    async with raw_client(dev_api) as http:
        thread_id = (await http.post("/threads", json={})).json()["thread_id"]
    page = await open_page(chromium, page_server.url(EVIL_HOST, dev_api.url))
    body = {"assistant_id": "chat", "input": {"messages": [{"type": "human", "content": "hi"}]}}

    connect = await _run_step(page, "connect()")
    create = await _run_step(page, "createThread()")
    # A simple request (text/plain, no preflight) reaches the server: it must refuse it itself.
    wait = await _run_step(
        page, f"postTextPlain('/threads/{thread_id}/runs/wait', {json.dumps(body)})"
    )

    assert connect == ("connect: failed", "Failed to fetch")
    assert create == ("createThread: failed", "Failed to fetch")
    assert wait == ("postTextPlain: failed", "Failed to fetch")
    async with raw_client(dev_api) as http:
        assert (await http.get(f"/threads/{thread_id}/runs")).json() == []
        assert (await http.post("/threads/count", json={})).json() == 1
        assert (await http.get(f"/threads/{thread_id}")).json()["status"] == "idle"
    blocked = (
        f"Access to fetch at '{dev_api.url}{{}}' from origin 'http://{EVIL_HOST}:{page_server.port}'"
        " has been blocked by CORS policy: {}No 'Access-Control-Allow-Origin' header is present on"
        " the requested resource."
    )
    preflight = "Response to preflight request doesn't pass access control check: "
    assert page.errors == [
        blocked.format("/info", ""),
        "Failed to load resource: net::ERR_FAILED",
        blocked.format("/threads", preflight),
        "Failed to load resource: net::ERR_FAILED",
        blocked.format(f"/threads/{thread_id}/runs/wait", ""),
        "Failed to load resource: net::ERR_FAILED",
    ]
