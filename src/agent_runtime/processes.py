"""Serving with processes: the uvicorn server that, told to stop, first lets its runs finish
within a grace period while the API still answers, and the supervisor behind `serve --workers N`
that runs N such servers on one socket and replaces those that die. No app logic here."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from types import FrameType

import uvicorn
from starlette.applications import Starlette

from agent_runtime.startup import STARTUP_FAILED

logger = logging.getLogger("agent_runtime")

DEFAULT_GRACE_SECONDS = 25.0
"""Under the 30 s that Kubernetes (and most supervisors) wait after SIGTERM before SIGKILL, so
the runs that do not finish in time are still handed back, not left to their leases."""
CHECK_SECONDS = 0.5
"""How often the supervisor looks for processes that died."""


class DrainingServer(uvicorn.Server):
    """A uvicorn server whose process stops taking runs at the first SIGTERM or SIGINT, gives
    the runs executing here `grace` seconds to end while every route still answers, then hands
    the rest back (`pending`, not charged) and shuts down as uvicorn does. A second SIGINT
    cuts the grace short."""

    def __init__(self, config: uvicorn.Config, *, app: Starlette, grace: float) -> None:
        """`app` is the one `create_app` made (before any wrapper), whose lifespan puts the
        runtime on its state."""
        super().__init__(config)
        self._app = app
        self._grace = grace

    async def shutdown(self, sockets: list[socket.socket] | None = None) -> None:
        runtime = getattr(self._app.state, "services", None)
        if runtime is not None:
            busy = runtime.runs.executing
            if busy:
                logger.info(
                    "Stopping: taking no new runs; waiting up to %g s for the %d running here",
                    self._grace,
                    busy,
                )
            drain = asyncio.ensure_future(runtime.drain(self._grace))
            while not (await asyncio.wait({drain}, timeout=0.1))[0]:
                if self.force_exit:
                    drain.cancel()
                    break
            left = runtime.runs.executing
            # Handed back now, before the connections close, so other processes resume them.
            await runtime.runs.stop()
            if left:
                logger.warning(
                    "%d runs did not end within the grace period; handed back for another "
                    "process to resume",
                    left,
                )
        await super().shutdown(sockets)


class Supervisor:
    """Runs `count` processes of `target(sock)` and starts a new one for each that dies; stops
    them all at SIGTERM or SIGINT (SIGTERM to each, so each drains, then SIGKILL past
    `stop_timeout`). A process that exits with `STARTUP_FAILED` stops them all: it would fail
    the same way again."""

    def __init__(
        self,
        target: Callable[[socket.socket], None],
        sock: socket.socket,
        *,
        count: int,
        stop_timeout: float,
        say: Callable[[str], None],
        on_exit: Callable[[int], None] | None = None,
    ) -> None:
        """Args:
        on_exit: told the pid of each process that ended (its live metrics are dropped).
        """
        self._target = target
        self._on_exit = on_exit
        self._sock = sock
        self._count = count
        self._stop_timeout = stop_timeout
        self._say = say
        # Spawned, not forked: the parent has imported the graphs and may hold threads.
        self._context = multiprocessing.get_context("spawn")
        self._processes: list[BaseProcess] = []
        self._signals: list[int] = []
        self._stop = threading.Event()

    def run(self) -> int:
        """Serve until told to stop; return the exit status (`STARTUP_FAILED` when a process
        could not start, else 0)."""
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGINT, signal.SIGTERM)
        }
        status = 0
        try:
            self._processes = [self._spawn() for _ in range(self._count)]
            while not self._stop.wait(CHECK_SECONDS):
                status = self._replace_dead()
                if status:
                    break
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return status

    @property
    def pids(self) -> list[int]:
        """The ids of the processes now serving."""
        return [process.pid for process in self._processes if process.pid is not None]

    def _spawn(self) -> BaseProcess:
        process = self._context.Process(target=self._target, args=(self._sock,), daemon=False)
        process.start()
        return process

    def _replace_dead(self) -> int:
        for index, process in enumerate(self._processes):
            if process.is_alive():
                continue
            process.join()
            if self._on_exit is not None and process.pid is not None:
                self._on_exit(process.pid)
            code = process.exitcode
            if code == STARTUP_FAILED:
                self._say(f"server process {process.pid} failed to start; stopping")
                return STARTUP_FAILED
            how = f"was killed by signal {-code}" if code is not None and code < 0 else None
            self._say(
                f"server process {process.pid} {how or f'exited with status {code}'}; "
                "starting another (its runs resume once their leases lapse)"
            )
            self._processes[index] = self._spawn()
        return 0

    def _on_signal(self, sig: int, frame: FrameType | None) -> None:
        self._signals.append(sig)
        if self._stop.is_set() and sig == signal.SIGINT:
            # A second Ctrl+C: the processes cut their grace short.
            for process in self._processes:
                _send(process, signal.SIGINT)
        self._stop.set()

    def _stop_all(self) -> None:
        for process in self._processes:
            _send(process, signal.SIGTERM)
        deadline = time.monotonic() + self._stop_timeout
        for process in self._processes:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in self._processes:
            if process.is_alive():
                self._say(f"server process {process.pid} did not stop in time; killing it")
                process.kill()
                process.join()


def _send(process: BaseProcess, sig: int) -> None:
    if process.pid is not None and process.exitcode is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(process.pid, sig)


def stop_with_parent(parent: int) -> None:
    """In a supervised process: SIGTERM this process (so it drains) once `parent` is gone, as
    when the supervisor was killed with SIGKILL and could not stop it."""

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(CHECK_SECONDS)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, name="stop-with-parent", daemon=True).start()
