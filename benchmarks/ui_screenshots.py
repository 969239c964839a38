"""The README's screenshots of the inspector page, from seeded data: a thread's conversation
(`docs/ui-thread.png`) and the time-travel tree with a forked branch and its diff
(`docs/ui-tree.png`), at 1280x800 in headless Chromium.

    .venv/bin/python benchmarks/ui_screenshots.py
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
from pathlib import Path
from typing import Any

import httpx
from bench_runs import start_server, stop_server
from playwright.async_api import Page, async_playwright

ROOT = Path(__file__).resolve().parents[1]
DOCS = ROOT / "docs"
CHROMIUM = "/usr/bin/chromium"
READY = """(route) => {
  const main = document.querySelector("main");
  return main && main.dataset.route === route && main.dataset.state === "ready";
}"""


async def seed(client: httpx.AsyncClient) -> str:
    """A few threads of the example graphs; returns the one with a forked branch."""

    async def thread(name: str, graph: str, texts: list[str], tags: list[str]) -> str:
        made = (await client.post("/threads", json={"name": name, "tags": tags})).json()
        for text in texts:
            run = {"assistant_id": graph, "input": _message(text)}
            answer = await client.post(f"/threads/{made['thread_id']}/runs/wait", json=run)
            answer.raise_for_status()
        return str(made["thread_id"])

    await thread("Greeting", "chat", ["hello there", "how are you?"], ["demo"])
    await thread("Refund approval", "approval", ["what is 4 * 5"], ["review"])
    main = await thread(
        "Arithmetic with tools", "agent", ["what is 2 + 3", "and what is 12 * 7?"], ["demo", "math"]
    )
    # A fork: the first question asked differently, then run again from there.
    tree = (await client.get(f"/threads/{main}/tree")).json()
    first_loop = next(node for node in tree if node["step"] == 0)
    state = (await client.get(f"/threads/{main}/state/{first_loop['checkpoint_id']}")).json()
    messages = state["values"]["messages"]
    messages[0]["content"] = "what is 7 + 1"
    fork = await client.post(
        f"/threads/{main}/state",
        json={"values": {"messages": messages}, "checkpoint_id": first_loop["checkpoint_id"]},
    )
    fork.raise_for_status()
    rerun = {"assistant_id": "agent", "checkpoint_id": fork.json()["checkpoint"]["checkpoint_id"]}
    rerun["input"] = None
    (await client.post(f"/threads/{main}/runs/wait", json=rerun)).raise_for_status()
    return main


def _message(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


async def shoot(page: Page, url: str, route: str, path: Path) -> None:
    await page.goto(f"{url}/ui{route}")
    await page.wait_for_function(READY, arg=route, timeout=30_000)
    await page.screenshot(path=str(path))
    print(f"wrote {path.relative_to(ROOT)}", flush=True)


async def main() -> int:
    DOCS.mkdir(exist_ok=True)
    with tempfile.TemporaryDirectory() as folder:
        server, url = start_server(Path(folder))
        try:
            async with httpx.AsyncClient(base_url=url, timeout=60) as client:
                thread_id = await seed(client)
                tree = (await client.get(f"/threads/{thread_id}/tree")).json()
            forked = next(node for node in tree if node["source"] == "update")
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(
                    executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"]
                )
                page = await browser.new_page(viewport={"width": 1280, "height": 800})
                await shoot(page, url, f"#/threads/{thread_id}", DOCS / "ui-thread.png")
                route = f"#/threads/{thread_id}/tree?checkpoint={forked['checkpoint_id']}"
                await shoot(page, url, route, DOCS / "ui-tree.png")
                await browser.close()
        finally:
            stop_server(server)
    return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
