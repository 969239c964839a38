"""The access log of a served app: uvicorn's line for each request, on uvicorn's
`uvicorn.access` logger (so filters and formats set up for it still apply), written once the
response has ended instead of as it starts: formatting and writing it never delays a response's
first bytes, a streamed run's first event included. It never changes a request or a response."""

from __future__ import annotations

import logging
import time
from typing import TYPE_CHECKING, Any, cast

from starlette.types import ASGIApp, Message, Receive, Scope, Send
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.protocols.utils import get_client_addr, get_path_with_query_string

if TYPE_CHECKING:
    from uvicorn._types import HTTPScope

ACCESS_LOGGER = "uvicorn.access"

logger = logging.getLogger(ACCESS_LOGGER)


class AccessLog:
    """An ASGI wrapper that logs each HTTP request when its response has ended: uvicorn's
    text, and `duration_ms` (request to the response's last byte, or to the client leaving) for
    formats that print extra fields (`--log-format json`). Nothing is logged for a request
    that got no response, as uvicorn logs none; nor when `uvicorn.access` has no handler
    (`--no-access-log`) or is above INFO (`--server-log-level warning`)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (
            scope["type"] != "http"
            or not logger.isEnabledFor(logging.INFO)
            or not logger.hasHandlers()
        ):
            await self.app(scope, receive, send)
            return
        status: int | None = None

        async def noting_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        try:
            await self.app(scope, receive, noting_status)
        finally:
            if status is not None:
                http = cast("HTTPScope", scope)
                logger.info(
                    '%s - "%s %s HTTP/%s" %d',
                    get_client_addr(http),
                    scope["method"],
                    get_path_with_query_string(http),
                    scope["http_version"],
                    status,
                    extra={"duration_ms": round((time.perf_counter() - started) * 1000, 3)},
                )


class QuietHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's HTTP protocol without its own access line, which it writes as each response
    starts; `AccessLog` writes it at the end."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.access_log = False
