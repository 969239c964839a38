"""JSON encoding: what is kept of an encoded result is the result, not orjson's buffer."""

from __future__ import annotations

import gc
import tracemalloc
from typing import Any

import pytest
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage

from agent_runtime.encoding import STABLE_JSON, GrowingListJson, dumps


def test_small_results_keep_only_their_own_length() -> None:
    # orjson writes into a buffer of 4 KiB and more and hands that back; event logs keep
    # thousands of small events, so the result is copied to its length.
    gc.collect()
    tracemalloc.start()
    try:
        kept = [dumps({"event": "messages", "token": f"word {n}"}) for n in range(2000)]
        gc.collect()
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept[0]) < 64
    assert used / len(kept) < 512  # the buffer would be 4,097 bytes each
    assert kept[5] == b'{"event":"messages","token":"word 5"}'


def _messages(count: int, start: int = 0) -> list[BaseMessage]:
    return [
        (HumanMessage if n % 2 == 0 else AIMessage)(content=f"message {n}", id=f"m{n}")
        for n in range(start, start + count)
    ]


@pytest.mark.parametrize(
    ("head", "tail"), [(b"", b""), (b'{"messages":', b"}"), (b'{"messages":', b',"n":1}')]
)
def test_growing_lists_encode_as_dumps_does_reusing_what_is_kept(head: bytes, tail: bytes) -> None:
    # With a document around the list (`head`, `tail`): the run executor's states.
    def encoded(key: str, items: list[Any]) -> bytes:
        return cache.dumps(key, items, head=head, tail=tail)

    def expected(items: list[Any]) -> bytes:
        return head + dumps(items) + tail

    kept = _messages(6)
    for message in kept:
        STABLE_JSON.remember(message)
    try:
        cache = GrowingListJson(max_bytes=1_000_000)
        # Kept messages, then one that is not (this run's new one): only the first six are
        # remembered, and the whole list comes out as `dumps` makes it.
        fresh = _messages(1, start=6)
        assert encoded("t", [*kept[:4], *fresh]) == expected([*kept[:4], *fresh])
        assert encoded("t", kept) == expected(kept)
        # The list grew: the same objects first, then more.
        grown = [*kept, *_messages(2, start=7)]
        assert encoded("t", grown) == expected(grown)
        # Not the same objects (equal ones, say, decoded again): encoded afresh, still right.
        again = _messages(6)
        assert encoded("t", again) == expected(again)
        # Shorter, empty, and lists of plain values.
        assert encoded("t", kept[:2]) == expected(kept[:2])
        assert encoded("t", []) == expected([])
        assert encoded("u", [1, {"a": 2}]) == expected([1, {"a": 2}])
        # A message changed in place would be stale in the kept bytes: only messages that
        # `STABLE_JSON` keeps (which never change) are reused.
        loose = _messages(2, start=20)
        assert encoded("v", loose) == expected(loose)
        loose[0].content = "changed"
        assert encoded("v", loose) == expected(loose)
    finally:
        for message in kept:
            STABLE_JSON.forget(message)


def test_growing_lists_keep_at_most_their_bytes() -> None:
    kept = _messages(4)
    for message in kept:
        STABLE_JSON.remember(message)
    try:
        one = len(dumps(kept))
        cache = GrowingListJson(max_bytes=2 * one)
        for key in ("a", "b", "c"):
            assert cache.dumps(key, kept) == dumps(kept)
        assert len(cache) == 2  # "a", the least recently used, let go
        cache.dumps("b", kept)
        cache.dumps("d", kept)
        assert len(cache) == 2  # "c" went this time
    finally:
        for message in kept:
            STABLE_JSON.forget(message)
