"""The ASGI application: wires config, storage and graphs together in the lifespan, mounts every
router, and turns errors into `{"detail", "code"}` bodies. No route logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Iterable
from datetime import timedelta
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from agent_runtime.config import CorsConfig, RuntimeConfig
from agent_runtime.errors import AgentRuntimeError, TooManyRequestsError
from agent_runtime.registry import GraphRegistry, check_graphs, default_assistant_id, import_graphs
from agent_runtime.runs.manager import RunManager
from agent_runtime.server import (
    assistants,
    checkpoints,
    messages,
    runs,
    state,
    stateless_runs,
    store,
    system,
    thread_stream,
    threads,
    tool_calls,
)
from agent_runtime.server.openapi import build_openapi
from agent_runtime.server.origins import OriginMiddleware
from agent_runtime.server.routing import Operation, json_response
from agent_runtime.server.services import Services
from agent_runtime.storage.base import NewAssistant, RetentionPolicy, Storage
from agent_runtime.storage.open import open_storage
from agent_runtime.storage.serde import graph_types
from agent_runtime.streaming import MemoryEventLog
from agent_runtime.streaming.slots import StreamSlots

logger = logging.getLogger("agent_runtime")

DEFAULT_SWEEP_SECONDS = 60.0
ROUTERS = (
    system.router,
    assistants.router,
    threads.router,
    tool_calls.router,
    state.router,
    messages.router,
    checkpoints.router,
    runs.router,
    thread_stream.router,
    stateless_runs.router,
    store.router,
)


def operations() -> Iterable[Operation]:
    for router in ROUTERS:
        yield from router.operations


def create_app(config: RuntimeConfig, *, storage: Storage | None = None) -> Starlette:
    """The application for one config; storage defaults to the backend the config names."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        sources = import_graphs(config)
        # Every graph is built once before the database is opened: one that fails stops
        # start-up with the file untouched.
        built = await check_graphs(sources)
        if storage is None:
            backend = await open_storage(config, graph_types=graph_types(built))
        else:
            backend = storage
            await backend.setup()
        try:
            registry = GraphRegistry(
                sources, checkpointer=backend.checkpointer, store=backend.store
            )
            await _ensure_default_assistants(backend, registry)
            limits = config.limits
            events = MemoryEventLog(max_bytes_per_run=limits.max_event_bytes_per_run)
            manager = RunManager(
                backend,
                registry,
                events,
                pricing=config.pricing,
                max_messages=config.limits.max_messages_per_thread,
            )
            streams = StreamSlots(
                limits.max_open_streams, send_timeout=limits.stream_send_timeout_seconds
            )
            app.state.services = Services(
                config=config,
                storage=backend,
                registry=registry,
                events=events,
                runs=manager,
                streams=streams,
            )
            try:
                await manager.start()
                sweeper = asyncio.create_task(_sweep_forever(backend, config), name="sweeper")
                try:
                    yield
                finally:
                    sweeper.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await sweeper
            finally:
                await manager.stop()
        finally:
            await backend.close()

    # No `http.cors`: only the server's own origin (`agent-runtime dev` sets a default first).
    middleware = [Middleware(OriginMiddleware, cors=config.http.cors or CorsConfig())]
    ops = list(operations())
    app = Starlette(
        routes=[op.route() for op in ops],
        middleware=middleware,
        lifespan=lifespan,
        exception_handlers={
            AgentRuntimeError: _runtime_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    app.state.openapi = build_openapi(ops)
    return app


async def _ensure_default_assistants(storage: Storage, registry: GraphRegistry) -> None:
    for graph_id in registry.graph_ids:
        await storage.create_assistant(
            NewAssistant(
                assistant_id=default_assistant_id(graph_id),
                graph_id=graph_id,
                name=graph_id,
                metadata={"created_by": "system"},
            ),
            if_exists="do_nothing",
        )


def retention_policy(config: RuntimeConfig) -> RetentionPolicy:
    limits = config.limits
    return RetentionPolicy(
        inactivity=None
        if limits.inactivity_ttl_days is None
        else timedelta(days=limits.inactivity_ttl_days),
        max_age=None if limits.max_age_days is None else timedelta(days=limits.max_age_days),
        strategy=limits.strategy,
    )


def sweep_interval(config: RuntimeConfig) -> float:
    """`limits.sweep_interval_seconds`, else `checkpointer.ttl.sweep_interval_minutes`."""
    if config.limits.sweep_interval_seconds is not None:
        return config.limits.sweep_interval_seconds
    minutes = (config.checkpointer.get("ttl") or {}).get("sweep_interval_minutes")
    return float(minutes) * 60 if minutes else DEFAULT_SWEEP_SECONDS


async def _sweep_forever(storage: Storage, config: RuntimeConfig) -> None:
    policy = retention_policy(config)
    while True:
        try:
            swept = await storage.sweep_expired_threads(policy)
            if swept:
                logger.info("Swept %d expired threads (%s)", swept, policy.strategy)
        except AgentRuntimeError as exc:
            logger.warning("Thread sweep failed: %s", exc.detail)
        await asyncio.sleep(sweep_interval(config))


def error_body(detail: str, code: str) -> dict[str, Any]:
    """The one shape of every error response."""
    return {"detail": detail, "code": code}


async def _runtime_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AgentRuntimeError)
    if exc.status_code >= 500:
        logger.error("%s %s failed: %s", request.method, request.url.path, exc.detail)
    headers = None
    if isinstance(exc, TooManyRequestsError):
        headers = {"Retry-After": str(exc.retry_after)}
    return json_response(error_body(exc.detail, exc.code), status=exc.status_code, headers=headers)


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    if exc.status_code == 404:
        detail = f"No route matches {request.method} {request.url.path}"
        code = "route_not_found"
    elif exc.status_code == 405:
        detail = f"{request.method} is not allowed on {request.url.path}"
        code = "method_not_allowed"
    else:
        detail, code = str(exc.detail), "http_error"
    return json_response(error_body(detail, code), status=exc.status_code, headers=exc.headers)


async def _unexpected_error(request: Request, exc: Exception) -> Response:
    logger.exception("Unexpected error in %s %s", request.method, request.url.path)
    return json_response(
        error_body("The server failed to handle this request; see its log", "internal_error"),
        status=500,
    )
