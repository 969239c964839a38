"""The assistants a process caches for making runs (`runs.create.AssistantCache`): read once,
then handed out as copies with the stamp the creating transaction checks them by."""

from __future__ import annotations

from agent_runtime.runs.create import AssistantCache
from agent_runtime.storage.records import AssistantPatch, AssistantStamp
from tests.runs.harness import Harness


async def test_a_cached_assistant_comes_back_as_a_copy_with_its_stamp(harness: Harness) -> None:
    made = await harness.assistant("echo", config={"configurable": {"nested": {"n": 1}}})
    cache = AssistantCache()
    first, stamp = await cache.get(harness.storage, made["assistant_id"])
    assert stamp is None  # just read: nothing to check
    assert first == made
    # A graph changing its config in place reaches no other run.
    first["config"]["configurable"]["nested"]["n"] = 2
    second, stamp = await cache.get(harness.storage, made["assistant_id"])
    assert second == made and second["config"]["configurable"]["nested"] == {"n": 1}
    assert stamp == AssistantStamp(made["version"], made["updated_at"])
    second["metadata"]["x"] = 1
    third, _ = await cache.get(harness.storage, made["assistant_id"])
    assert third == made
    # Changed in storage: the cache still hands out what it read (the create's check catches
    # it), until told to forget.
    await harness.storage.update_assistant(made["assistant_id"], AssistantPatch(name="renamed"))
    assert (await cache.get(harness.storage, made["assistant_id"]))[0]["name"] == made["name"]
    cache.forget(made["assistant_id"])
    fresh, stamp = await cache.get(harness.storage, made["assistant_id"])
    assert fresh["name"] == "renamed" and stamp is None


async def test_the_cache_keeps_at_most_its_bound(harness: Harness) -> None:
    cache = AssistantCache(max_entries=2)
    made = [await harness.assistant("echo") for _ in range(3)]
    for assistant in made:
        await cache.get(harness.storage, assistant["assistant_id"])
    # The oldest read went first: it is read again (no stamp); the newest are cached.
    assert (await cache.get(harness.storage, made[2]["assistant_id"]))[1] is not None
    assert (await cache.get(harness.storage, made[0]["assistant_id"]))[1] is None
