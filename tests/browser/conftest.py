"""A real headless Chromium (Debian's `chromium`) driven by Playwright, and the test page served
from a second localhost origin, for the browser clients' view of the server."""

from __future__ import annotations

import asyncio
import os
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import uvicorn
from playwright.async_api import BrowserContext, ConsoleMessage, Page, async_playwright
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse
from starlette.routing import Route

CHROMIUM = Path("/usr/bin/chromium")
PAGE = Path(__file__).with_name("page.html")
EVIL_HOST = "evil.test"
"""A site name Chromium resolves to 127.0.0.1 (`--host-resolver-rules`): an origin no default
allows, on a server on this machine."""
CHROMIUM_FLAGS = (
    # Playwright adds --headless itself. The rest keep Chromium off the network this machine
    # does not have: without them it opens connections that are refused many at a time.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    f"--host-resolver-rules=MAP {EVIL_HOST} 127.0.0.1",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class BrowserPage:
    """A page with every console error and uncaught exception it produced."""

    page: Page
    errors: list[str] = field(default_factory=list)


@pytest.fixture
def chromium_path() -> Path:
    """Debian's chromium; the test is skipped without it, except in CI, where it fails."""
    if not CHROMIUM.exists():
        reason = f"{CHROMIUM} is missing; `apt-get install chromium` (.ci/run installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(reason)
        pytest.skip(reason)
    return CHROMIUM


@pytest.fixture
async def chromium(chromium_path: Path, tmp_path: Path) -> AsyncIterator[BrowserContext]:
    """A headless Chromium on a fresh profile."""
    async with async_playwright() as playwright:
        # Never `playwright install`: it downloads a browser build, which this machine cannot.
        context = await playwright.chromium.launch_persistent_context(
            tmp_path / "chromium-profile",
            executable_path=chromium_path,
            headless=True,
            args=list(CHROMIUM_FLAGS),
        )
        try:
            yield context
        finally:
            await context.close()


async def open_page(context: BrowserContext, url: str) -> BrowserPage:
    """Open `url` in a new tab and wait until its script is ready."""
    page = await context.new_page()
    watched = BrowserPage(page=page)
    # Plain functions: Playwright tags bound methods with attributes, which slots forbid.
    page.on("console", lambda m: _on_console(watched, m))
    page.on("pageerror", lambda e: watched.errors.append(f"uncaught: {e}"))
    await page.goto(url)
    await page.wait_for_function("document.getElementById('status').textContent === 'ready'")
    return watched


def _on_console(watched: BrowserPage, message: ConsoleMessage) -> None:
    if message.type == "error":
        watched.errors.append(message.text)


class PageServer:
    """Serves page.html on 127.0.0.1 and a free port: an origin other than the API's."""

    def __init__(self) -> None:
        html = PAGE.read_text()

        async def page(request: Request) -> HTMLResponse:
            return HTMLResponse(html)

        app = Starlette(routes=[Route("/", page)])
        config = uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning")
        self._server = uvicorn.Server(config)
        self._task: asyncio.Task[None] | None = None
        self.port = 0

    async def start(self) -> PageServer:
        self._task = asyncio.create_task(self._server.serve())
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("the page server stopped during start-up")
            await asyncio.sleep(0.01)
        self.port = self._server.servers[0].sockets[0].getsockname()[1]
        return self

    def url(self, host: str, api: str) -> str:
        return f"http://{host}:{self.port}/?api={api}"

    async def stop(self) -> None:
        if self._task is not None:
            self._server.should_exit = True
            await self._task


@pytest.fixture
async def page_server() -> AsyncIterator[PageServer]:
    running = await PageServer().start()
    try:
        yield running
    finally:
        await running.stop()
