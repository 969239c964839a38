"""JSON for everything we store or send: orjson with a default that understands LangChain
messages, pydantic models and dataclasses. Never pickle."""

from __future__ import annotations

import dataclasses
import operator
import threading
from collections import OrderedDict
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


class StableJson:
    """The JSON of objects that never change once made, kept by object: the messages the
    checkpoint cache hands to every reader of a conversation (`storage/checkpoint_cache.py`),
    which every `values` event, state and history response would otherwise encode again (a
    millisecond and more for 600 messages). An entry holds its object, so the object's id is
    not reused while the entry lives; the JSON is made on first use. Oldest first out."""

    def __init__(self, max_entries: int) -> None:
        self.max_entries = max_entries
        self._entries: dict[int, list[Any]] = {}
        self._lock = threading.Lock()

    def remember(self, obj: Any) -> None:
        with self._lock:
            if id(obj) in self._entries:
                return
            self._entries[id(obj)] = [obj, None]
            if len(self._entries) > self.max_entries:
                del self._entries[next(iter(self._entries))]

    def forget(self, obj: Any) -> None:
        with self._lock:
            entry = self._entries.get(id(obj))
            if entry is not None and entry[0] is obj:
                del self._entries[id(obj)]

    def knows(self, obj: Any) -> bool:
        """Whether `obj` is kept here (shared and unchanging)."""
        entry = self._entries.get(id(obj))
        return entry is not None and entry[0] is obj

    def fragment(self, obj: Any) -> orjson.Fragment | None:
        entry = self._entries.get(id(obj))
        if entry is None or entry[0] is not obj:
            return None
        fragment = entry[1]
        if fragment is None:
            # Two threads may both make it; they make the same bytes.
            fragment = entry[1] = orjson.Fragment(dumps(obj.model_dump(mode="json")))
        return fragment  # type: ignore[no-any-return]

    def __len__(self) -> int:
        return len(self._entries)


STABLE_JSON = StableJson(max_entries=100_000)
"""Process-wide. The checkpoint cache forgets a message here when it lets it go; the bound only
guards against many caches at once."""


class GrowingListJson:
    """The JSON arrays of lists that grow at their end from one encoding to the next, such as
    a thread's `messages` run after run, each list known by a key (its thread). The longest
    prefix made of objects `STABLE_JSON` keeps (shared and unchanging: their JSON cannot go
    stale) is remembered with its bytes; a list that starts with those same objects is
    encoded from its first new item on. At 600 messages that is 20 us instead of 250 for
    every `values` event and thread state a run writes. At most `max_bytes` of JSON is kept,
    the key least recently used let go first."""

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._entries: OrderedDict[str, tuple[tuple[Any, ...], bytes]] = OrderedDict()
        self._bytes = 0

    def dumps(self, key: str, items: list[Any], *, head: bytes = b"", tail: bytes = b"") -> bytes:
        """`head + dumps(items) + tail`, byte for byte, copying the array once (a document
        around it costs no second copy of a 263 KiB array)."""
        entry = self._entries.pop(key, None)
        known: tuple[Any, ...] = ()
        json = b"[]"
        if entry is not None:
            self._bytes -= len(entry[1])
            count = len(entry[0])
            if len(items) >= count and all(map(operator.is_, items[:count], entry[0])):
                known, json = entry
        end = start = len(known)
        while end < len(items) and STABLE_JSON.knows(items[end]):
            end += 1
        if end > start:
            json = _joined(json, dumps(items[start:end]))
            known = (*known, *items[start:end])
        if known:
            self._entries[key] = (known, json)
            self._bytes += len(json)
            while self._bytes > self.max_bytes and self._entries:
                self._bytes -= len(self._entries.popitem(last=False)[1][1])
        if end == len(items):
            return b"".join((head, json, tail)) if head or tail else json
        return _joined(json, dumps(items[end:]), head=head, tail=tail)

    def known_bytes(self, key: str) -> int:
        """The length of the JSON array kept for `key` (0 for none): how many leading bytes of
        its last encoding the next one starts with, if its list only grows."""
        entry = self._entries.get(key)
        return 0 if entry is None else len(entry[1])

    def __len__(self) -> int:
        return len(self._entries)


def _joined(first: bytes, second: bytes, *, head: bytes = b"", tail: bytes = b"") -> bytes:
    # Two JSON arrays as one (orjson writes them compact: `[a,b]`), between `head` and `tail`,
    # copied once: slicing and `+` copied a 263 KiB array three times, each copy into fresh
    # pages (390 us against 8).
    if first == b"[]" or second == b"[]":
        only = second if first == b"[]" else first
        return b"".join((head, only, tail)) if head or tail else only
    return b"".join((head, memoryview(first)[:-1], b",", memoryview(second)[1:], tail))


def _default(obj: Any) -> Any:
    stable = STABLE_JSON.fragment(obj)
    if stable is not None:
        return stable
    to_json: Callable[..., Any] | None = getattr(obj, "model_dump", None)
    if to_json is not None:
        return to_json(mode="json")
    to_dict: Callable[..., Any] | None = getattr(obj, "_asdict", None)  # namedtuples
    if to_dict is not None:
        return to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes | bytearray):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, UUID | datetime):
        return str(obj)
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


_COMPACT_BELOW = 128 * 1024
"""orjson hands its result back in the buffer it wrote into: 4 KiB for the smallest, and up to
several times the result's length for larger ones, all of it kept as long as the bytes are
(events kept for replay, the JSON of cached messages: 20,000 small events took 79 MB of
memory instead of 2). Results below this size are copied to their exact length; larger ones
lie in pages of their own, which the system does not back until they are written."""


def dumps(obj: Any) -> bytes:
    """Encode to JSON bytes; unknown objects fall back to their JSON-able form."""
    data = orjson.dumps(obj, default=_default, option=_OPTIONS)
    return memoryview(data).tobytes() if len(data) < _COMPACT_BELOW else data


def dumps_text(obj: Any) -> str:
    return dumps(obj).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def to_jsonable(obj: Any) -> Any:
    """Round-trip through JSON so the result holds only dicts, lists and scalars."""
    return orjson.loads(dumps(obj))


def preview(value: Any) -> str:
    """A value as short JSON, for error messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."
