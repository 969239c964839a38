"""The inspector page (`/ui`) in a real headless Chromium: read a thread's conversation, travel
its checkpoint tree, fork and diff, stream a run live and cancel it, resume an interrupt; and the
page stays safe (hostile text stays text), keyboard-usable and phone-wide. Every test fails on
any console error or failed request (tests/browser/inspector.py)."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from playwright.async_api import BrowserContext

from tests.browser.inspector import api, eventually, inspector_config, new_thread, watched
from tests.conftest import RunningServer

pytestmark = pytest.mark.timeout(90)


@pytest.fixture
async def ui_server(database: Path) -> AsyncIterator[RunningServer]:
    running = await RunningServer(inspector_config(database)).start()
    try:
        yield running
    finally:
        await running.stop()


async def test_thread_conversation_with_tool_call_and_its_result(
    chromium: BrowserContext, ui_server: RunningServer
) -> None:
    thread_id = await new_thread(ui_server, "agent", "what is 2 + 3", name="Arithmetic")
    await new_thread(ui_server, "agent", "what is 9 + 9")
    async with watched(chromium, ui_server) as tab:
        await tab.go("/threads")
        assert await tab.page.locator("a.row").count() == 2
        await tab.page.get_by_label("Search").fill("IS 2 +")  # the first message, any case
        await tab.page.get_by_role("button", name="Search").click()
        await tab.page.wait_for_url(re.compile(r"q=IS\+2\+%2B"))
        await tab.ready()
        assert await tab.page.locator("a.row").count() == 1
        row = tab.page.locator("a.row", has_text="Arithmetic")
        assert "1 runs" in await row.inner_text()
        await row.click()
        await tab.page.wait_for_url(re.compile(f"#/threads/{thread_id}$"))
        await tab.ready()
        messages = tab.page.locator(".conversation .message")
        assert await messages.first.inner_text() == "USER\nwhat is 2 + 3"
        call = tab.page.locator(".tool-call").first
        assert await call.locator(".tool-name").inner_text() == "calculator"
        status = await call.locator(".tool-status").inner_text()
        assert re.fullmatch(r"success · [0-9.]+ ms", status), status
        assert "5" in await call.locator("pre").nth(1).inner_text()
        assert "The result is 5." in await messages.last.inner_text()
        assert await tab.page.locator(".run-list .badge").first.inner_text() == "success"


async def test_tree_fork_from_a_past_checkpoint_and_diff(
    chromium: BrowserContext, ui_server: RunningServer
) -> None:
    thread_id = await new_thread(ui_server, "agent", "what is 2 + 3")
    async with watched(chromium, ui_server) as tab:
        await tab.go(f"/threads/{thread_id}")
        await tab.page.get_by_role("link", name="Time travel").click()
        await tab.page.wait_for_url(re.compile("/tree$"))
        await tab.ready()
        nodes = tab.page.locator("svg.tree g.node")
        before = await nodes.count()
        assert before == 5
        # The first checkpoint after the input: the human message only.
        await nodes.nth(1).click()
        await tab.page.wait_for_selector("text=step 0 · loop", state="attached")
        await tab.page.get_by_text("Fork by editing the state").click()
        values = tab.page.get_by_label("State values (JSON)")
        edited = (await values.input_value()).replace("what is 2 + 3", "what is 7 + 1")
        await values.fill(edited)
        await tab.page.get_by_role("button", name="Fork from here").click()
        await tab.page.wait_for_url(re.compile(r"/tree\?checkpoint="))
        await tab.ready()
        await eventually(lambda: _count(tab.page.locator("svg.tree g.node"), before + 1))
        assert await tab.page.locator("svg.tree path.branch").count() == 1
        diff = tab.page.locator(".diff-list")
        await diff.wait_for()
        assert "human: what is 2 + 3\n→ human: what is 7 + 1" in await diff.inner_text()
        # Compared with the original branch's last checkpoint instead of the parent.
        picker = tab.page.locator(".diff select")
        options = picker.locator("option")
        assert await options.count() == before + 2  # its parent, then every checkpoint
        last = await options.nth(before).get_attribute("value")
        assert last is not None
        await picker.select_option(last)
        await eventually(lambda: _text_has(diff, "The result is 5."))


async def test_live_run_streams_tokens_and_is_cancelled(
    chromium: BrowserContext, ui_server: RunningServer
) -> None:
    thread = await api(ui_server, "POST", "/threads", {"metadata": {"assistant_id": "typing"}})
    async with watched(chromium, ui_server) as tab:
        await tab.go(f"/threads/{thread['thread_id']}")
        assert await tab.page.locator(".conversation .empty").count() == 1
        await tab.page.get_by_label("Message").fill("type for me")
        await tab.page.get_by_role("button", name="Send").click()
        live = tab.page.locator("section.live")
        await eventually(lambda: _text_has(live, "is running"))
        await eventually(lambda: _text_has(live.locator(".live-tokens"), "word5 "))
        await live.get_by_role("button", name="Cancel run").click()
        await eventually(lambda: _text_has(live, "ended: interrupted"))
        assert "word399" not in await live.inner_text()
        await eventually(lambda: _text_has(tab.page.locator(".run-list"), "interrupted"))
        # The page follows runs it did not start (streamed, so the model types slowly).
        body: dict[str, object] = {"assistant_id": "typing", "stream_mode": ["messages-tuple"]}
        body["input"] = {"messages": [{"role": "user", "content": "x"}]}
        await api(ui_server, "POST", f"/threads/{thread['thread_id']}/runs", body)
        await eventually(lambda: _text_has(live, "is running"))
        await live.get_by_role("button", name="Cancel run").click()
        await eventually(lambda: _text_has(live, "ended: interrupted"))


async def test_resume_an_interrupt_with_a_value(
    chromium: BrowserContext, ui_server: RunningServer
) -> None:
    thread_id = await new_thread(ui_server, "approval", "what is 4 * 5")
    async with watched(chromium, ui_server) as tab:
        await tab.go(f"/threads/{thread_id}")
        panel = tab.page.locator("section.interrupts")
        assert "calculator" in await panel.locator("pre").first.inner_text()
        answer = panel.get_by_label("Resume value (JSON)")
        assert '"approve"' in await answer.input_value()
        await panel.get_by_role("button", name="Resume").click()
        last = tab.page.locator(".conversation .message").last
        await eventually(lambda: _text_has(last, "The result is 20."))
        assert await panel.is_hidden()
    state = await api(ui_server, "GET", f"/threads/{thread_id}")
    assert state["status"] == "idle"


async def test_hostile_message_renders_as_text(
    chromium: BrowserContext, ui_server: RunningServer
) -> None:
    hostile = '<img src=x onerror="window.__owned=1"><script>window.__owned=2</script>'
    thread = await api(ui_server, "POST", "/threads", {"name": hostile, "tags": ["<b>t</b>"]})
    await api(
        ui_server,
        "POST",
        f"/threads/{thread['thread_id']}/messages",
        {"messages": [{"role": "user", "content": hostile}], "assistant_id": "agent"},
    )
    async with watched(chromium, ui_server) as tab:
        await tab.go("/threads")
        assert await tab.page.locator("a.row .title-text").first.inner_text() == hostile
        await tab.go(f"/threads/{thread['thread_id']}")
        assert await tab.page.locator(".message-text").first.inner_text() == hostile
        assert await tab.page.locator("h1").inner_text() == hostile
        assert await tab.page.locator("main img, main script, main b").count() == 0
        assert await tab.page.evaluate("window.__owned") is None


async def test_thread_list_by_keyboard(chromium: BrowserContext, ui_server: RunningServer) -> None:
    ids = [
        (await api(ui_server, "POST", "/threads", {"name": f"thread {n}"}))["thread_id"]
        for n in range(3)
    ]
    async with watched(chromium, ui_server) as tab:
        await tab.go("/threads?sort=created_at")
        for _ in range(30):
            await tab.page.keyboard.press("Tab")
            if await tab.page.evaluate("document.activeElement.classList.contains('row')"):
                break
        focused = "document.activeElement.getAttribute('href')"
        assert await tab.page.evaluate(focused) == f"#/threads/{ids[2]}"
        outline = await tab.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
        assert outline == "solid"
        await tab.page.keyboard.press("ArrowDown")
        assert await tab.page.evaluate(focused) == f"#/threads/{ids[1]}"
        await tab.page.keyboard.press("End")
        await tab.page.keyboard.press("ArrowUp")
        assert await tab.page.evaluate(focused) == f"#/threads/{ids[1]}"
        await tab.page.keyboard.press("Enter")
        await tab.page.wait_for_url(re.compile(f"#/threads/{ids[1]}$"))
        await tab.ready()
        assert await tab.page.locator("h1").inner_text() == "thread 1"


@pytest.mark.parametrize("route", ["/threads", "thread", "tree", "/assistants", "assistant"])
async def test_phone_width_has_no_horizontal_scroll(
    chromium: BrowserContext, ui_server: RunningServer, route: str
) -> None:
    thread_id = await new_thread(ui_server, "agent", "what is 12345678 * 87654321 " * 8)
    routes = {
        "thread": f"/threads/{thread_id}",
        "tree": f"/threads/{thread_id}/tree",
        "assistant": "/assistants/agent",
    }
    async with watched(chromium, ui_server, width=375, height=800) as tab:
        await tab.go(routes.get(route, route))
        assert await tab.state() == "ready"
        width = await tab.page.evaluate("document.documentElement.scrollWidth")
        wide = await tab.page.evaluate(_WIDER_THAN_VIEWPORT)
        assert width <= 375, wide


async def test_pasted_api_key_is_sent_with_every_call(
    chromium: BrowserContext, database: Path
) -> None:
    config = inspector_config(database, AGENT_RUNTIME_API_KEY="sesame")
    server = await RunningServer(config).start()
    try:
        async with watched(chromium, server) as tab:
            await tab.go("/threads")
            assert await tab.state() == "error"
            assert "Credentials" in await tab.page.locator("[role=alert]").inner_text()
            # The refusals so far were expected: the page had no key yet.
            assert all("401" in problem for problem in tab.problems), tab.problems
            tab.problems.clear()
            await tab.page.get_by_role("button", name="Credentials").click()
            await tab.page.get_by_label("Key or token").fill("sesame")
            await tab.page.get_by_role("button", name="Save").click()
            await tab.ready()
            await eventually(tab.state)
            await tab.page.wait_for_selector("main[data-state=ready]")
            assert "No threads yet" in await tab.page.locator("main").inner_text()
            stored = await tab.page.evaluate("sessionStorage.getItem('agent-runtime.credentials')")
            assert "sesame" in stored
    finally:
        await server.stop()


_WIDER_THAN_VIEWPORT = """[...document.querySelectorAll("body *")]
  .filter((el) => el.getBoundingClientRect().right > innerWidth)
  .map((el) => `${el.tagName}.${el.className}`).slice(0, 5)"""


async def _count(locator, expected: int) -> bool:
    return await locator.count() == expected


async def _text_has(locator, text: str) -> bool:
    return text in await locator.inner_text()


async def test_assistant_graph_and_a_new_thread_from_it(
    chromium: BrowserContext, ui_server: RunningServer
) -> None:
    async with watched(chromium, ui_server) as tab:
        await tab.go("/assistants")
        await tab.page.locator("a.row", has_text="agent").first.click()
        await tab.page.wait_for_url(re.compile("#/assistants/[0-9a-f-]{36}$"))
        await tab.ready()
        graph = tab.page.locator("svg.graph")
        labels = await graph.locator(".gnode text").all_text_contents()
        assert sorted(labels) == ["end", "model", "start", "tools"]
        assert await graph.locator("path.conditional").count() == 2
        await tab.page.get_by_text("Input", exact=True).click()
        assert "messages" in await tab.page.locator("details[open] pre").first.inner_text()
        await tab.page.get_by_label("First message").fill("what is 6 * 7")
        await tab.page.get_by_role("button", name="Start the thread").click()
        await tab.page.wait_for_url(re.compile("#/threads/[0-9a-f-]{36}$"))
        last = tab.page.locator(".conversation .message").last
        await eventually(lambda: _text_has(last, "The result is 42."))
