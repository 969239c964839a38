"""Fixtures shared by every test: a real server on a free port over a fresh database, a SQLite
file by default or, with `--backend postgres` (or `AGENT_RUNTIME_TEST_BACKEND=postgres`), a fresh
database on the local PostgreSQL server. Tests about SQLite itself are marked `sqlite_only` and
keep a file whatever the backend."""

from __future__ import annotations

import asyncio
import functools
import os
import ssl
from collections.abc import AsyncGenerator, AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import uvicorn
from langgraph_sdk import get_client
from langgraph_sdk.client import LangGraphClient

from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config import RuntimeConfig, load_config
from agent_runtime.server.app import create_app
from agent_runtime.server.services import Services
from agent_runtime.storage.checkpoint_cache import CachingSerializer

ROOT = Path(__file__).resolve().parents[1]
STARTUP_TIMEOUT_SECONDS = 20.0
T = TypeVar("T")
BACKEND_ENV = "AGENT_RUNTIME_TEST_BACKEND"
BACKENDS = ("sqlite", "postgres")
Database = Path | str
"""What the `database` fixture gives: a SQLite file's path, or a Postgres URI."""


class _QuickUvicornAsyncio:
    """`asyncio` as uvicorn's server module sees it in this test process: its sleeps twenty
    times shorter. uvicorn looks at its exit flag every 0.1 s and sleeps 0.1 s more while
    shutting down, 0.2 s of every test that serves (over a thousand); this way 0.01 s. Nothing
    else changes: the protocols, the app and its lifespan run as in production, and servers
    started as processes (`agent-runtime serve`) keep uvicorn's own pace."""

    def __getattr__(self, name: str) -> Any:
        return getattr(asyncio, name)

    @staticmethod
    async def sleep(delay: float, result: Any = None) -> Any:
        return await asyncio.sleep(delay / 20, result)


setattr(uvicorn.server, "asyncio", _QuickUvicornAsyncio())  # noqa: B010


@functools.cache
def _default_tls(trust_env: bool) -> ssl.SSLContext:
    return httpx.create_ssl_context(trust_env=trust_env)


def _shared_tls(
    verify: ssl.SSLContext | str | bool = True, cert: Any = None, trust_env: bool = True
) -> ssl.SSLContext:
    """httpx's own, its default settings made once in this test process: every client the
    tests make (thousands: the SDK's, raw httpx) read the CA bundle anew, 50 ms of CPU each,
    for servers they reach over plain http."""
    if verify is True and cert is None:
        return _default_tls(trust_env)
    return httpx.create_ssl_context(verify=verify, cert=cert, trust_env=trust_env)


setattr(httpx._transports.default, "create_ssl_context", _shared_tls)  # noqa: B010


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--backend",
        choices=BACKENDS,
        default=os.environ.get(BACKEND_ENV) or "sqlite",
        help=f"the storage backend of the `database` fixture (default: ${BACKEND_ENV}, else "
        "sqlite); tests marked sqlite_only keep SQLite",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "sqlite_only: about SQLite itself; its `database` stays a SQLite file"
    )
    if config.getoption("--backend") not in BACKENDS:
        raise pytest.UsageError(f"{BACKEND_ENV} must be one of {', '.join(BACKENDS)}")


@asynccontextmanager
async def database_for(request: pytest.FixtureRequest, file: Path) -> AsyncIterator[Database]:
    """The database a test runs on: `file` on SQLite, else a fresh Postgres database (dropped
    afterwards)."""
    backend = request.config.getoption("--backend")
    if backend == "sqlite" or request.node.get_closest_marker("sqlite_only") is not None:
        yield file
        return
    from tests.services import fresh_postgres_database

    async with fresh_postgres_database(migrated=True) as uri:
        yield uri


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.services import drop_templates

    drop_templates()


def json_of(value: object) -> dict[str, Any]:
    """`value` as the JSON object the server answered. langgraph_sdk types its answers as
    TypedDicts that lack our extension fields (`attempt`, `error`, `usage`, `message_count`, ...)
    or as unions (`dict | None`, `list[dict] | dict`); this narrows to the object the test knows
    it got, and fails the test with the value if it got something else."""
    assert isinstance(value, dict), f"expected a JSON object, got {value!r}"
    return value


def generator(stream: AsyncIterator[T]) -> AsyncGenerator[T, Any]:
    """`stream` as the async generator it is. langgraph_sdk declares its streams as
    `AsyncIterator`s, which `contextlib.aclosing` cannot close (closing hangs up the request)."""
    assert isinstance(stream, AsyncGenerator), f"expected an async generator, got {stream!r}"
    return stream


class RunningServer:
    """A uvicorn serving one app in this event loop; `url` is where it listens. Pass a
    `FakeClock` as `clock` to drive the server's time (stamps, due runs, expiry) by hand."""

    def __init__(
        self, config: RuntimeConfig, *, clock: Clock = SYSTEM_CLOCK, tracing: Any = None
    ) -> None:
        # Every cache hit is checked against what is stored; stop() fails a test that saw a
        # difference (a graph changing its state in place, or a cache that lies).
        config = replace(config, checkpoint_cache=replace(config.checkpoint_cache, verify=True))
        self.config = config
        self.url = ""
        self._serde: Any = None
        self._server: uvicorn.Server | None = None
        self._task: asyncio.Task[None] | None = None
        # `tracing`: an `observability.otel.Tracing` (the tests' in-memory span exporter).
        self.app = create_app(config, clock=clock, tracing=tracing)

    def services(self) -> Services:
        """The running app's config, storage and graphs, for checks below the HTTP layer."""
        found: Services = self.app.state.services
        return found

    async def start(self) -> RunningServer:
        settings = uvicorn.Config(
            self.app,
            host="127.0.0.1",
            port=0,
            lifespan="on",
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        self._server = uvicorn.Server(settings)
        self._task = asyncio.create_task(self._server.serve())
        deadline = asyncio.get_running_loop().time() + STARTUP_TIMEOUT_SECONDS
        while not self._server.started:
            if self._task.done():
                self._task.result()
                raise RuntimeError("uvicorn stopped during start-up")
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError("uvicorn did not start in time")
            await asyncio.sleep(0.01)
        port = self._server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}"
        self._serde = self.services().storage.checkpointer.serde
        return self

    async def stop(self) -> None:
        if self._server is not None and self._task is not None:
            self._server.should_exit = True
            await self._task
        if isinstance(self._serde, CachingSerializer):
            assert self._serde.cache.mismatches == 0, "a cached checkpoint differed from storage"


def example_config(database: Database) -> RuntimeConfig:
    """The repository's own langgraph.json (the example graphs) on a given database."""
    return load_config(ROOT / "langgraph.json", database=database, environ={})


async def until(check: Callable[[], Awaitable[T | None]], *, within: float = 5.0) -> T:
    """Poll `check` until it returns something truthy (so never None)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        value = await check()
        if value:
            return value
        if loop.time() > deadline:
            raise AssertionError(f"gave up after {within} s; last value: {value!r}")
        await asyncio.sleep(0.01)


@asynccontextmanager
async def served(config_path: Path, database: Database) -> AsyncIterator[RunningServer]:
    """A running server for a langgraph.json on a given database, stopped afterwards."""
    config = load_config(config_path, database=database, environ={})
    running = await RunningServer(config).start()
    try:
        yield running
    finally:
        await running.stop()


@pytest.fixture
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with database_for(request, tmp_path / "runtime.sqlite") as found:
        yield found


@pytest.fixture
async def server(database: Database) -> AsyncIterator[RunningServer]:
    running = await RunningServer(example_config(database)).start()
    try:
        yield running
    finally:
        await running.stop()


@asynccontextmanager
async def sdk_client(server: RunningServer) -> AsyncIterator[LangGraphClient]:
    """langgraph_sdk's client on a running server, closed afterwards."""
    sdk = get_client(url=server.url, api_key=None)
    try:
        yield sdk
    finally:
        await sdk.http.client.aclose()


def raw_client(server: RunningServer) -> httpx.AsyncClient:
    """A plain httpx client on a running server, for status codes and SSE framing."""
    return httpx.AsyncClient(base_url=server.url, timeout=30)


@pytest.fixture
async def client(server: RunningServer) -> AsyncIterator[LangGraphClient]:
    async with sdk_client(server) as sdk:
        yield sdk


@pytest.fixture
async def http(server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with raw_client(server) as raw:
        yield raw
