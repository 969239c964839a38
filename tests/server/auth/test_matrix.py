"""Every operation of `/openapi.json`, called by a second user and by an anonymous caller, on a
server whose first user owns a thread, a finished and a pending run, an assistant and a store
item, all holding a canary: ids of A's resources are 404s, searches, counts and lists leave A's
out, no response or stream of B's carries the canary, and A's resources stay as they were. Runs
for two auth files: ours (tests/fixtures/auth/auth.py) and LangGraph's tutorial one."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agent_runtime.config import config_from_dict
from tests.conftest import ROOT, Database, RunningServer

CANARY = "canary-of-alice-5c1e"
FIXTURES = ROOT / "tests" / "fixtures" / "auth"
FLAVORS: dict[str, tuple[str, str, str]] = {
    # auth file, A's token, B's token
    "ours": ("./auth.py:auth", "Bearer user-a", "Bearer user-b"),
    "tutorial": ("./docs_owner.py:auth", "Bearer user1-token", "Bearer user2-token"),
}
PUBLIC = {"ok", "info", "get_openapi", "docs"}
RUN = {"assistant_id": "whoami", "input": {"notes": ["from bob"]}}
NEVER = "0 0 1 1 *"
"""A cron schedule that does not come due while a test runs (New Year's midnight)."""
CRON = {"assistant_id": "whoami", "schedule": NEVER, "input": {"notes": ["from bob"]}}
# What B sends to each operation that names none of A's resources, and the statuses it may get.
CALLS: dict[str, tuple[Any, dict[str, str], set[int]]] = {
    "create_assistant": ({"graph_id": "whoami"}, {}, {200}),
    "search_assistants": ({"limit": 1000}, {}, {200}),
    "count_assistants": ({}, {}, {200}),
    "create_thread": ({}, {}, {200}),
    "search_threads": ({"limit": 1000}, {}, {200}),
    "count_threads": ({}, {}, {200}),
    "prune_threads": (None, {}, {404}),  # names A's thread
    "create_stateless_run": (RUN, {}, {200}),
    "stream_stateless_run": (RUN, {}, {200}),
    "wait_stateless_run": (RUN, {}, {200}),
    "create_stateless_run_batch": ([RUN], {}, {200}),
    "cancel_runs": ({"status": "all"}, {}, {204}),
    "put_item": ({"namespace": ["notes"], "key": "k", "value": {"text": "bob"}}, {}, {204}),
    "get_item": (None, {"namespace": "notes", "key": "k"}, {200, 404}),
    "search_items": ({"limit": 1000}, {}, {200}),
    "list_namespaces": ({}, {}, {200}),
    "delete_item": ({"namespace": ["notes"], "key": "k"}, {}, {204}),
    "create_cron": (CRON, {}, {200}),
    "search_crons": ({"limit": 1000}, {}, {200}),
    "count_crons": ({}, {}, {200}),
}
# Bodies for operations on A's ids that pass validation, so the request reaches authorization.
ID_BODIES: dict[str, Any] = {
    "update_assistant": {"metadata": {"owner": "bob"}},
    "set_latest_assistant_version": {"version": 1},
    "update_thread": {"metadata": {"owner": "bob"}},
    "post_thread_state_at_checkpoint": {"checkpoint": {}},
    "update_thread_state": {"values": {"notes": ["from bob"]}},
    "create_thread_messages": {"messages": [{"role": "user", "content": "hi"}]},
    "update_thread_message": {"content": "edited by bob"},
    "create_run": RUN,
    "stream_run": RUN,
    "wait_run": RUN,
    "create_thread_cron": CRON,
    "update_cron": {"enabled": False},
}


@pytest.fixture(params=sorted(FLAVORS))
async def matrix_server(
    request: pytest.FixtureRequest, database: Database
) -> AsyncIterator[tuple[RunningServer, str, str]]:
    path, token_a, token_b = FLAVORS[request.param]
    data = json.loads((FIXTURES / "langgraph.json").read_text())
    data["auth"]["path"] = path
    config = config_from_dict(data, base_dir=FIXTURES, database=database, environ={})
    running = await RunningServer(config).start()
    try:
        yield running, token_a, token_b
    finally:
        await running.stop()


def _client(server: RunningServer, token: str | None) -> httpx.AsyncClient:
    headers = {"Authorization": token} if token else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30)


async def _alice_world(alice: httpx.AsyncClient) -> dict[str, str]:
    thread = (await alice.post("/threads", json={"metadata": {"secret": CANARY}})).json()
    thread_id = thread["thread_id"]
    waited = await alice.post(
        f"/threads/{thread_id}/runs/wait",
        json={"assistant_id": "whoami", "input": {"notes": [CANARY]}, "metadata": {"m": CANARY}},
    )
    assert waited.status_code == 200, waited.text
    pending = (await alice.post("/threads", json={"metadata": {"secret": CANARY}})).json()
    queued = await alice.post(
        f"/threads/{pending['thread_id']}/runs",
        json={"assistant_id": "whoami", "input": {"notes": [CANARY]}, "after_seconds": 3600},
    )
    assert queued.status_code == 200, queued.text
    runs = (await alice.get(f"/threads/{thread_id}/runs")).json()
    state = (await alice.get(f"/threads/{thread_id}/state")).json()
    assistant = await alice.post(
        "/assistants", json={"graph_id": "whoami", "name": CANARY, "metadata": {"x": CANARY}}
    )
    assert assistant.status_code == 200, assistant.text
    put = await alice.put(
        "/store/items", json={"namespace": ["notes"], "key": "k", "value": {"text": CANARY}}
    )
    assert put.status_code == 204, put.text
    cron = await alice.post(
        "/runs/crons",
        json={
            "assistant_id": "whoami",
            "schedule": NEVER,
            "input": {"notes": [CANARY]},
            "metadata": {"secret": CANARY},
        },
    )
    assert cron.status_code == 200, cron.text
    return {
        "cron_id": cron.json()["cron_id"],
        "thread_id": thread_id,
        "pending_thread_id": pending["thread_id"],
        "run_id": runs[0]["run_id"],
        "checkpoint_id": state["checkpoint"]["checkpoint_id"],
        "message_id": "no-such-message",
        "assistant_id": assistant.json()["assistant_id"],
        "namespace": "whoami",
    }


async def _snapshot(alice: httpx.AsyncClient, ids: dict[str, str]) -> Any:
    found: list[Any] = []
    for thread_id in (ids["thread_id"], ids["pending_thread_id"]):
        thread = (await alice.get(f"/threads/{thread_id}")).json()
        thread.pop("updated_at", None)
        runs = (await alice.get(f"/threads/{thread_id}/runs")).json()
        history = (await alice.get(f"/threads/{thread_id}/history")).json()
        found += [thread, [(r["run_id"], r["status"]) for r in runs], history]
    found.append((await alice.get(f"/assistants/{ids['assistant_id']}")).json())
    items = (await alice.post("/store/items/search", json={})).json()["items"]
    found.append([(i["namespace"], i["key"], i["value"]) for i in items])
    found.append((await alice.post("/threads/count", json={})).json())
    crons = (await alice.post("/runs/crons/search", json={})).json()
    found.append(sorted((c["cron_id"], c["enabled"], c["schedule"]) for c in crons))
    return found


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [
        (method.upper(), path, operation["operationId"])
        for path, methods in spec["paths"].items()
        for method, operation in methods.items()
    ]


@pytest.mark.timeout(180)
async def test_every_operation_keeps_a_users_resources_from_another(
    matrix_server: tuple[RunningServer, str, str],
) -> None:
    server, token_a, token_b = matrix_server
    async with (
        _client(server, token_a) as alice,
        _client(server, token_b) as bob,
        _client(server, None) as anonymous,
    ):
        ids = await _alice_world(alice)
        before = await _snapshot(alice, ids)
        spec = (await anonymous.get("/openapi.json")).json()
        operations = _operations(spec)
        assert len(operations) >= 58
        unknown = [
            op
            for _, path, op in operations
            if op not in PUBLIC and op not in CALLS and "{" not in path
        ]
        assert unknown == [], f"classify these operations in CALLS: {unknown}"
        for method, path, operation in operations:
            url = re.sub(r"\{(\w+)\}", lambda m: ids[m.group(1)], path)
            if "{" in path:
                body = ID_BODIES.get(operation, {}) if method in ("POST", "PATCH", "PUT") else None
                query: dict[str, str] = {}
                expected = {404}
            elif operation in PUBLIC:
                body, query, expected = None, {}, {200}
            else:
                body, query, expected = CALLS[operation]
                if operation == "prune_threads":
                    body = {"thread_ids": [ids["thread_id"]]}
            answer = await bob.request(method, url, json=body, params=query)
            assert CANARY not in answer.text, (operation, answer.text)
            assert answer.status_code in expected, (operation, answer.status_code, answer.text)
            if "{" in path:
                assert answer.json()["code"] in (
                    "thread_not_found",
                    "assistant_not_found",
                    "cron_not_found",
                )
            else:
                _check_listing(operation, answer, ids)
            anonymous_answer = await anonymous.request(method, url, json=body, params=query)
            assert CANARY not in anonymous_answer.text, operation
            wanted = 200 if operation in PUBLIC else 401
            assert anonymous_answer.status_code == wanted, (operation, anonymous_answer.text)
        assert await _snapshot(alice, ids) == before
        mine = await alice.post("/threads/search", json={})
        assert CANARY in mine.text  # the canary is there to be found, for its owner


def _check_listing(operation: str, answer: httpx.Response, ids: dict[str, str]) -> None:
    if operation == "search_threads":
        found = {t["thread_id"] for t in answer.json()}
        assert not found & {ids["thread_id"], ids["pending_thread_id"]}
    elif operation == "search_assistants":
        assert ids["assistant_id"] not in {a["assistant_id"] for a in answer.json()}
    elif operation == "search_crons":
        assert ids["cron_id"] not in {c["cron_id"] for c in answer.json()}
    elif operation in ("count_threads", "count_assistants", "count_crons"):
        assert isinstance(answer.json(), int)
    elif operation == "search_items":
        assert all(item["value"].get("text") != CANARY for item in answer.json()["items"])


@pytest.mark.timeout(60)
async def test_counts_and_searches_agree_and_leave_the_other_user_out(
    matrix_server: tuple[RunningServer, str, str],
) -> None:
    server, token_a, token_b = matrix_server
    async with _client(server, token_a) as alice, _client(server, token_b) as bob:
        await _alice_world(alice)
        for _ in range(2):
            assert (await bob.post("/threads", json={})).status_code == 200
        assert (await bob.post("/assistants", json={"graph_id": "whoami"})).status_code == 200
        # A metadata filter naming A cannot widen what B's handler allows.
        spoof = {"metadata": {"owner": "alice", "secret": CANARY}}

        threads = (await bob.post("/threads/search", json={})).json()
        counted = (await bob.post("/threads/count", json={})).json()
        assistants = (await bob.post("/assistants/search", json={"limit": 100})).json()
        assistants_counted = (await bob.post("/assistants/count", json={})).json()
        spoofed = await bob.post("/threads/search", json=spoof)
        spoof_count = await bob.post("/threads/count", json=spoof)
        namespaces = (await bob.post("/store/namespaces", json={})).json()["namespaces"]
        alice_threads = (await alice.post("/threads/count", json={})).json()

        assert len(threads) == counted == 2
        assert len(assistants) == assistants_counted == 1
        assert spoofed.json() == [] and spoof_count.json() == 0
        assert all(CANARY not in json.dumps(ns) for ns in namespaces)
        assert alice_threads == 2
