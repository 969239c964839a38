"""How the CLI sees a server start: a start-up that fails is one line and an exit status a
supervisor acts on, not a traceback and a process left running with nothing listening.

Wraps the app the CLI serves; `create_app` itself is unchanged, so in-process servers (the
tests') still see the exception, and keep their garbage collector as their host set it.
"""

from __future__ import annotations

import gc
import os
import socket
import sys
from collections.abc import Callable

import uvicorn
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agent_runtime.errors import AgentRuntimeError

STARTUP_FAILED = 3
"""The exit status of a server whose start-up failed (uvicorn's own)."""


class StartupReport:
    """An ASGI wrapper that reports a failed start-up through `say`, in one line, and freezes
    what a successful one built (`freeze_startup_heap`).

    Starlette answers a failed lifespan with the traceback as the failure message, which
    uvicorn logs; here the message is dropped and the exception described instead.
    """

    def __init__(self, app: ASGIApp, say: Callable[[str], None]) -> None:
        self.app = app
        self._say = say

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        failed = False

        async def hold_failure(message: Message) -> None:
            nonlocal failed
            if message["type"] == "lifespan.startup.failed":
                failed = True  # sent below, after the line that says why
                return
            if message["type"] == "lifespan.startup.complete":
                freeze_startup_heap()
            await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except Exception as exc:
            if not failed:
                raise
            self._say(describe_failure(exc))
            await send({"type": "lifespan.startup.failed", "message": ""})


def freeze_startup_heap() -> None:
    """Collect the start-up's garbage, then keep every object still alive (modules, compiled
    graphs, schemas, the runtime) out of all later collections (`gc.freeze`).

    Those objects live as long as the process, yet each full collection walked them all: in a
    served process, one took 57 ms of the event loop (every run and stream waiting) and they
    came every 250 runs or so, 0.23 ms a run; frozen, 4 ms (`benchmarks/README.md`). Only a
    process the CLI serves is frozen: one that embeds the app keeps its own collector."""
    gc.collect()
    gc.freeze()


def describe_failure(exc: BaseException) -> str:
    """One sentence for an exception that stopped start-up."""
    if isinstance(exc, AgentRuntimeError):
        return exc.detail
    return f"start-up failed: {type(exc).__name__}: {exc}"


def serve_or_exit(server: uvicorn.Server, sockets: list[socket.socket] | None = None) -> None:
    """Serve (in a reload child); exit with `STARTUP_FAILED` if the app never started."""
    server.run(sockets=sockets)
    if not server.started:
        exit_now(STARTUP_FAILED)


def exit_now(status: int) -> None:
    """Exit without waiting for threads: one that a failed start left behind (a graph
    factory's, say) must not keep a process that serves nothing alive."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
