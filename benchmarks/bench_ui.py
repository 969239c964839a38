"""How fast the inspector page (/ui) is ready in headless Chromium on a large database: a thread
list over 10,000 threads, and the view and checkpoint tree of one thread of 1,000 checkpoints.

A script, not a test: it starts `agent-runtime serve` on a fresh database, seeds it through the
HTTP API, then loads each view several times in a fresh tab and prints the median time from
navigation to the view's data-state="ready" (its data fetched and drawn). Target: under 1 s.

    .venv/bin/python benchmarks/bench_ui.py [--threads 10000] [--checkpoints 1000] [--loads 7]
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
from bench_runs import start_server, stop_server
from playwright.async_api import Browser, ConsoleMessage, async_playwright

CHROMIUM = "/usr/bin/chromium"
TARGET_SECONDS = 1.0
READY = """(route) => {
  const main = document.querySelector("main");
  return main && main.dataset.route === route && main.dataset.state === "ready";
}"""
CHECKPOINTS_PER_RUN = 3
"""The chat graph writes an input, a loop and the model's checkpoint per run."""


async def seed_threads(client: httpx.AsyncClient, count: int) -> None:
    """`count` threads, a few hundred of them with a run (so usage, cost and activity vary)."""
    semaphore = asyncio.Semaphore(16)

    async def one(index: int) -> None:
        async with semaphore:
            body = {
                "name": f"support ticket {index}" if index % 3 else None,
                "tags": ["bench", f"group-{index % 10}"],
                "metadata": {"user": f"user-{index % 50}"},
            }
            answer = await client.post("/threads", json={k: v for k, v in body.items() if v})
            answer.raise_for_status()
            if index % 40 == 0:
                thread_id = answer.json()["thread_id"]
                run = {"assistant_id": "agent", "input": _message(f"what is {index} + 1")}
                (await client.post(f"/threads/{thread_id}/runs/wait", json=run)).raise_for_status()

    await asyncio.gather(*(one(index) for index in range(count)))


async def seed_long_thread(client: httpx.AsyncClient, checkpoints: int) -> str:
    """One thread with at least `checkpoints` checkpoints, from many short chat turns."""
    thread = (await client.post("/threads", json={"name": "a long conversation"})).json()
    thread_id: str = thread["thread_id"]
    for turn in range(-(-checkpoints // CHECKPOINTS_PER_RUN)):
        run = {"assistant_id": "chat", "input": _message(f"turn {turn}: tell me more")}
        (await client.post(f"/threads/{thread_id}/runs/wait", json=run)).raise_for_status()
    tree = (await client.get(f"/threads/{thread_id}/tree")).json()
    print(f"long thread: {len(tree)} checkpoints", flush=True)
    return thread_id


def _message(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _keep_error(errors: list[str], message: ConsoleMessage) -> None:
    if message.type == "error":
        errors.append(message.text)


async def time_view(browser: Browser, url: str, route: str, loads: int) -> list[float]:
    """Seconds from navigation to the view being ready, for `loads` fresh tabs."""
    times = []
    for _ in range(loads):
        page = await browser.new_page(viewport={"width": 1280, "height": 800})
        errors: list[str] = []
        page.on("console", functools.partial(_keep_error, errors))
        start = time.perf_counter()
        await page.goto(f"{url}/ui{route}")
        await page.wait_for_function(READY, arg=route, timeout=60_000)
        times.append(time.perf_counter() - start)
        await page.close()
        if errors:
            raise SystemExit(f"{route}: console errors {errors}")
    return times


async def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=10_000)
    parser.add_argument("--checkpoints", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=7)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_server(Path(folder))
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                started = time.perf_counter()
                await seed_threads(client, args.threads - 1)
                thread_id = await seed_long_thread(client, args.checkpoints)
                total = (await client.post("/threads/count", json={})).json()
                print(
                    f"seeded {total} threads in {time.perf_counter() - started:.0f} s", flush=True
                )
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                views = {
                    f"thread list ({total:,} threads, by last activity)": "#/threads",
                    "thread list sorted by cost": "#/threads?sort=cost_usd",
                    "thread list searched by text": "#/threads?q=what%20is%201",
                    f"thread view ({args.checkpoints:,} checkpoints)": f"#/threads/{thread_id}",
                    f"checkpoint tree ({args.checkpoints:,} checkpoints)": (
                        f"#/threads/{thread_id}/tree"
                    ),
                }
                slow = False
                for name, route in views.items():
                    times = await time_view(browser, url, route, args.loads)
                    median = statistics.median(times)
                    slow = slow or median > TARGET_SECONDS
                    print(
                        f"{name}: median {median * 1000:.0f} ms "
                        f"(min {min(times) * 1000:.0f}, max {max(times) * 1000:.0f}, "
                        f"{args.loads} loads)",
                        flush=True,
                    )
                await browser.close()
        finally:
            stop_server(server)
    print(f"target: under {TARGET_SECONDS:g} s each: {'MISSED' if slow else 'met'}")
    return 1 if slow else 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
