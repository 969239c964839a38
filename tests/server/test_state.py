"""Thread state and history through langgraph_sdk: snapshots at the latest and past checkpoints,
subgraph state, history pages and filters, updates and forks, replays, the checkpoint tree and
the diff between checkpoints, and every error with its exact status and message."""

from __future__ import annotations

from typing import Any, cast

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient
from langgraph_sdk.errors import APIStatusError
from langgraph_sdk.schema import Checkpoint

from tests.conftest import json_of
from tests.server.run_probes import until_busy

# Well formed, but no thread has it.
UNKNOWN = "1f1e57ab-def0-6c4a-bfff-a3a22c06468a"
EXAMPLE = "checkpoint id such as 1f1e57ab-def0-6c4a-bfff-a3a22c06468a"
THREE = ["one", "two", "three"]


def _partial(checkpoint: dict[str, Any]) -> Checkpoint:
    """A checkpoint named by some of its fields, as the API takes it; the SDK's `Checkpoint`
    declares every field required."""
    return cast(Checkpoint, checkpoint)


def _said(text: str) -> dict[str, Any]:
    return {"messages": [{"role": "user", "content": text}]}


def _id(entry: object) -> str:
    checkpoint: str = json_of(entry)["checkpoint"]["checkpoint_id"]
    return checkpoint


def _parent(entry: object) -> str | None:
    parent = json_of(entry)["parent_checkpoint"]
    return None if parent is None else parent["checkpoint_id"]


def _contents(state: object) -> list[str]:
    return [m["content"] for m in json_of(state)["values"]["messages"]]


async def _chat(rclient: LangGraphClient, tid: str, *texts: str) -> list[str]:
    """Run one chat turn per text; the run ids, in order."""
    run_ids = []
    for text in texts:
        run = await rclient.runs.create(tid, "chat", input=_said(text))
        await rclient.runs.join(tid, run["run_id"])
        run_ids.append(run["run_id"])
    return run_ids


async def _full_history(rclient: LangGraphClient, tid: str) -> list[dict[str, Any]]:
    return [json_of(s) for s in await rclient.threads.get_history(tid, limit=1000)]


async def _error(call: Any) -> tuple[int, dict[str, Any]]:
    with pytest.raises(APIStatusError) as caught:
        await call
    response = caught.value.response
    return response.status_code, response.json()


async def test_state_of_a_never_run_thread_is_empty(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    assert await rclient.threads.get_state(tid) == {
        "values": {},
        "next": [],
        "tasks": [],
        "checkpoint": {"thread_id": tid, "checkpoint_ns": "", "checkpoint_id": None},
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "interrupts": [],
    }
    assert await rclient.threads.get_history(tid) == []
    assert (await rhttp.get(f"/threads/{tid}/history")).json() == []
    assert (await rhttp.get(f"/threads/{tid}/tree")).json() == []
    diff = (await rhttp.get(f"/threads/{tid}/history/diff")).json()
    assert diff == {
        "from": None,
        "to": None,
        "added": {},
        "removed": {},
        "changed": {},
        "messages": {},
    }


async def test_state_has_the_snapshot_shape(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    [run_id] = await _chat(rclient, tid, "hello")
    state = await rclient.threads.get_state(tid)
    assert set(state) == {
        "values",
        "next",
        "tasks",
        "checkpoint",
        "metadata",
        "created_at",
        "parent_checkpoint",
        "interrupts",
    }
    assert _contents(state) == ["hello", "[offline model] You said: hello"]
    assert state["next"] == []
    assert state["tasks"] == []
    assert state["interrupts"] == []
    assert state["checkpoint"]["thread_id"] == tid
    assert state["checkpoint"]["checkpoint_ns"] == ""
    assert json_of(state["parent_checkpoint"])["thread_id"] == tid
    assert json_of(state["metadata"])["source"] == "loop"
    assert json_of(state["metadata"])["step"] == 1
    assert json_of(state["metadata"])["run_id"] == run_id
    assert json_of(state["metadata"])["graph_id"] == "chat"
    assert json_of(state)["created_at"].endswith("+00:00")


async def test_history_of_two_chat_turns(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first, second = await _chat(rclient, tid, "hello", "again")
    history = await rclient.threads.get_history(tid)
    # Newest first; each turn leaves an input checkpoint, the one before `model`, the end.
    assert [
        (json_of(s["metadata"])["step"], json_of(s["metadata"])["source"]) for s in history
    ] == [
        (4, "loop"),
        (3, "loop"),
        (2, "input"),
        (1, "loop"),
        (0, "loop"),
        (-1, "input"),
    ]
    assert [json_of(s["metadata"])["run_id"] for s in history] == [second] * 3 + [first] * 3
    assert [s["next"] for s in history] == [[], ["model"], ["__start__"]] * 2
    assert [_parent(s) for s in history] == [_id(s) for s in history[1:]] + [None]
    assert [len(json_of(s["values"]).get("messages", [])) for s in history] == [4, 3, 2, 2, 1, 0]
    created = [json_of(s)["created_at"] for s in history]
    assert created == sorted(created, reverse=True)
    assert history[0] == await rclient.threads.get_state(tid)
    # The GET form answers the same.
    assert (await rhttp.get(f"/threads/{tid}/history")).json() == history


async def test_history_limit_default_and_maximum(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    for _ in range(3):
        await rclient.runs.wait(tid, "slow", input={"steps": []}, context={"delay": 0})
    # Five checkpoints a run: input, then one before each of three steps, then the end.
    assert len(await rclient.threads.get_history(tid)) == 10
    assert len((await rhttp.get(f"/threads/{tid}/history")).json()) == 10
    assert len(await rclient.threads.get_history(tid, limit=1000)) == 15
    assert len(await rclient.threads.get_history(tid, limit=3)) == 3
    response = await rhttp.post(f"/threads/{tid}/history", json={"limit": 1001})
    assert response.status_code == 422
    assert response.json() == {
        "detail": "limit: value should be less than or equal to 1000, got 1001",
        "code": "validation_error",
    }
    response = await rhttp.get(f"/threads/{tid}/history", params={"limit": 1001})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"
    assert response.json()["detail"].startswith("limit: value should be less than or equal to 1000")
    response = await rhttp.post(f"/threads/{tid}/history", json={"limit": 0})
    assert response.status_code == 422
    assert response.json()["code"] == "validation_error"


async def test_history_before_string_and_object_give_the_same_page(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello", "again")
    everything = await _full_history(rclient, tid)
    pivot = everything[1]
    by_id = await rclient.threads.get_history(tid, before=_id(pivot), limit=3)
    by_object = await rclient.threads.get_history(tid, before=pivot["checkpoint"], limit=3)
    by_query = await rhttp.get(f"/threads/{tid}/history", params={"before": _id(pivot), "limit": 3})
    assert by_id == everything[2:5]
    assert by_object == by_id
    assert by_query.json() == by_id
    # Paging to the end: nothing is older than the first checkpoint.
    assert await rclient.threads.get_history(tid, before=_id(everything[-1])) == []


async def test_history_before_a_runnable_config_pages_like_an_id(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello", "again")
    everything = await _full_history(rclient, tid)
    pivot = everything[1]
    # The form LangGraph's own `get_state_history(before=...)` takes, as a user passes it on.
    by_config = await rclient.threads.get_history(
        tid,
        # The API also takes a config here; the SDK declares a checkpoint or its id.
        before=cast(Any, {"configurable": {"checkpoint_id": _id(pivot)}}),
        limit=3,  # type: ignore[arg-type]
    )
    assert by_config == everything[2:5]
    # A whole config, as a snapshot carries it, with keys that say nothing about paging.
    config = {"configurable": {**pivot["checkpoint"], "thread_id": tid}, "tags": ["x"]}
    response = await rhttp.post(f"/threads/{tid}/history", json={"before": config, "limit": 3})
    assert response.status_code == 200
    assert response.json() == by_config
    # A config that names no checkpoint is refused like an object without one.
    response = await rhttp.post(f"/threads/{tid}/history", json={"before": {"configurable": {}}})
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"before must be a {EXAMPLE}, got null",
        "code": "invalid_checkpoint_id",
    }
    response = await rhttp.post(
        f"/threads/{tid}/history", json={"before": {"configurable": {"checkpoint_id": UNKNOWN}}}
    )
    assert response.status_code == 404
    assert response.json()["code"] == "checkpoint_not_found"


async def test_history_metadata_filter(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    first, second = await _chat(rclient, tid, "hello", "again")
    await rclient.threads.update_state(tid, {"messages": []}, as_node="model")
    everything = await _full_history(rclient, tid)

    updates = await rclient.threads.get_history(tid, metadata={"source": "update"})
    assert [_id(s) for s in updates] == [_id(everything[0])]
    assert json_of(updates[0]["metadata"])["source"] == "update"

    of_first = await rclient.threads.get_history(tid, metadata={"run_id": first})
    assert [_id(s) for s in of_first] == [_id(s) for s in everything[4:]]
    assert {json_of(s["metadata"])["run_id"] for s in of_first} == {first}

    both = await rclient.threads.get_history(tid, metadata={"run_id": second, "source": "input"})
    assert [json_of(s["metadata"])["step"] for s in both] == [2]
    assert await rclient.threads.get_history(tid, metadata={"run_id": "nobody"}) == []


async def test_state_at_a_checkpoint_by_id_and_by_object(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello", "again")
    everything = await _full_history(rclient, tid)
    past = everything[3]
    by_id = await rclient.threads.get_state(tid, checkpoint_id=_id(past))
    by_object = await rclient.threads.get_state(tid, checkpoint=past["checkpoint"])
    assert by_id == past
    assert by_object == by_id
    assert _contents(by_id) == ["hello", "[offline model] You said: hello"]
    # A bare checkpoint id in the object is enough.
    assert (
        await rclient.threads.get_state(tid, checkpoint=_partial({"checkpoint_id": _id(past)}))
        == past
    )
    # `select` trims the snapshot to the named fields.
    response = await rhttp.get(f"/threads/{tid}/state/{_id(past)}", params={"select": "next"})
    assert response.json() == {"next": []}


async def test_state_with_subgraphs_nests_the_interrupted_child(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "nested", input={"steps": []})

    flat = await rclient.threads.get_state(tid)
    assert flat["values"] == {"steps": ["before"]}
    assert flat["next"] == ["child"]
    [task] = flat["tasks"]
    assert task["name"] == "child"
    assert task["state"] is None
    namespace = json_of(task["checkpoint"])["checkpoint_ns"]
    assert namespace == f"child:{task['id']}"
    [pending] = task["interrupts"]
    assert pending["value"] == {"question": "continue?"}
    assert flat["interrupts"] == [pending]

    nested = await rclient.threads.get_state(tid, subgraphs=True)
    [task] = nested["tasks"]
    assert task["name"] == "child"
    assert task["interrupts"] == [pending]
    assert task["checkpoint"] is None
    child = json_of(task["state"])
    assert child["values"] == {"steps": ["before"]}
    assert child["next"] == ["ask"]
    assert child["checkpoint"]["checkpoint_ns"] == namespace
    assert child["checkpoint"]["checkpoint_map"][""] == _id(nested)
    assert child["interrupts"] == [pending]
    assert [t["name"] for t in child["tasks"]] == ["ask"]
    assert child["tasks"][0]["interrupts"] == [pending]

    # The child's checkpoint object, as the SDK hands it back, reads the child's state.
    again = await rclient.threads.get_state(tid, checkpoint=child["checkpoint"])
    assert again["values"] == child["values"]
    assert again["next"] == ["ask"]
    assert _id(again) == _id(child)


async def test_history_of_a_subgraph_namespace(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "nested", input={"steps": []})
    nested_state = await rclient.threads.get_state(tid)
    namespace = json_of(nested_state["tasks"][0]["checkpoint"])["checkpoint_ns"]

    child = await rclient.threads.get_history(
        tid, checkpoint=_partial({"checkpoint_ns": namespace})
    )
    assert [(json_of(s["metadata"])["source"], s["next"]) for s in child] == [
        ("loop", ["ask"]),
        ("input", ["__start__"]),
    ]
    assert {s["checkpoint"]["checkpoint_ns"] for s in child} == {namespace}
    assert _parent(child[0]) == _id(child[1])
    root = await rclient.threads.get_history(tid)
    assert {s["checkpoint"]["checkpoint_ns"] for s in root} == {""}
    assert [s["next"] for s in root] == [["child"], ["before"], ["__start__"]]
    # `before` within the namespace.
    older = await rclient.threads.get_history(
        tid, checkpoint=_partial({"checkpoint_ns": namespace}), before=child[0]["checkpoint"]
    )
    assert older == child[1:]
    # The diff reads the namespace too: the child's first step took the parent's `steps`.
    response = await rhttp.get(f"/threads/{tid}/history/diff", params={"checkpoint_ns": namespace})
    diff = response.json()
    assert (diff["from"]["checkpoint_ns"], diff["from"]["checkpoint_id"]) == (
        namespace,
        _id(child[1]),
    )
    assert (diff["to"]["checkpoint_ns"], diff["to"]["checkpoint_id"]) == (namespace, _id(child[0]))
    assert diff["changed"] == {"steps": {"from": [], "to": ["before"]}}


async def test_update_state_as_node(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    before = await rclient.threads.get_state(tid)
    reply = {"role": "assistant", "content": "edited by hand", "id": "hand-1"}
    result = await rclient.threads.update_state(tid, {"messages": [reply]}, as_node="model")
    assert result["checkpoint"]["thread_id"] == tid
    assert result["checkpoint"]["checkpoint_ns"] == ""

    after = await rclient.threads.get_state(tid)
    assert after["checkpoint"] == result["checkpoint"]
    assert _parent(after) == _id(before)
    assert json_of(after["metadata"])["source"] == "update"
    assert json_of(after["metadata"])["step"] == json_of(before["metadata"])["step"] + 1
    assert after["next"] == []
    assert _contents(after) == [*_contents(before), "edited by hand"]
    assert json_of(after["values"])["messages"][-1]["id"] == "hand-1"
    # The thread row carries the new values too.
    thread = await rclient.threads.get(tid)
    assert thread["values"] == after["values"]
    assert thread["status"] == "idle"


async def test_update_state_without_as_node_before_any_run(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create(graph_id="chat"))["thread_id"]
    result = await rclient.threads.update_state(tid, _said("hello"))
    state = await rclient.threads.get_state(tid)
    assert state["checkpoint"] == result["checkpoint"]
    # LangGraph's rule: on a thread that never ran, an update goes in as the graph's input.
    assert json_of(state["metadata"])["source"] == "update"
    assert state["next"] == ["model"]
    assert state["parent_checkpoint"] is None
    assert _contents(state) == ["hello"]
    # A run with no input picks up where the update left the thread.
    done = json_of(await rclient.runs.wait(tid, "chat", input=None))
    assert [m["content"] for m in done["messages"]] == [
        "hello",
        "[offline model] You said: hello",
    ]


async def test_update_state_copy_forks_with_the_same_values(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    latest = await rclient.threads.get_state(tid)
    copied = await rclient.threads.update_state(tid, None, as_node="__copy__")
    copy = await rclient.threads.get_state(tid)
    assert copy["checkpoint"] == copied["checkpoint"]
    assert _id(copy) != _id(latest)
    assert copy["values"] == latest["values"]
    assert json_of(copy["metadata"])["source"] == "fork"
    # A copy is a sibling of what it copies: same parent, so a new branch.
    assert _parent(copy) == _parent(latest)

    # Copying a past checkpoint brings its values back as the latest.
    first = (await _full_history(rclient, tid))[-1]
    await rclient.threads.update_state(tid, None, as_node="__copy__", checkpoint_id=_id(first))
    state = await rclient.threads.get_state(tid)
    assert state["values"] == first["values"]
    assert state["next"] == first["next"]
    assert state["parent_checkpoint"] is None


async def test_update_state_on_a_past_checkpoint_forks(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello", "again")
    old_branch = await _full_history(rclient, tid)
    end_of_first_turn = old_branch[3]
    first_reply = end_of_first_turn["values"]["messages"][1]
    edit = {**first_reply, "content": "edited"}

    result = await rclient.threads.update_state(
        tid,
        {"messages": [edit]},
        as_node="model",
        checkpoint=end_of_first_turn["checkpoint"],
    )
    fork = await rclient.threads.get_state(tid)
    assert fork["checkpoint"] == result["checkpoint"]
    assert _parent(fork) == _id(end_of_first_turn)
    assert json_of(fork["metadata"])["source"] == "update"
    # add_messages replaced the reply by id; the second turn is not on this branch.
    assert _contents(fork) == ["hello", "edited"]
    assert (await rclient.threads.get(tid))["values"] == fork["values"]

    # Both branches stay in the history, each entry with its parent.
    everything = await _full_history(rclient, tid)
    assert len(everything) == len(old_branch) + 1
    assert {_id(s) for s in old_branch} < {_id(s) for s in everything}
    parents = {_id(s): _parent(s) for s in everything}
    children = [c for c, p in parents.items() if p == _id(end_of_first_turn)]
    assert sorted(children) == sorted([_id(old_branch[2]), _id(fork)])
    # The old branch still reads as it was.
    tip = await rclient.threads.get_state(tid, checkpoint_id=_id(old_branch[0]))
    assert tip == old_branch[0]

    # The deprecated `checkpoint_id` form forks the same way, from the old tip.
    await rclient.threads.update_state(
        tid, {"messages": [{**edit, "content": "edited again"}]}, checkpoint_id=_id(tip)
    )
    again = await rclient.threads.get_state(tid)
    assert _parent(again) == _id(tip)
    assert _contents(again) == ["hello", "edited again", "again", "[offline model] You said: again"]

    # The tree shows the fork point with two children.
    tree = (await rhttp.get(f"/threads/{tid}/tree")).json()
    under_fork = [n for n in tree if n["parent_checkpoint_id"] == _id(end_of_first_turn)]
    assert sorted(n["checkpoint_id"] for n in under_fork) == sorted(children)


async def test_replay_from_a_checkpoint_makes_a_new_branch(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    original = await _full_history(rclient, tid)
    before_model = original[1]
    assert before_model["next"] == ["model"]

    replay = await rclient.runs.create(tid, "chat", input=None, checkpoint_id=_id(before_model))
    replayed = await rclient.runs.join(tid, replay["run_id"])
    assert [m["content"] for m in replayed["messages"]] == _contents(original[0])
    # The model ran again: a new reply, with a new id.
    new_reply = replayed["messages"][1]
    assert new_reply["id"] != original[0]["values"]["messages"][1]["id"]

    after_first = await _full_history(rclient, tid)
    new = [s for s in after_first if _id(s) not in {_id(o) for o in original}]
    assert [s["metadata"]["run_id"] for s in new] == [replay["run_id"]] * len(new)
    assert _parent(new[-1]) == _id(before_model)
    assert [_parent(s) for s in new[:-1]] == [_id(s) for s in new[1:]]
    assert await rclient.threads.get_state(tid) == new[0]

    # The checkpoint-object form replays the same way, into a third branch.
    second = json_of(
        await rclient.runs.wait(tid, "chat", input=None, checkpoint=before_model["checkpoint"])
    )
    assert len(second["messages"]) == 2
    everything = await _full_history(rclient, tid)
    assert len(everything) == len(after_first) + len(new)
    under = [s for s in everything if _parent(s) == _id(before_model)]
    assert len(under) == 3
    assert {_id(s) for s in after_first} < {_id(s) for s in everything}

    tree = (await rhttp.get(f"/threads/{tid}/tree")).json()
    assert [n["checkpoint_id"] for n in tree if n["parent_checkpoint_id"] == _id(before_model)] == [
        _id(s) for s in reversed(under)
    ]


async def test_tree_of_a_forked_thread(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    [run_id] = await _chat(rclient, tid, "hello")
    fork_point = (await _full_history(rclient, tid))[1]
    await rclient.threads.update_state(
        tid, {"messages": [{"role": "assistant", "content": "hand"}]}, as_node="model",
        checkpoint_id=_id(fork_point),
    )  # fmt: skip
    response = await rhttp.get(f"/threads/{tid}/tree")
    assert response.status_code == 200
    tree = response.json()
    history = await _full_history(rclient, tid)
    # Oldest first, every checkpoint, no values.
    assert [n["checkpoint_id"] for n in tree] == [_id(s) for s in reversed(history)]
    for node, state in zip(tree, reversed(history), strict=True):
        assert set(node) == {
            "checkpoint_id",
            "parent_checkpoint_id",
            "checkpoint_ns",
            "step",
            "source",
            "run_id",
            "created_at",
            "next",
        }
        assert node["parent_checkpoint_id"] == _parent(state)
        assert node["step"] == state["metadata"]["step"]
        assert node["source"] == state["metadata"]["source"]
        assert node["created_at"] == state["created_at"]
        assert node["next"] == state["next"]
        assert node["checkpoint_ns"] == ""
    assert [(n["source"], n["run_id"]) for n in tree] == [
        ("input", run_id),
        ("loop", run_id),
        ("loop", run_id),
        ("update", None),
    ]
    under_fork = [n for n in tree if n["parent_checkpoint_id"] == _id(fork_point)]
    assert [n["source"] for n in under_fork] == ["loop", "update"]


async def test_tree_next_names_the_interrupted_node(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "nested", input={"steps": []})
    tree = (await rhttp.get(f"/threads/{tid}/tree")).json()
    root = [n for n in tree if n["checkpoint_ns"] == ""]
    assert [n["next"] for n in root] == [["__start__"], ["before"], ["child"]]
    state = await rclient.threads.get_state(tid)
    assert root[-1]["checkpoint_id"] == _id(state)


async def test_tree_next_agrees_with_history_in_a_subgraph(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "nested", input={"steps": []})
    nested_state = await rclient.threads.get_state(tid)
    namespace = json_of(nested_state["tasks"][0]["checkpoint"])["checkpoint_ns"]
    child = await rclient.threads.get_history(
        tid, checkpoint=_partial({"checkpoint_ns": namespace})
    )
    tree = (await rhttp.get(f"/threads/{tid}/tree")).json()
    in_child = [n for n in tree if n["checkpoint_ns"] == namespace]
    assert [n["checkpoint_id"] for n in in_child] == [_id(s) for s in reversed(child)]
    # The child is paused before `ask`; its tree nodes must say so, as its history does.
    assert [n["next"] for n in in_child] == [s["next"] for s in reversed(child)]
    assert in_child[-1]["next"] == ["ask"]


async def test_diff_defaults_to_the_latest_checkpoint_and_its_parent(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello", "again")
    history = await _full_history(rclient, tid)
    reply = history[0]["values"]["messages"][-1]

    diff = (await rhttp.get(f"/threads/{tid}/history/diff")).json()
    assert diff["from"] == history[1]["checkpoint"]
    assert diff["to"] == history[0]["checkpoint"]
    assert diff["added"] == {}
    assert diff["removed"] == {}
    assert diff["changed"] == {}
    assert diff["messages"] == {"messages": {"added": [reply], "removed": [], "changed": []}}

    # A whole turn: from the end of the first to the end of the second.
    turn = await rhttp.get(
        f"/threads/{tid}/history/diff", params={"from": _id(history[3]), "to": _id(history[0])}
    )
    added = turn.json()["messages"]["messages"]["added"]
    assert [m["id"] for m in added] == [m["id"] for m in history[0]["values"]["messages"][2:]]
    assert [m["content"] for m in added] == ["again", "[offline model] You said: again"]

    # `to` alone: `from` is its parent.
    alone = await rhttp.get(f"/threads/{tid}/history/diff", params={"to": _id(history[3])})
    assert alone.json()["from"] == history[4]["checkpoint"]
    assert [m["type"] for m in alone.json()["messages"]["messages"]["added"]] == ["ai"]

    # `from` alone: `to` is the latest.
    since = await rhttp.get(f"/threads/{tid}/history/diff", params={"from": _id(history[3])})
    assert since.json() == turn.json()

    # From the input checkpoint: the human message arrives.
    first = await rhttp.get(f"/threads/{tid}/history/diff", params={"to": _id(history[-2])})
    assert first.json()["from"] == history[-1]["checkpoint"]
    hello = history[-2]["values"]["messages"]
    assert [m["type"] for m in hello] == ["human"]
    assert first.json()["messages"] == {"messages": {"added": hello, "removed": [], "changed": []}}
    assert first.json()["changed"] == {}


async def test_diff_reports_messages_added_removed_and_changed_in_a_delta_channel(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    # The example chat graph keeps `messages` in a DeltaChannel: the checkpoints store only
    # what each step added, yet the diff compares the whole lists.
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    start = await rclient.threads.get_state(tid)
    await _chat(rclient, tid, "again")
    before = await rclient.threads.get_state(tid)
    hello, first_reply, again, second_reply = json_of(before["values"])["messages"]
    edit = [
        {**first_reply, "content": "edited by hand"},
        {"type": "human", "content": "added by hand", "id": "by-hand"},
    ]
    await rclient.threads.update_state(tid, {"messages": edit}, as_node="model")
    after = await rclient.threads.get_state(tid)

    async def diff(earlier: object, later: object) -> dict[str, Any]:
        params = {"from": _id(earlier), "to": _id(later)}
        response = await rhttp.get(f"/threads/{tid}/history/diff", params=params)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        assert (body["added"], body["removed"], body["changed"]) == ({}, {}, {})
        return body["messages"]["messages"]  # type: ignore[no-any-return]

    forward = await diff(start, after)
    assert [(m["id"], m["content"]) for m in forward["added"]] == [
        (again["id"], "again"),
        (second_reply["id"], second_reply["content"]),
        ("by-hand", "added by hand"),
    ]
    assert forward["removed"] == []
    [changed] = forward["changed"]
    assert changed["id"] == first_reply["id"]
    assert changed["from"] == first_reply
    assert changed["to"] == json_of(after["values"])["messages"][1]
    assert changed["to"]["content"] == "edited by hand"
    # Backwards, what was added is removed, and the edit is undone.
    backward = await diff(after, start)
    assert backward["added"] == []
    assert backward["removed"] == json_of(after["values"])["messages"][2:]
    assert [(c["from"]["content"], c["to"]["content"]) for c in backward["changed"]] == [
        ("edited by hand", first_reply["content"])
    ]
    # Each side is what the state at that checkpoint shows.
    shown = (await rhttp.get(f"/threads/{tid}/state/{_id(start)}")).json()
    assert shown["values"]["messages"] == [hello, first_reply]


async def test_diff_of_a_thread_whose_graph_is_unknown_shows_no_raw_channels(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    history = await _full_history(rclient, tid)
    await rclient.threads.update(tid, metadata={"graph_id": "no_longer_registered"})
    response = await rhttp.get(
        f"/threads/{tid}/history/diff", params={"from": _id(history[-1]), "to": _id(history[0])}
    )
    assert response.status_code == 200
    # As `GET /state/{id}` shows no values for it, the diff shows none: not LangGraph's
    # internal channels, nor a delta channel's partial writes.
    assert {k: v for k, v in response.json().items() if k not in ("from", "to")} == {
        "added": {},
        "removed": {},
        "changed": {},
        "messages": {},
    }
    state = (await rhttp.get(f"/threads/{tid}/state/{_id(history[0])}")).json()
    assert state["values"] == {}


async def test_diff_across_branches(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello", "again")
    old = await _full_history(rclient, tid)
    first_reply = old[3]["values"]["messages"][1]
    edit = {**first_reply, "content": "edited"}
    await rclient.threads.update_state(
        tid, {"messages": [edit]}, as_node="model", checkpoint_id=_id(old[3])
    )
    fork = await rclient.threads.get_state(tid)

    default = (await rhttp.get(f"/threads/{tid}/history/diff")).json()
    assert default["from"] == old[3]["checkpoint"]
    [changed] = default["messages"]["messages"]["changed"]
    assert changed["id"] == first_reply["id"]
    assert changed["from"]["content"] == "[offline model] You said: hello"
    assert changed["to"]["content"] == "edited"
    assert default["messages"]["messages"]["added"] == []
    assert default["messages"]["messages"]["removed"] == []

    across = await rhttp.get(
        f"/threads/{tid}/history/diff", params={"from": _id(old[0]), "to": _id(fork)}
    )
    assert across.status_code == 200
    body = across.json()
    assert body["from"] == old[0]["checkpoint"]
    assert body["to"] == fork["checkpoint"]
    messages = body["messages"]["messages"]
    assert messages["added"] == []
    assert [m["content"] for m in messages["removed"]] == [
        "again",
        "[offline model] You said: again",
    ]
    assert [c["id"] for c in messages["changed"]] == [first_reply["id"]]


async def test_diff_of_a_plain_channel(rclient: LangGraphClient, rhttp: httpx.AsyncClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "notes", input={"steps": []})
    history = await _full_history(rclient, tid)
    # Newest first: end, after draft, after __start__, input.
    assert [s["next"] for s in history] == [[], ["final"], ["draft"], ["__start__"]]
    end, drafted, started = history[0], history[1], history[2]

    async def diff(earlier: object, later: object) -> dict[str, Any]:
        params = {"from": _id(earlier), "to": _id(later)}
        response = await rhttp.get(f"/threads/{tid}/history/diff", params=params)
        assert response.status_code == 200
        body: dict[str, Any] = response.json()
        return body

    added = await diff(started, drafted)
    assert added["added"] == {"note": "draft"}
    assert added["removed"] == {}
    assert added["changed"] == {"steps": {"from": [], "to": ["draft"]}}
    assert added["messages"] == {}

    changed = await diff(drafted, end)
    assert changed["added"] == {}
    assert changed["changed"] == {
        "note": {"from": "draft", "to": "final"},
        "steps": {"from": ["draft"], "to": ["draft", "final"]},
    }

    removed = await diff(drafted, started)
    assert removed["added"] == {}
    assert removed["removed"] == {"note": "draft"}
    assert removed["changed"] == {"steps": {"from": ["draft"], "to": []}}

    same = await diff(end, end)
    assert (same["added"], same["removed"], same["changed"]) == ({}, {}, {})


async def test_malformed_checkpoint_ids_are_422(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    state, history = f"/threads/{tid}/state", f"/threads/{tid}/history"
    bad = {"checkpoint_id": "nope"}
    cases = [
        (rhttp.get(f"{state}/nope"), "checkpoint_id"),
        (rhttp.post(f"{state}/checkpoint", json={"checkpoint": bad}), "checkpoint.checkpoint_id"),
        (rhttp.post(state, json={"values": {}, "checkpoint_id": "nope"}), "checkpoint_id"),
        (rhttp.post(state, json={"values": {}, "checkpoint": bad}), "checkpoint.checkpoint_id"),
        (rhttp.post(history, json={"before": "nope"}), "before"),
        (rhttp.post(history, json={"before": bad}), "before"),
        (rhttp.get(history, params={"before": "nope"}), "before"),
        (rhttp.get(f"{history}/diff", params={"from": "nope"}), "from"),
        (rhttp.get(f"{history}/diff", params={"to": "nope"}), "to"),
    ]
    answers = []
    for call, field in cases:
        response = await call
        answers.append((field, response.status_code, response.json()))
    # The value shows as JSON, as in every other 422: "nope", not 'nope'.
    assert answers == [
        (
            field,
            422,
            {"detail": f'{field} must be a {EXAMPLE}, got "nope"', "code": "invalid_checkpoint_id"},
        )
        for _, field in cases
    ]
    # A `before` object without an id names what it got, in JSON terms.
    response = await rhttp.post(f"/threads/{tid}/history", json={"before": {"checkpoint_ns": ""}})
    assert response.status_code == 422
    assert response.json() == {
        "detail": f"before must be a {EXAMPLE}, got null",
        "code": "invalid_checkpoint_id",
    }
    # Through the SDK, the same refusal.
    status, body = await _error(rclient.threads.get_state(tid, checkpoint_id="nope"))
    assert (status, body["code"]) == (422, "invalid_checkpoint_id")
    status, body = await _error(rclient.threads.get_history(tid, before="nope"))
    assert (status, body["code"]) == (422, "invalid_checkpoint_id")


async def test_unknown_checkpoint_ids_are_404(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    # A real checkpoint, but of another thread, is as unknown here as a made-up one.
    other = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, other, "elsewhere")
    foreign = _id(await rclient.threads.get_state(other))
    for missing in (UNKNOWN, foreign):
        sentence = f'Checkpoint "{missing}" not found on thread "{tid}"'
        calls = [
            rclient.threads.get_state(tid, checkpoint_id=missing),
            rclient.threads.get_state(tid, checkpoint=_partial({"checkpoint_id": missing})),
            rclient.threads.update_state(tid, {"messages": []}, checkpoint_id=missing),
            rclient.threads.update_state(
                tid, {"messages": []}, checkpoint=_partial({"checkpoint_id": missing})
            ),
            rclient.threads.get_history(tid, before=missing),
            rclient.threads.get_history(tid, before=_partial({"checkpoint_id": missing})),
        ]
        for call in calls:
            status, body = await _error(call)
            assert status == 404
            assert body == {"detail": sentence, "code": "checkpoint_not_found"}
        response = await rhttp.get(f"/threads/{tid}/history", params={"before": missing})
        assert response.status_code == 404
        assert response.json()["detail"] == sentence
        for field in ("from", "to"):
            response = await rhttp.get(f"/threads/{tid}/history/diff", params={field: missing})
            assert response.status_code == 404
            assert response.json() == {
                "detail": f'{field}: checkpoint "{missing}" not found on thread "{tid}"',
                "code": "checkpoint_not_found",
            }
    # Nothing was written by the refused updates.
    assert len(await _full_history(rclient, tid)) == 3


async def test_unknown_checkpoint_in_a_subgraph_namespace(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "nested", input={"steps": []})
    nested_state = await rclient.threads.get_state(tid)
    namespace = json_of(nested_state["tasks"][0]["checkpoint"])["checkpoint_ns"]
    status, body = await _error(
        rclient.threads.get_state(
            tid, checkpoint=_partial({"checkpoint_ns": namespace, "checkpoint_id": UNKNOWN})
        )
    )
    assert status == 404
    assert body["detail"] == (
        f'Checkpoint "{UNKNOWN}" not found on thread "{tid}" in namespace "{namespace}"'
    )


async def test_state_of_an_unknown_thread_is_404(rhttp: httpx.AsyncClient) -> None:
    missing = "00000000-0000-4000-8000-000000000000"
    for path in ("state", f"state/{UNKNOWN}", "history", "tree", "history/diff"):
        response = await rhttp.get(f"/threads/{missing}/{path}")
        assert response.status_code == 404, path
        assert response.json() == {
            "detail": f'Thread "{missing}" not found',
            "code": "thread_not_found",
        }
    response = await rhttp.post(f"/threads/{missing}/state", json={"values": {}})
    assert response.status_code == 404


async def test_update_state_unknown_node_lists_the_nodes(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await _chat(rclient, tid, "hello")
    status, body = await _error(rclient.threads.update_state(tid, {"messages": []}, as_node="nope"))
    assert status == 422
    assert body == {
        "detail": 'as_node: graph "chat" has no node "nope"; its nodes are model '
        "(or __copy__ to copy the checkpoint unchanged)",
        "code": "unknown_node",
    }
    slow = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(slow, "slow", input={"steps": []}, context={"delay": 0})
    status, body = await _error(rclient.threads.update_state(slow, {"steps": []}, as_node="four"))
    assert status == 422
    assert body["detail"] == (
        'as_node: graph "slow" has no node "four"; its nodes are one, two, three '
        "(or __copy__ to copy the checkpoint unchanged)"
    )


async def test_update_state_of_a_thread_with_no_graph_is_409(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    status, body = await _error(rclient.threads.update_state(tid, _said("hello")))
    assert status == 409
    assert body == {
        "detail": f'Thread "{tid}" has never run and names no graph, so its state has no shape '
        'yet; run it first, or create it with metadata {"graph_id": ...}',
        "code": "thread_has_no_graph",
    }
    # Nothing was written.
    assert (await rclient.threads.get_state(tid))["checkpoint"]["checkpoint_id"] is None


async def test_update_state_copy_of_a_never_run_thread_is_422(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create(graph_id="chat"))["thread_id"]
    status, body = await _error(rclient.threads.update_state(tid, None, as_node="__copy__"))
    assert status == 422
    assert body == {
        "detail": "The update cannot be applied: Cannot copy a non-existent checkpoint",
        "code": "invalid_update",
    }


async def test_update_state_while_a_run_is_active_is_409(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    run = await rclient.runs.create(tid, "slow", input={"steps": []}, context={"delay": 0.3})
    await until_busy(rclient, tid)
    status, body = await _error(rclient.threads.update_state(tid, {"steps": ["x"]}, as_node="one"))
    assert status == 409
    assert body == {
        "detail": f'Thread "{tid}" is busy with a run; wait for it or cancel it before '
        "updating its state",
        "code": "thread_busy",
    }
    assert await rclient.runs.join(tid, run["run_id"]) == {"steps": THREE}
    # Once the run is over, the same update goes through.
    await rclient.threads.update_state(tid, {"steps": ["x"]}, as_node="three")
    assert (await rclient.threads.get_state(tid))["values"] == {"steps": [*THREE, "x"]}


async def test_update_state_on_an_interrupted_thread(rclient: LangGraphClient) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "nested", input={"steps": []})
    assert (await rclient.threads.get(tid))["status"] == "interrupted"
    await rclient.threads.update_state(tid, {"steps": ["skipped"]}, as_node="child")
    state = await rclient.threads.get_state(tid)
    assert state["values"] == {"steps": ["before", "skipped"]}
    assert state["next"] == ["after"]
    thread = await rclient.threads.get(tid)
    assert thread["status"] == "interrupted"
    assert thread["values"] == state["values"]


async def test_update_refused_by_the_reducer_is_422(
    rclient: LangGraphClient, rhttp: httpx.AsyncClient
) -> None:
    tid = (await rclient.threads.create())["thread_id"]
    await rclient.runs.wait(tid, "chat", input=_said("hi"))
    body = {"values": {"messages": [{"type": "remove", "id": "no-such-id", "content": ""}]}}
    response = await rhttp.post(f"/threads/{tid}/state", json=body)
    assert response.status_code == 422
    assert response.json()["code"] == "invalid_update"
    assert "no-such-id" in response.json()["detail"]
