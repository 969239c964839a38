"""Auth files in the shapes LangGraph's documentation shows, served as they are: shared threads
with `$contains`, per-action permissions, store namespaces checked or rewritten per user, the
default assistant run under handlers that scope assistants; plus copies, bulk cancel,
stateless runs and webhooks, which must not carry one user's data to another."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import httpx
import pytest

from agent_runtime.config import config_from_dict
from tests.conftest import ROOT, Database, RunningServer
from tests.server.test_run_control import WebhookReceiver

FIXTURES = ROOT / "tests" / "fixtures" / "auth"
CANARY = "canary-of-alice-91d0"
Serve = Callable[[str], AbstractAsyncContextManager[RunningServer]]


@pytest.fixture
def serve(database: Database) -> Serve:
    @asynccontextmanager
    async def serving(auth_path: str) -> AsyncIterator[RunningServer]:
        data = json.loads((FIXTURES / "langgraph.json").read_text())
        data["auth"]["path"] = auth_path
        data["agent_runtime"] = {"webhooks_allow_private": True}
        config = config_from_dict(data, base_dir=FIXTURES, database=database, environ={})
        running = await RunningServer(config).start()
        try:
            yield running
        finally:
            await running.stop()

    return serving


def _as(server: RunningServer, token: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=server.url, headers={"Authorization": f"Bearer {token}"}, timeout=30
    )


async def test_shared_threads_reach_their_participants_only(serve: Serve) -> None:
    async with (
        serve("./docs_shared.py:auth") as server,
        _as(server, "alice") as alice,
        _as(server, "bob") as bob,
        _as(server, "carol") as carol,
    ):
        shared = (await alice.post("/threads", json={"metadata": {"invited": ["bob"]}})).json()
        private = (await carol.post("/threads", json={"metadata": {"note": CANARY}})).json()

        assert shared["metadata"]["participants"] == ["alice", "bob"]
        bob_sees = [t["thread_id"] for t in (await bob.post("/threads/search", json={})).json()]
        assert bob_sees == [shared["thread_id"]]
        assert (await bob.post("/threads/count", json={})).json() == 1
        assert (await bob.get(f"/threads/{shared['thread_id']}")).status_code == 200
        ran = await bob.post(
            f"/threads/{shared['thread_id']}/runs/wait",
            json={"assistant_id": "whoami", "input": {"notes": ["bob was here"]}},
        )
        assert ran.status_code == 200, ran.text
        for caller in (alice, bob):
            answer = await caller.get(f"/threads/{private['thread_id']}")
            assert answer.status_code == 404 and CANARY not in answer.text
            listed = await caller.post("/threads/search", json={})
            assert CANARY not in listed.text
        assert (await carol.post("/threads/count", json={})).json() == 1


async def test_a_copy_carries_what_the_create_handler_stamps(serve: Serve) -> None:
    async with (
        serve("./docs_shared.py:auth") as server,
        _as(server, "alice") as alice,
        _as(server, "bob") as bob,
    ):
        shared = (await alice.post("/threads", json={"metadata": {"invited": ["bob"]}})).json()

        copied = await alice.post(f"/threads/{shared['thread_id']}/copy")

        assert copied.status_code == 200, copied.text
        copy = copied.json()
        # A new thread of alice's: the handler made her its only participant.
        assert copy["metadata"]["participants"] == ["alice"]
        assert (await bob.get(f"/threads/{copy['thread_id']}")).status_code == 404
        assert (await alice.get(f"/threads/{copy['thread_id']}")).status_code == 200


async def test_per_action_permissions(serve: Serve) -> None:
    async with (
        serve("./docs_scoped.py:auth") as server,
        _as(server, "alice") as alice,
        _as(server, "rita") as rita,
        _as(server, "admin") as admin,
    ):
        refused = await rita.post("/threads", json={})
        thread = (await alice.post("/threads", json={})).json()
        created = await admin.post("/assistants", json={"graph_id": "whoami"})
        not_admin = await alice.post("/assistants", json={"graph_id": "whoami"})

        assert refused.status_code == 403
        assert refused.json() == {"detail": "Needs threads:write", "code": "forbidden"}
        assert created.status_code == 200 and not_admin.status_code == 403
        assert (await rita.get(f"/threads/{thread['thread_id']}")).status_code == 404
        assert (await rita.post("/threads/search", json={})).json() == []
        run = await rita.post("/runs/wait", json={"assistant_id": "whoami", "input": {}})
        assert run.status_code == 403


async def test_the_default_assistant_runs_under_handlers_that_scope_assistants(
    serve: Serve,
) -> None:
    # Running on an assistant is threads.create_run in LangGraph: neither a handler refusing
    # assistants (scoped file) nor an owner filter on them (tutorial file) stops it.
    for path, token, other in (
        ("./docs_scoped.py:auth", "alice", "bob"),
        ("./docs_owner.py:auth", "user1-token", "user2-token"),
    ):
        async with serve(path) as server, _as(server, token) as user, _as(server, other) as peer:
            thread = (await user.post("/threads", json={})).json()
            ran = await user.post(
                f"/threads/{thread['thread_id']}/runs/wait",
                json={"assistant_id": "whoami", "input": {"notes": [CANARY]}},
            )
            stateless = await user.post("/runs/wait", json={"assistant_id": "whoami", "input": {}})

            assert ran.status_code == 200, (path, ran.text)
            assert ran.json()["notes"] == [CANARY]
            assert stateless.status_code == 200, (path, stateless.text)
            assert (await peer.post("/threads/search", json={})).json() == []
            assert (await peer.get(f"/threads/{thread['thread_id']}")).status_code == 404


async def test_store_namespaces_per_user(serve: Serve) -> None:
    async with (
        serve("./docs_owner.py:auth") as server,
        _as(server, "user1-token") as user1,
        _as(server, "user2-token") as user2,
    ):
        item = {"namespace": ["memories"], "key": "k", "value": {"text": CANARY}}
        assert (await user1.put("/store/items", json=item)).status_code == 204

        mine = await user1.get("/store/items", params={"namespace": "memories", "key": "k"})
        theirs = await user2.get("/store/items", params={"namespace": "memories", "key": "k"})
        spelled = await user2.get(
            "/store/items", params={"namespace": "user1.memories", "key": "k"}
        )
        searched = await user2.post("/store/items/search", json={"namespace_prefix": ["user1"]})
        listed = await user2.post("/store/namespaces", json={})

        assert mine.json()["namespace"] == ["user1", "memories"]
        assert theirs.status_code == 404 and spelled.status_code == 404
        assert searched.json() == {"items": []}
        assert listed.json() == {"namespaces": []}
    async with (
        serve("./docs_scoped.py:auth") as server,
        _as(server, "alice") as alice,
    ):
        own = {"namespace": ["alice", "x"], "key": "k", "value": {}}
        foreign = {"namespace": ["bob", "x"], "key": "k", "value": {}}
        assert (await alice.put("/store/items", json=own)).status_code == 204
        assert (await alice.put("/store/items", json=foreign)).status_code == 403


async def test_a_store_handler_may_change_the_search_it_is_given(serve: Serve) -> None:
    async with serve("./auth.py:auth") as server, _as(server, "user-a") as alice:
        for key, kind in (("a", "note"), ("b", "todo")):
            item = {"namespace": ["x"], "key": key, "value": {"kind": kind}}
            assert (await alice.put("/store/items", json=item)).status_code == 204
        # The fixture's handler rewrites only the namespace; the prefix it gets is the user's.
        found = (await alice.post("/store/items/search", json={"namespace_prefix": ["x"]})).json()
        assert sorted(i["key"] for i in found["items"]) == ["a", "b"]
        assert {tuple(i["namespace"]) for i in found["items"]} == {("alice", "x")}


async def test_bulk_cancel_by_status_cancels_only_the_callers_runs(serve: Serve) -> None:
    async with (
        serve("./auth.py:auth") as server,
        _as(server, "user-a") as alice,
        _as(server, "user-b") as bob,
    ):
        queued: dict[str, str] = {}
        for who, client in (("alice", alice), ("bob", bob)):
            thread = (await client.post("/threads", json={})).json()
            run = await client.post(
                f"/threads/{thread['thread_id']}/runs",
                json={"assistant_id": "whoami", "input": {}, "after_seconds": 3600},
            )
            queued[who] = f"/threads/{thread['thread_id']}/runs/{run.json()['run_id']}"

        cancelled = await bob.post("/runs/cancel", json={"status": "pending"})

        assert cancelled.status_code == 204
        assert (await bob.get(queued["bob"])).json()["status"] == "interrupted"
        assert (await alice.get(queued["alice"])).json()["status"] == "pending"


async def test_stateless_runs_and_threads_made_by_runs_belong_to_their_creator(
    serve: Serve,
) -> None:
    async with (
        serve("./auth.py:auth") as server,
        _as(server, "user-a") as alice,
        _as(server, "user-b") as bob,
    ):
        kept = await alice.post(
            "/runs/wait",
            json={"assistant_id": "whoami", "input": {"notes": [CANARY]}, "on_completion": "keep"},
        )
        new_id = str(uuid.uuid4())
        made = await alice.post(
            f"/threads/{new_id}/runs/wait",
            json={
                "assistant_id": "whoami",
                "input": {"notes": [CANARY]},
                "if_not_exists": "create",
            },
        )
        taken = await bob.post(
            f"/threads/{new_id}/runs/wait",
            json={"assistant_id": "whoami", "input": {}, "if_not_exists": "create"},
        )
        streamed = await bob.post("/runs/stream", json={"assistant_id": "whoami", "input": {}})

        assert kept.status_code == 200 and made.status_code == 200, (kept.text, made.text)
        thread_id = kept.headers["content-location"].split("/")[2]
        assert (await alice.get(f"/threads/{thread_id}")).json()["metadata"]["owner"] == "alice"
        assert (await alice.get(f"/threads/{new_id}")).json()["metadata"]["owner"] == "alice"
        assert taken.status_code == 404 and CANARY not in taken.text
        assert (await bob.get(f"/threads/{thread_id}")).status_code == 404
        assert streamed.status_code == 200 and CANARY not in streamed.text
        assert CANARY not in (await bob.post("/threads/search", json={})).text


@pytest.mark.timeout(30)
async def test_webhooks_carry_only_their_own_run(serve: Serve) -> None:
    hooks = {who: await WebhookReceiver().start() for who in ("alice", "bob")}
    try:
        async with (
            serve("./auth.py:auth") as server,
            _as(server, "user-a") as alice,
            _as(server, "user-b") as bob,
        ):
            for who, client, notes in (("alice", alice, [CANARY]), ("bob", bob, ["bob"])):
                thread = (await client.post("/threads", json={})).json()
                ran = await client.post(
                    f"/threads/{thread['thread_id']}/runs/wait",
                    json={
                        "assistant_id": "whoami",
                        "input": {"notes": notes},
                        "webhook": hooks[who].url,
                    },
                )
                assert ran.status_code == 200, ran.text
            got: dict[str, Any] = {}
            for who, hook in hooks.items():
                _, _, body = await asyncio.wait_for(hook.requests.get(), 10)
                got[who] = json.loads(body)
        assert CANARY in json.dumps(got["alice"])
        assert CANARY not in json.dumps(got["bob"])
        assert got["bob"]["metadata"]["owner"] == "bob"
        assert all(hook.requests.empty() for hook in hooks.values())
    finally:
        for hook in hooks.values():
            await hook.stop()
