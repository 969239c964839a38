"""Helpers for driving the inspector page (`/ui`) in Chromium: a server on the inspector's test
graphs, and a page that records every console error, uncaught exception and failed request."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
from playwright.async_api import BrowserContext, Page, Request, Response

from agent_runtime.config import RuntimeConfig, load_config
from tests.conftest import RunningServer

FIXTURE = Path(__file__).parents[1] / "fixtures" / "ui" / "langgraph.json"
READY = """() => {
  const main = document.querySelector("main");
  return main.dataset.route === location.hash && ["ready", "error"].includes(main.dataset.state);
}"""


def inspector_config(database: Path, **environ: str) -> RuntimeConfig:
    """The inspector's test graphs (`agent`, `approval`, `typing`) on a database file."""
    return load_config(FIXTURE, database=database, environ=environ)


@dataclass(slots=True, kw_only=True)
class WatchedPage:
    """A tab on the inspector, with every problem it showed."""

    page: Page
    base: str
    problems: list[str] = field(default_factory=list)

    async def go(self, route: str) -> None:
        """Open `#<route>` and wait until the view is drawn (or shows its error)."""
        await self.page.goto(f"{self.base}/ui#{route}")
        await self.ready()

    async def ready(self) -> None:
        """Wait until the current route's view is drawn, or shows its error."""
        await self.page.wait_for_function(READY, timeout=10_000)

    async def state(self) -> str | None:
        return await self.page.get_attribute("main", "data-state")


@asynccontextmanager
async def watched(
    context: BrowserContext, server: RunningServer, *, width: int = 1280, height: int = 800
) -> AsyncIterator[WatchedPage]:
    """A new tab that fails the test, when closed, on any console error, uncaught exception or
    failed request. A stream the page hangs up on purpose (leaving a thread's view ends its
    live follow) is the one failure allowed: Chromium reports it as ERR_ABORTED."""
    page = await context.new_page()
    await page.set_viewport_size({"width": width, "height": height})
    tab = WatchedPage(page=page, base=server.url)
    page.on("console", lambda m: tab.problems.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: tab.problems.append(f"uncaught: {e}"))
    page.on("requestfailed", lambda r: _failed(tab, r))
    page.on("response", lambda r: _response(tab, r))
    try:
        yield tab
    finally:
        await page.close()
    assert tab.problems == [], tab.problems


def _failed(tab: WatchedPage, request: Request) -> None:
    failure = request.failure or ""
    if "ERR_ABORTED" in failure and request.url.split("?")[0].endswith("/stream"):
        return
    tab.problems.append(f"request failed: {request.method} {request.url} {failure}")


def _response(tab: WatchedPage, response: Response) -> None:
    if response.status >= 400:
        tab.problems.append(f"{response.status} from {response.request.method} {response.url}")


async def api(server: RunningServer, method: str, path: str, body: Any = None) -> Any:
    """One call to the server's API, as a test sets data up."""
    async with httpx.AsyncClient(base_url=server.url, timeout=30) as client:
        response = await client.request(method, path, json=body)
        assert response.status_code < 400, response.text
        return response.json() if response.content else None


async def new_thread(server: RunningServer, graph: str, text: str, **fields: Any) -> str:
    """A thread whose first run of `graph` answered `text`, waited for."""
    thread = await api(server, "POST", "/threads", fields)
    thread_id: str = thread["thread_id"]
    await api(
        server,
        "POST",
        f"/threads/{thread_id}/runs/wait",
        {"assistant_id": graph, "input": {"messages": [{"role": "user", "content": text}]}},
    )
    return thread_id


async def eventually(check: Callable[[], Awaitable[Any]], *, within: float = 20.0) -> Any:
    """Poll a page check until it is truthy; generous, since `make test` runs the Postgres pass
    beside the browser tests on the same two cores."""
    import asyncio

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {within} s; last value: {json.dumps(value)}")
        await asyncio.sleep(0.05)
