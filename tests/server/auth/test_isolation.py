"""Two users and an anonymous caller against every operation of `/openapi.json` that takes a
thread or assistant id: the other user gets a 404, never A's data, and A's resources stay as
they were. test_matrix.py covers every other operation, searches and counts included."""

from __future__ import annotations

import re
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer
from tests.server.auth.conftest import as_user

CANARY = "canary-of-alice-7f3a"

# Bodies that pass validation, so the request reaches authorization (a 422 would prove nothing).
BODIES: dict[str, Any] = {
    "update_assistant": {"metadata": {"owner": "bob"}},
    "list_assistant_versions": {},
    "set_latest_assistant_version": {"version": 1},
    "update_thread": {"metadata": {"owner": "bob"}},
    "post_thread_state_at_checkpoint": {"checkpoint": {}},
    "update_thread_state": {"values": {"notes": ["from bob"]}},
    "search_thread_history": {"limit": 10},
    "create_thread_messages": {"messages": [{"role": "user", "content": "hi"}]},
    "update_thread_message": {"content": "edited by bob"},
    "create_run": {"assistant_id": "whoami", "input": {"notes": ["bob"]}},
    "stream_run": {"assistant_id": "whoami", "input": {"notes": ["bob"]}},
    "wait_run": {"assistant_id": "whoami", "input": {"notes": ["bob"]}},
    "create_thread_cron": {"schedule": "* * * * *", "assistant_id": "whoami"},
}


async def _alice_world(alice: httpx.AsyncClient) -> dict[str, str]:
    """A thread with a finished run and a state holding the canary, and an assistant."""
    thread = (await alice.post("/threads", json={"metadata": {"secret": CANARY}})).json()
    thread_id = thread["thread_id"]
    assert thread["metadata"]["owner"] == "alice"
    waited = await alice.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": "whoami", "input": {"notes": [CANARY]}},
    )
    assert waited.status_code == 200, waited.text
    runs = (await alice.get(f"/threads/{thread_id}/runs")).json()
    state = (await alice.get(f"/threads/{thread_id}/state")).json()
    assistant = await alice.post(
        "/assistants", json={"graph_id": "whoami", "name": CANARY, "metadata": {"x": CANARY}}
    )
    assert assistant.status_code == 200, assistant.text
    return {
        "thread_id": thread_id,
        "run_id": runs[0]["run_id"],
        "checkpoint_id": state["checkpoint"]["checkpoint_id"],
        "message_id": "no-such-message",
        "assistant_id": assistant.json()["assistant_id"],
        "namespace": "whoami",
    }


def _targets(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    found = []
    for path, methods in spec["paths"].items():
        if "{thread_id}" not in path and "{assistant_id}" not in path:
            continue
        for method, operation in methods.items():
            found.append((method.upper(), path, operation["operationId"]))
    return found


async def _snapshot(alice: httpx.AsyncClient, ids: dict[str, str]) -> Any:
    thread = (await alice.get(f"/threads/{ids['thread_id']}")).json()
    thread.pop("updated_at", None)
    return (
        thread,
        (await alice.get(f"/threads/{ids['thread_id']}/history")).json(),
        [r["run_id"] for r in (await alice.get(f"/threads/{ids['thread_id']}/runs")).json()],
        (await alice.get(f"/assistants/{ids['assistant_id']}")).json(),
    )


@pytest.mark.timeout(120)
async def test_every_id_route_is_a_404_for_another_user(auth_server: RunningServer) -> None:
    async with (
        as_user(auth_server, "a") as alice,
        as_user(auth_server, "b") as bob,
        as_user(auth_server, None) as anonymous,
    ):
        ids = await _alice_world(alice)
        before = await _snapshot(alice, ids)
        spec = (await anonymous.get("/openapi.json")).json()
        targets = _targets(spec)
        assert len(targets) >= 37  # every thread, run, state, message and assistant route
        answers: dict[str, int] = {}
        for method, path, operation in targets:
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            body = BODIES.get(operation) if method in ("POST", "PATCH", "PUT") else None
            if method in ("POST", "PATCH", "PUT") and body is None:
                body = {}
            for caller, expected in ((bob, 404), (anonymous, 401)):
                response = await caller.request(method, url, json=body)
                assert CANARY not in response.text, (operation, response.text)
                assert response.status_code == expected, (operation, response.text)
                assert set(response.json()) == {"detail", "code"}
                if caller is bob:
                    # The guard's answer, not the route's: it never ran.
                    code = response.json()["code"]
                    assert code in ("thread_not_found", "assistant_not_found"), operation
            answers[operation] = 404
        assert "join_run_stream" in answers and "join_thread_stream" in answers
        assert await _snapshot(alice, ids) == before


async def test_owner_still_reaches_everything(auth_server: RunningServer) -> None:
    async with as_user(auth_server, "a") as alice:
        ids = await _alice_world(alice)
        for path in ("", "/state", "/history", "/runs", "/tree", "/tool-calls"):
            response = await alice.get(f"/threads/{ids['thread_id']}{path}")
            assert response.status_code == 200, (path, response.text)
        assert (await alice.get(f"/assistants/{ids['assistant_id']}")).json()["name"] == CANARY


async def test_a_thread_id_of_another_user_cannot_be_taken_with_if_exists(
    auth_server: RunningServer,
) -> None:
    async with as_user(auth_server, "a") as alice, as_user(auth_server, "b") as bob:
        ids = await _alice_world(alice)
        taken = await bob.post(
            "/threads", json={"thread_id": ids["thread_id"], "if_exists": "do_nothing"}
        )

        assert taken.status_code == 409
        assert CANARY not in taken.text


async def test_runs_on_a_thread_of_another_user_are_refused_before_any_stream(
    auth_server: RunningServer,
) -> None:
    async with as_user(auth_server, "a") as alice, as_user(auth_server, "b") as bob:
        ids = await _alice_world(alice)
        streamed = await bob.post(
            f"/threads/{ids['thread_id']}/runs/stream",
            json={"assistant_id": "whoami", "input": {}, "if_not_exists": "create"},
        )

        assert streamed.status_code == 404
        assert streamed.headers["content-type"] == "application/json"


async def test_search_narrowed_by_a_handler_stamping_the_search_value(
    auth_server: RunningServer,
) -> None:
    # The fixture's handler stamps `metadata.owner` on every value, the search body included,
    # so the search's own metadata filter narrows it (as on LangGraph), besides the filter it
    # returns, which storage applies.
    async with as_user(auth_server, "a") as alice, as_user(auth_server, "b") as bob:
        await _alice_world(alice)
        found = await bob.post("/threads/search", json={})
        counted = await bob.post("/threads/count", json={})
        mine = await alice.post("/threads/search", json={})

        assert found.json() == []
        assert counted.json() == 0
        assert CANARY in mine.text
