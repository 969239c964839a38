"""The first-token figure's HTTP floor: the same `langgraph_sdk` call `bench_runs.py` times
(`runs.stream`, `messages-tuple`) against an ASGI app under uvicorn (uvloop and httptools, as
`agent-runtime serve` runs) that reads the body and answers at once with a `metadata` and a
`messages` event. What it measures is what any server costs the SDK before a token arrives: the
client's work, the loopback both ways, uvicorn's parsing and framing; none of it is ours.

Used by `bench_runs.py`; runnable alone: `.venv/bin/python benchmarks/http_floor.py [--streams N]`.
"""

from __future__ import annotations

import argparse
import asyncio
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from langgraph_sdk import get_client

STARTUP_TIMEOUT_SECONDS = 30.0
_RUNNING = re.compile(r"Uvicorn running on (http://127\.0\.0\.1:\d+)")
_METADATA = b'event: metadata\ndata: {"run_id":"00000000-0000-0000-0000-000000000000"}\n\n'
_MESSAGE = b'event: messages\ndata: [{"content":"Hi","type":"AIMessageChunk"},{}]\n\n'


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Reads a request's body and answers with two SSE events; nothing else."""
    if scope["type"] != "http":
        return  # uvicorn runs without a lifespan (`--lifespan off`)
    more = True
    while more:
        message = await receive()
        more = message.get("more_body", False)
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/event-stream; charset=utf-8")],
        }
    )
    await send({"type": "http.response.body", "body": _METADATA, "more_body": True})
    await send({"type": "http.response.body", "body": _MESSAGE, "more_body": True})
    await send({"type": "http.response.body", "body": b"", "more_body": False})


def start(folder: Path) -> tuple[subprocess.Popen[bytes], str]:
    """This module's `app` under uvicorn on a free port; returns the process and its URL."""
    log_path = folder / "http-floor.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                *(sys.executable, "-m", "uvicorn", "http_floor:app"),
                *("--app-dir", str(Path(__file__).parent), "--host", "127.0.0.1", "--port", "0"),
                *("--lifespan", "off", "--no-access-log"),
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        match = _RUNNING.search(log_path.read_text(errors="replace"))
        if match:
            return process, match.group(1)
        if process.poll() is not None:
            break
        time.sleep(0.05)
    process.kill()
    raise SystemExit(f"the HTTP floor did not start; its output:\n{log_path.read_text()}")


async def first_events(url: str, streams: int, warmup: int, user: dict[str, Any]) -> list[float]:
    """Seconds from each `runs.stream` call to its first `messages` event, one at a time."""
    client = get_client(url=url, api_key=None)
    firsts: list[float] = []
    try:
        for index in range(warmup + streams):
            start, first = time.perf_counter(), None
            parts = client.runs.stream(
                "00000000-0000-0000-0000-000000000000",
                "chat",
                input=user,
                stream_mode="messages-tuple",
            )
            async for part in parts:
                if part.event == "messages" and first is None:
                    first = time.perf_counter() - start
            if first is None:
                raise SystemExit("the HTTP floor's stream had no messages event")
            if index >= warmup:
                firsts.append(first)
    finally:
        await client.http.client.aclose()
    return firsts


def measure(folder: Path, streams: int, warmup: int, user: dict[str, Any]) -> list[float]:
    """Start the floor's server, time `streams` streams, stop it."""
    process, url = start(folder)
    try:
        return asyncio.run(first_events(url, streams, warmup, user))
    finally:
        process.terminate()
        process.wait(timeout=10)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--streams", type=int, default=200)
    parser.add_argument("--warmup", type=int, default=20)
    args = parser.parse_args()
    user = {"messages": [{"role": "user", "content": "hello there, how are you today"}]}
    with tempfile.TemporaryDirectory(prefix="http-floor-") as tmp:
        firsts = measure(Path(tmp), args.streams, args.warmup, user)
    ms = sorted(first * 1000 for first in firsts)
    print(f"first event, median {statistics.median(ms):.3f} ms, p90 {ms[len(ms) * 9 // 10]:.3f} ms")


if __name__ == "__main__":
    main()
