"""The ASGI application: starts and stops a `Runtime` in the lifespan, mounts every router, and
turns errors into `{"detail", "code"}` bodies. No route logic lives here."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import os
from collections.abc import AsyncIterator, Iterable, Mapping
from typing import TYPE_CHECKING, Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import Response

from agent_runtime.background import stop_tasks
from agent_runtime.clock import SYSTEM_CLOCK, Clock
from agent_runtime.config import CorsConfig, RuntimeConfig
from agent_runtime.config.hosts import ANY_HOST
from agent_runtime.errors import AgentRuntimeError, TooManyRequestsError
from agent_runtime.observability.http import RequestObserver
from agent_runtime.observability.metrics import Metrics
from agent_runtime.observability.observer import Observer
from agent_runtime.observability.sampler import sample_forever
from agent_runtime.observability.tracing import load_tracing
from agent_runtime.runtime import Runtime
from agent_runtime.schema import Json
from agent_runtime.server import (
    assistants,
    checkpoints,
    crons,
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
from agent_runtime.server.auth import (
    AuthError,
    AuthMiddleware,
    Authorizer,
    AuthSettings,
    Guard,
    load_auth,
    load_custom_app,
)
from agent_runtime.server.custom import CustomRoutes, custom_middleware, enabled
from agent_runtime.server.dispatch import IndexedRouter
from agent_runtime.server.hosts import HostCheck
from agent_runtime.server.inspector import ui_routes
from agent_runtime.server.metrics import metrics_route
from agent_runtime.server.openapi import shared_openapi
from agent_runtime.server.origins import OriginMiddleware
from agent_runtime.server.routing import Operation, error_body, json_response
from agent_runtime.storage.base import Storage

if TYPE_CHECKING:
    from agent_runtime.observability.otel import Tracing

logger = logging.getLogger("agent_runtime")

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
    crons.router,
    store.router,
)


WORKER_PATHS = frozenset({"/ok"})
"""What a process with the `worker` role serves over HTTP."""


def operations() -> Iterable[Operation]:
    for router in ROUTERS:
        yield from router.operations


def create_app(
    config: RuntimeConfig,
    *,
    storage: Storage | None = None,
    clock: Clock = SYSTEM_CLOCK,
    tracing: Tracing | None = None,
) -> Starlette:
    """The application for one config; storage defaults to the backend the config names, and
    `clock` (the runtime's one clock, `Runtime.start`) to the system's.

    `/metrics` is served when `config.metrics` is true. Traces are exported when `tracing`
    is given (the tests' in-memory exporter), else as the `OTEL_*` variables say
    (`observability.tracing`).

    Raises:
        AuthLoadError: the auth file or the custom app cannot be imported or used.
    """
    auth = load_auth(config)
    # A worker-only process serves none of the project's own routes either.
    custom_app = load_custom_app(config) if config.role != "worker" else None
    custom = CustomRoutes(custom_app) if custom_app is not None else None
    metrics = Metrics() if config.metrics else None
    own_tracing = tracing is None
    tracing = load_tracing(os.environ) if tracing is None else tracing
    observer = Observer(metrics=metrics, tracing=tracing, clock=clock)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = await Runtime.start(config, storage=storage, clock=clock, observer=observer)
        app.state.services = runtime
        sampler = None
        if metrics is not None:
            sampler = asyncio.create_task(sample_forever(metrics, runtime), name="metrics")
        try:
            if custom_app is None:
                yield
            else:
                async with custom_app.router.lifespan_context(custom_app):
                    yield
        finally:
            await stop_tasks(sampler)
            try:
                await runtime.stop()
            finally:
                if tracing is not None and own_tracing:
                    tracing.shutdown()

    ops = enabled(operations(), config.http.routes)
    if config.role == "worker":
        # A worker-only process answers health checks, for its orchestrator, and nothing else.
        ops = [op for op in ops if op.path in WORKER_PATHS]
    api_routes = [op.route() for op in ops]
    if metrics is not None:
        # Every role serves it: a worker-only process is scraped too.
        api_routes.append(metrics_route(metrics))
    settings = AuthSettings(
        auth=auth,
        api_key=config.api_key,
        trust_studio=config.auth is not None
        and config.auth.trust_studio
        and not config.auth.disable_studio_auth,
        max_body_bytes=config.http.max_body_bytes,
        routes=api_routes,
        is_custom=custom.owns if custom is not None else lambda scope: False,
        custom_route_auth=config.http.routes.custom_route_auth,
        cache=config.auth.cache if config.auth is not None else None,
    )
    # Without an auth file or an API key it would pass every request through untouched.
    authentication = [Middleware(AuthMiddleware, settings=settings)] if settings.active else []
    theirs = custom_middleware(custom_app) if custom_app is not None else []
    inner = (
        [*authentication, *theirs]
        if config.http.routes.middleware_order == "auth_first"
        else [*theirs, *authentication]
    )
    # No `http.cors`: only the server's own origin (`agent-runtime dev` sets a default first).
    # Origins come first: a preflight is answered before anything asks for credentials.
    middleware = [Middleware(OriginMiddleware, cors=config.http.cors or CorsConfig()), *inner]
    allowed_hosts = config.http.allowed_hosts
    if allowed_hosts is not None and ANY_HOST not in allowed_hosts:
        # First of all: a request sent to a name the server does not answer to gets nothing.
        middleware.insert(0, Middleware(HostCheck, allowed=allowed_hosts))
    page_routes = [] if config.http.disable_ui else ui_routes()
    if metrics is not None or tracing is not None:
        # Outermost, so refusals by origin and auth are counted and traced too.
        middleware.insert(
            0,
            Middleware(RequestObserver, metrics=metrics, tracing=tracing, routes=api_routes),
        )
    routes = [*([custom] if custom is not None else []), *api_routes, *page_routes]
    app = Starlette(
        middleware=middleware,
        exception_handlers={
            AuthError: _auth_error,
            AgentRuntimeError: _runtime_error,
            HTTPException: _http_error,
            Exception: _unexpected_error,
        },
    )
    # Starlette's own, but trying only the routes a path of its shape can match.
    app.router = IndexedRouter(routes, lifespan=lifespan)
    app.state.guard = (
        Guard(Authorizer(auth, default=config.auth.default))
        if auth is not None and config.auth is not None
        else None
    )
    # Built when first asked for, not at start-up.
    app.state.openapi = functools.cache(lambda: with_security(shared_openapi(ops), config))
    app.state.role = config.role
    return app


def with_security(spec: Json, config: RuntimeConfig) -> Json:
    """The OpenAPI document with `auth.openapi`'s security schemes, or the `x-api-key` scheme
    when `AGENT_RUNTIME_API_KEY` guards the server (a copy: `spec` is left as it is)."""
    security: Mapping[str, Any] = {}
    if config.auth is not None and config.auth.openapi:
        security = config.auth.openapi
    elif config.auth is None and config.api_key:
        security = {
            "securitySchemes": {
                "apiKeyAuth": {"type": "apiKey", "in": "header", "name": "x-api-key"}
            },
            "security": [{"apiKeyAuth": []}],
        }
    spec = {**spec, "components": {**spec["components"]}}
    if "securitySchemes" in security:
        spec["components"]["securitySchemes"] = dict(security["securitySchemes"])
    if "security" in security:
        spec["security"] = list(security["security"])
    return spec


async def _auth_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, AuthError)
    return json_response(error_body(exc.detail, exc.code), status=exc.status, headers=exc.headers)


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
    if exc.status_code == 404 and request.app.state.role == "worker":
        detail = (
            "This process only executes runs (--role worker) and answers only GET /ok "
            "(and /metrics when on); send API requests to a process with the api or all role"
        )
        code = "worker_only"
    elif exc.status_code == 404:
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
