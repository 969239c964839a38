"""The decoded-checkpoint cache: reads through it equal reads without it, every reader owns its
containers, verification repairs a graph's in-place changes, and the cache stays bounded."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import orjson
import pytest
from langchain_core.messages import AIMessage, HumanMessage
from langgraph.checkpoint.serde import _msgpack as _lg_msgpack
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer, _msgpack_default
from langgraph.checkpoint.serde.types import _DeltaSnapshot
from langgraph.pregel import Pregel

from agent_runtime.config import CheckpointCacheConfig
from agent_runtime.encoding import STABLE_JSON, StableJson, dumps
from agent_runtime.registry import import_graphs
from agent_runtime.storage import checkpoint_cache
from agent_runtime.storage.checkpoint_cache import (
    MIN_CACHED_BYTES,
    CachingSerializer,
    DecodedBlobCache,
    DecodedMessages,
    own_containers,
)
from agent_runtime.storage.sqlite import SqliteStorage
from tests.conftest import example_config

# Long enough that a snapshot of the conversation (every ten turns) is over MIN_CACHED_BYTES.
TEXT = "a fairly long line about the weather, repeated to fill the message " * 10
TURNS = 25


def _chat(database: Path) -> Pregel[Any, Any, Any, Any]:
    source = import_graphs(example_config(database))["chat"]
    graph = source.target
    assert isinstance(graph, Pregel)
    return graph


def _serde(storage: SqliteStorage) -> CachingSerializer:
    serde = storage.checkpointer.serde
    assert isinstance(serde, CachingSerializer)
    return serde


async def _converse(graph: Pregel[Any, Any, Any, Any], thread_id: str) -> None:
    config: Any = {"configurable": {"thread_id": thread_id}}
    for turn in range(TURNS):
        await graph.ainvoke({"messages": [{"role": "user", "content": f"{turn} {TEXT}"}]}, config)


def _messages(snapshot: Any) -> list[tuple[str, str | None, Any]]:
    return [(m.type, m.id, m.content) for m in snapshot.values.get("messages", [])]


async def test_cached_reads_equal_reads_without_the_cache(tmp_path: Path) -> None:
    database = tmp_path / "runtime.sqlite"
    cached = SqliteStorage(database)
    plain = SqliteStorage(database, checkpoint_cache=CheckpointCacheConfig(max_mb=0))
    await cached.setup()
    await plain.setup()
    try:
        assert not isinstance(plain.checkpointer.serde, CachingSerializer)
        chat = _chat(database)
        writer = chat.copy(update={"checkpointer": cached.checkpointer})
        await _converse(writer, "t")
        config: Any = {"configurable": {"thread_id": "t"}}
        reader = chat.copy(update={"checkpointer": plain.checkpointer})
        expected = [_messages(s) async for s in reader.aget_state_history(config)]
        for _ in range(2):  # the second pass is served from the cache
            got = [_messages(s) async for s in writer.aget_state_history(config)]
            assert got == expected
        assert len(expected) == 3 * TURNS  # input, model, end: three checkpoints a turn
        assert len(expected[0]) == 2 * TURNS
        assert _serde(cached).cache.hits > 0
        assert len(_serde(cached).cache) >= 2
    finally:
        await cached.close()
        await plain.close()


async def test_every_read_owns_its_containers(tmp_path: Path) -> None:
    storage = SqliteStorage(tmp_path / "runtime.sqlite")
    await storage.setup()
    try:
        graph = _chat(storage.path).copy(update={"checkpointer": storage.checkpointer})
        await _converse(graph, "t")
        config: Any = {"configurable": {"thread_id": "t"}}
        first = await graph.aget_state(config)
        first.values["messages"].clear()
        second = await graph.aget_state(config)
        assert len(second.values["messages"]) == 2 * TURNS
        # The next turn starts from the cached snapshot and still sees the whole conversation.
        result = await graph.ainvoke({"messages": [{"role": "user", "content": "last"}]}, config)
        assert len(result["messages"]) == 2 * TURNS + 2
    finally:
        await storage.close()


def _blob() -> tuple[str, bytes]:
    messages = [HumanMessage(TEXT, id=f"h{i}") for i in range(20)]
    checkpoint = {
        "channel_versions": {"messages": 3},
        "versions_seen": {"model": {"messages": 2}},
        "channel_values": {"messages": _DeltaSnapshot(messages), "tags": {"a", "b"}},
    }
    blob = JsonPlusSerializer().dumps_typed(checkpoint)
    assert len(blob[1]) >= MIN_CACHED_BYTES
    return blob


async def test_decoded_blobs_share_only_what_is_not_a_container() -> None:
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024))
    blob = _blob()
    first = serde.loads_typed(blob)
    first["channel_versions"]["messages"] = 99
    first["versions_seen"]["model"].clear()
    first["channel_values"]["messages"].value.append(AIMessage("added"))
    first["channel_values"]["tags"].add("c")
    second = serde.loads_typed(blob)
    assert second == JsonPlusSerializer().loads_typed(blob)
    assert (serde.cache.hits, serde.cache.misses) == (1, 1)
    # Messages themselves are shared, as LangGraph shares them between a run's steps.
    shared = first["channel_values"]["messages"].value[0]
    assert second["channel_values"]["messages"].value[0] is shared


async def test_verification_repairs_a_message_changed_in_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024), verify=True)
    blob = _blob()
    serde.loads_typed(blob)["channel_values"]["messages"].value[0].content = "tampered"
    with caplog.at_level(logging.WARNING):
        again = serde.loads_typed(blob)
    assert again["channel_values"]["messages"].value[0].content == TEXT
    assert serde.cache.mismatches == 1
    assert "changed its state in place" in caplog.text
    # The repaired entry serves the next read.
    assert serde.loads_typed(blob)["channel_values"]["messages"].value[0].content == TEXT
    assert serde.cache.mismatches == 1


async def test_only_large_checkpoints_with_a_delta_snapshot_are_cached() -> None:
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024))
    small = serde.dumps_typed({"channel_values": {"m": _DeltaSnapshot([HumanMessage("hi")])}})
    assert serde.loads_typed(small) == serde.loads_typed(small)
    assert serde.loads_typed(("bytes", b"x" * MIN_CACHED_BYTES)) == b"x" * MIN_CACHED_BYTES
    # A plain channel's checkpoint is read about once: not worth its memory.
    plain = serde.dumps_typed({"channel_values": {"m": [HumanMessage(TEXT)] * 20}})
    assert len(plain[1]) >= MIN_CACHED_BYTES
    assert serde.loads_typed(plain) == serde.loads_typed(plain)
    assert len(serde.cache) == 0


async def test_cache_keeps_the_most_recently_used_blobs_within_its_size() -> None:
    cache = DecodedBlobCache(max_bytes=100, memory_per_byte=1)
    keys = [(True, "msgpack", bytes([n]) * 40) for n in range(3)]
    cache.put(keys[0], "zero")
    cache.put(keys[1], "one")
    assert cache.get(keys[0]) == "zero"  # now the most recent
    cache.put(keys[2], "two")  # 120 bytes: the least recent (one) goes
    assert cache.get(keys[1]) is None
    assert (cache.get(keys[0]), cache.get(keys[2])) == ("zero", "two")
    cache.put((True, "msgpack", b"x" * 101), "too big")
    assert len(cache) == 2


async def test_own_containers_copies_nested_containers() -> None:
    shared = HumanMessage("x", id="1")
    value: dict[str, Any] = {"a": [shared, {"b": {1, 2}}], "c": _DeltaSnapshot([shared])}
    copied = own_containers(value)
    assert copied == value
    assert copied["a"] is not value["a"]
    assert copied["a"][1]["b"] is not value["a"][1]["b"]
    assert copied["c"].value is not value["c"].value
    assert copied["a"][0] is shared


def _mixed_values() -> list[Any]:
    """Values as checkpoints and writes hold them: messages alone, in lists, in dicts, in a
    snapshot, next to values of other kinds, one with tool calls."""
    human = HumanMessage(TEXT, id="h")
    ai = AIMessage("", id="a", tool_calls=[{"name": "search", "args": {"q": "x"}, "id": "c1"}])
    return [
        human,
        [human, ai],
        {"channel_values": {"messages": _DeltaSnapshot([human, ai]), "n": 3, "tags": {"t"}}},
        {"channel_values": {"messages": [ai, human], "other": ("a", 1)}},
    ]


async def test_messages_decode_once_and_equal_an_uncached_decode() -> None:
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024))
    upstream = JsonPlusSerializer()
    blobs = [upstream.dumps_typed(value) for value in _mixed_values()]
    decoded = [serde.loads_typed(blob) for blob in blobs]
    assert decoded == [upstream.loads_typed(blob) for blob in blobs]
    assert len(serde.messages) == 2
    # The same message stored in different blobs (a write, a snapshot, a plain checkpoint)
    # comes back as one object.
    assert decoded[1][0] is decoded[0]
    assert decoded[2]["channel_values"]["messages"].value[1] is decoded[1][1]
    assert decoded[3]["channel_values"]["messages"][0] is decoded[1][1]


async def test_verification_repairs_a_cached_message_changed_in_place(
    caplog: pytest.LogCaptureFixture,
) -> None:
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024), verify=True)
    upstream = JsonPlusSerializer()
    write = upstream.dumps_typed([HumanMessage(TEXT, id="h")])
    checkpoint = upstream.dumps_typed(
        {"channel_values": {"messages": [HumanMessage(TEXT, id="h")]}}
    )
    serde.loads_typed(write)[0].content = "tampered"
    with caplog.at_level(logging.WARNING):
        read = serde.loads_typed(checkpoint)
    assert read["channel_values"]["messages"][0].content == TEXT
    assert serde.cache.mismatches == 1
    assert "changed its state in place" in caplog.text
    assert serde.loads_typed(write)[0].content == TEXT
    assert serde.cache.mismatches == 1


async def test_message_cache_drops_the_oldest_beyond_its_size() -> None:
    messages = DecodedMessages(max_bytes=100, memory_per_byte=1)
    kept = [HumanMessage(str(n)) for n in range(3)]
    for n, message in enumerate(kept):
        messages.put(bytes([n]) * 40, message)
    assert messages.get(bytes([0]) * 40) is None
    # Its JSON goes with it; the JSON of those kept stays.
    assert STABLE_JSON.fragment(kept[0]) is None
    assert STABLE_JSON.fragment(kept[2]) is not None
    assert [messages.get(bytes([n]) * 40).content for n in (1, 2)] == ["1", "2"]  # type: ignore[union-attr]
    assert len(messages) == 2


async def test_a_stricter_allowlist_gets_its_own_message_cache(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_lg_msgpack, "STRICT_MSGPACK_ENABLED", True)
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024))
    clone = serde.with_msgpack_allowlist([("tests.storage.test_checkpoint_cache", "Thing")])
    assert isinstance(clone, CachingSerializer) and clone is not serde
    assert clone.messages is not serde.messages
    blob = JsonPlusSerializer().dumps_typed([HumanMessage(TEXT, id="h")])
    assert clone.loads_typed(blob) == serde.loads_typed(blob)
    assert (len(clone.messages), len(serde.messages)) == (1, 1)


async def test_decoded_messages_encode_to_json_once_with_the_same_bytes() -> None:
    # What every values event, state and history response does with a conversation's messages.
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024))
    values = _mixed_values()
    decoded = serde.loads_typed(JsonPlusSerializer().dumps_typed(values))
    human = decoded[0]
    assert STABLE_JSON.fragment(human) is not None
    assert STABLE_JSON.fragment(HumanMessage(TEXT, id="h")) is None  # an equal, other object
    state = {"messages": decoded[1], "snapshot": decoded[2]}
    fresh = {"messages": values[1], "snapshot": values[2]}
    assert dumps(state) == dumps(fresh)
    assert dumps(state) == dumps(fresh)  # the second time from the kept JSON
    assert STABLE_JSON.fragment(human) is STABLE_JSON.fragment(human)


async def test_stable_json_keeps_its_newest_entries() -> None:
    stable = StableJson(max_entries=2)
    messages = [HumanMessage(str(n)) for n in range(3)]
    for message in messages:
        stable.remember(message)
    assert stable.fragment(messages[0]) is None
    kept = [stable.fragment(m) for m in messages[1:]]
    assert None not in kept
    # A fragment is written out as it is: the same bytes as encoding the message.
    assert [orjson.dumps(fragment) for fragment in kept] == [dumps(m) for m in messages[1:]]
    assert len(stable) == 2


async def test_a_snapshot_writes_decoded_messages_as_the_bytes_they_came_from(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    encoded: list[Any] = []
    upstream_default = _msgpack_default

    def counting(obj: Any) -> Any:
        encoded.append(obj)
        return upstream_default(obj)

    monkeypatch.setattr(checkpoint_cache, "_msgpack_default", counting)
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024))
    upstream = JsonPlusSerializer()
    old = serde.loads_typed(
        upstream.dumps_typed([HumanMessage(TEXT, id=f"h{i}") for i in range(3)])
    )
    new = AIMessage("a reply made this turn", id="new")
    checkpoint = {"v": 4, "channel_values": {"messages": _DeltaSnapshot([*old, new]), "n": 1}}
    written = serde.dumps_typed(checkpoint)
    assert encoded == [new]  # only the message that was never read from storage is encoded
    assert written == upstream.dumps_typed(checkpoint)  # the same bytes LangGraph would write
    assert upstream.loads_typed(written) == checkpoint
    # Objects not decoded from storage, and checkpoints without a snapshot, go upstream's way.
    plain = {"channel_values": {"messages": [*old, new]}}
    assert serde.dumps_typed(plain) == upstream.dumps_typed(plain)


async def test_verification_writes_a_message_changed_in_place_as_it_is_now(
    caplog: pytest.LogCaptureFixture,
) -> None:
    serde = CachingSerializer(DecodedBlobCache(1024 * 1024), verify=True)
    upstream = JsonPlusSerializer()
    (message,) = serde.loads_typed(upstream.dumps_typed([HumanMessage(TEXT, id="h")]))
    message.content = "changed in place"
    checkpoint = {"channel_values": {"messages": _DeltaSnapshot([message])}}
    with caplog.at_level(logging.WARNING):
        written = serde.dumps_typed(checkpoint)
    assert upstream.loads_typed(written) == checkpoint
    assert serde.cache.mismatches == 1
    assert "changed its state in place" in caplog.text
