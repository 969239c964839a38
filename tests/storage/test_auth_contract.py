"""The filters authorization handlers return, applied by every backend: search, count, bulk run
searches and the threads an assistant's deletion takes with it only see rows whose metadata
passes; SQL and `AuthFilter.matches` agree on every case."""

from __future__ import annotations

from typing import Any

import pytest

from agent_runtime.storage.base import Storage
from agent_runtime.storage.filters import AuthFilter
from agent_runtime.storage.records import (
    AssistantQuery,
    NewAssistant,
    NewRun,
    NewThread,
    ThreadQuery,
)

METADATA: dict[str, dict[str, Any]] = {
    "alice": {"owner": "alice", "participants": ["alice", "carol"], "level": 1},
    "bob": {"owner": "bob", "participants": ["bob"], "level": 1.0},
    "shared": {"owner": "carol", "participants": ["alice", "bob", "carol"], "level": True},
    "nobody": {"created_by": "system"},
    "nested": {"owner": {"id": "alice", "org": "acme"}, "participants": "alice"},
}
CASES: list[tuple[dict[str, Any], list[str]]] = [
    ({"owner": "alice"}, ["alice"]),
    ({"owner": {"$eq": "bob"}}, ["bob"]),
    ({"participants": {"$contains": "alice"}}, ["alice", "shared"]),
    ({"participants": {"$contains": ["alice", "bob"]}}, ["shared"]),
    ({"owner": "carol", "participants": {"$contains": "bob"}}, ["shared"]),
    ({"owner": {"$eq": "carol", "$contains": "x"}}, []),
    ({"level": 1}, ["alice", "bob"]),  # 1 equals 1.0; true is not 1
    ({"level": True}, ["shared"]),
    ({"owner": {"id": "alice"}}, ["nested"]),  # objects match by containment
    ({"owner": "nobody"}, []),
    ({"missing": None}, []),
    ({}, ["alice", "bob", "nested", "nobody", "shared"]),
]


async def _threads(storage: Storage) -> None:
    for thread_id, metadata in METADATA.items():
        await storage.create_thread(
            NewThread(thread_id=thread_id, metadata=metadata, ttl=None), if_exists="raise"
        )


@pytest.mark.parametrize(("raw", "expected"), CASES)
async def test_threads_search_and_count_apply_an_auth_filter(
    storage: Storage, raw: dict[str, Any], expected: list[str]
) -> None:
    await _threads(storage)
    auth = AuthFilter.parse(raw)
    query = ThreadQuery(auth=auth, limit=100, sort_by="thread_id", sort_order="asc")

    found = [t["thread_id"] for t in await storage.search_threads(query)]

    assert found == expected
    assert await storage.count_threads(query) == len(expected)
    assert sorted(k for k, v in METADATA.items() if auth.matches(v)) == expected


@pytest.mark.parametrize(("raw", "expected"), CASES)
async def test_assistants_search_and_count_apply_an_auth_filter(
    storage: Storage, raw: dict[str, Any], expected: list[str]
) -> None:
    for assistant_id, metadata in METADATA.items():
        await storage.create_assistant(
            NewAssistant(assistant_id=assistant_id, graph_id="g", metadata=metadata),
            if_exists="raise",
        )
    query = AssistantQuery(
        auth=AuthFilter.parse(raw), limit=100, sort_by="assistant_id", sort_order="asc"
    )

    found = [a["assistant_id"] for a in await storage.search_assistants(query)]

    assert found == expected
    assert await storage.count_assistants(query) == len(expected)


async def test_an_auth_filter_narrows_the_other_filters_never_widens_them(
    storage: Storage,
) -> None:
    await _threads(storage)
    query = ThreadQuery(
        metadata={"owner": "bob"}, auth=AuthFilter.parse({"owner": "alice"}), limit=100
    )

    assert await storage.search_threads(query) == []
    assert await storage.count_threads(query) == 0


async def test_search_runs_keeps_to_threads_passing_the_filter(storage: Storage) -> None:
    await _threads(storage)
    for thread_id in ("alice", "bob", "shared"):
        await storage.create_run(
            NewRun(run_id=f"r-{thread_id}", thread_id=thread_id, assistant_id="a", graph_id="g")
        )
    mine = AuthFilter.parse({"participants": {"$contains": "alice"}})

    found = await storage.search_runs(thread_id=None, statuses=["pending"], auth=mine)
    on_bob = await storage.search_runs(thread_id="bob", statuses=["pending"], auth=mine)

    assert [r["run_id"] for r in found] == ["r-alice", "r-shared"]
    assert on_bob == []


async def test_deleting_an_assistant_takes_only_the_threads_the_filter_allows(
    storage: Storage,
) -> None:
    await storage.create_assistant(NewAssistant(assistant_id="a", graph_id="g"), if_exists="raise")
    for thread_id, owner in (("of-alice", "alice"), ("of-bob", "bob")):
        await storage.create_thread(
            NewThread(thread_id=thread_id, metadata={"assistant_id": "a", "owner": owner}),
            if_exists="raise",
        )

    await storage.delete_assistant(
        "a", delete_threads=True, thread_auth=AuthFilter.parse({"owner": "alice"})
    )

    left = [t["thread_id"] for t in await storage.search_threads(ThreadQuery())]
    assert left == ["of-bob"]
