"""Decoded checkpoint blobs and messages, kept so a long thread's conversation is not decoded
again on every run.

A delta channel's snapshot holds the whole value (say 600 messages); every run of the thread and
every history page replays from it, and decoding it is most of a late turn's cost. Stored blobs
never change, so a decoded one can be reused; so can a decoded message, which every snapshot and
every plain checkpoint of a conversation stores again, byte for byte. Neither may decode
differently or leak one reader's changes to the next: see `CachingSerializer`.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import ormsgpack
from langchain_core.messages import BaseMessage
from langgraph.checkpoint.serde.jsonplus import (
    EXT_DELTA_SNAPSHOT,
    EXT_PYDANTIC_V2,
    JsonPlusSerializer,
    _msgpack_default,
)
from langgraph.checkpoint.serde.jsonplus import _option as _MSGPACK_OPTIONS
from langgraph.checkpoint.serde.types import _DeltaSnapshot

from agent_runtime.config.model import CheckpointCacheConfig, SerdeConfig
from agent_runtime.encoding import STABLE_JSON
from agent_runtime.storage.serde import StrictSerializer, TypeKey

logger = logging.getLogger(__name__)

BLOB_MEMORY_PER_BYTE = 6
"""Memory a decoded checkpoint takes per stored byte (a 600-message snapshot of 167 KB decodes
to 1.05 MB of Python objects); the blob cache counts its entries at this rate."""
MESSAGE_MEMORY_PER_BYTE = 9
"""The same for a decoded message with its kept JSON (about 2.2 KB for 250 stored bytes)."""
MIN_CACHED_BYTES = 8 * 1024
"""Smaller blobs decode in well under a millisecond; caching them would only churn the cache."""

_Key = tuple[Any, str, bytes]


class DecodedBlobCache:
    """A least-recently-used map from a stored blob to its decoded form, bounded by the memory
    the decoded forms take (estimated from the blobs' size). Safe to share between savers and
    threads."""

    def __init__(self, max_bytes: int, *, memory_per_byte: int = BLOB_MEMORY_PER_BYTE) -> None:
        self.max_bytes = max_bytes
        self.memory_per_byte = memory_per_byte
        self._entries: OrderedDict[_Key, Any] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0
        self.mismatches = 0

    def get(self, key: _Key) -> Any | None:
        with self._lock:
            value = self._entries.get(key)
            if value is None:
                self.misses += 1
                return None
            self._entries.move_to_end(key)
            self.hits += 1
            return value

    def put(self, key: _Key, value: Any) -> None:
        size = len(key[2]) * self.memory_per_byte
        if size > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                self._entries[key] = value
                return
            self._entries[key] = value
            self._bytes += size
            while self._bytes > self.max_bytes:
                old, _ = self._entries.popitem(last=False)
                self._bytes -= len(old[2]) * self.memory_per_byte

    def __len__(self) -> int:
        return len(self._entries)


class DecodedMessages:
    """Messages by their stored bytes, bounded by the memory they take (estimated from the size
    of those bytes); oldest first out.

    A hit is one dict lookup without a lock: the cache is read for every message of every
    checkpoint decoded, and a lost update only costs a decode."""

    def __init__(self, max_bytes: int, *, memory_per_byte: int = MESSAGE_MEMORY_PER_BYTE) -> None:
        self.max_bytes = max_bytes
        self.memory_per_byte = memory_per_byte
        self._entries: dict[bytes, BaseMessage] = {}
        self._stored: dict[int, bytes] = {}
        self._bytes = 0
        self._lock = threading.Lock()

    def get(self, data: bytes) -> BaseMessage | None:
        return self._entries.get(data)

    def stored(self, message: Any) -> bytes | None:
        """The bytes a message kept here was decoded from, found by the object itself."""
        data = self._stored.get(id(message))
        if data is None or self._entries.get(data) is not message:
            return None
        return data

    def put(self, data: bytes, message: BaseMessage) -> None:
        with self._lock:
            replaced = self._entries.get(data)
            if replaced is None:
                self._bytes += len(data) * self.memory_per_byte
            elif replaced is not message:
                self._let_go(replaced)
            self._entries[data] = message
            self._stored[id(message)] = data
            # Shared and unchanging while kept here: its JSON can be kept too.
            STABLE_JSON.remember(message)
            while self._bytes > self.max_bytes and self._entries:
                oldest = next(iter(self._entries))
                self._let_go(self._entries.pop(oldest))
                self._bytes -= len(oldest) * self.memory_per_byte

    def _let_go(self, message: BaseMessage) -> None:
        self._stored.pop(id(message), None)
        STABLE_JSON.forget(message)

    def __len__(self) -> int:
        return len(self._entries)


class CachingSerializer(StrictSerializer):
    """LangGraph's serializer (strict, see `storage.serde`), remembering what large checkpoints
    holding a delta channel's snapshot decode to: those are read by every run until the
    channel's next snapshot.

    What a reader gets is its own: every dict, list and set of the decoded value is copied on
    each read (a few microseconds for a list of 600 messages), so a reducer that extends its
    list or the loop updating a checkpoint's channel versions changes only its copy. Objects
    inside those containers, such as messages, are shared between the reads of one blob, the
    way LangGraph already shares them between the steps of a run: a node must not change a
    message in place (LangGraph never stores such a change). With `verify`, every hit is
    decoded again and compared, and a difference is logged and repaired.

    Messages (LangChain's message classes and their subclasses) are also remembered one by one,
    by their stored bytes, in every msgpack blob and write: a new snapshot, a history page or a
    plain channel's checkpoint then decodes only the messages it has not seen. They are shared
    as the messages of one cached blob are, under the same rule, and `verify` checks them too.
    Being shared and unchanging, their JSON is kept too (`encoding.STABLE_JSON`).
    """

    def __init__(
        self,
        cache: DecodedBlobCache,
        *,
        verify: bool = False,
        messages: DecodedMessages | None = None,
        allowed: Iterable[TypeKey] = (),
        json_allowed: Iterable[TypeKey] = (),
    ) -> None:
        super().__init__(allowed=allowed, json_allowed=json_allowed)
        self.cache = cache
        self.verify = verify
        self.messages = messages if messages is not None else DecodedMessages(cache.max_bytes)
        self._decode_ext = self._unpack_ext_hook
        self._unpack_ext_hook = self._cached_ext_hook

    def with_msgpack_allowlist(
        self, extra_allowlist: Iterable[tuple[str, ...] | type]
    ) -> JsonPlusSerializer:
        clone = super().with_msgpack_allowlist(extra_allowlist)
        if clone is self or not isinstance(clone, CachingSerializer):
            return clone
        # Another allowlist may decode the same bytes differently: upstream gave the clone its
        # own hook, which gets its own message cache in front.
        clone._decode_ext = clone._unpack_ext_hook
        clone._unpack_ext_hook = clone._cached_ext_hook
        clone.messages = DecodedMessages(
            self.messages.max_bytes, memory_per_byte=self.messages.memory_per_byte
        )
        return clone

    def dumps_typed(self, obj: Any) -> tuple[str, bytes]:
        if not _holds_delta_snapshot(obj):
            return super().dumps_typed(obj)
        # A snapshot stores the whole conversation again; the messages decoded from storage
        # are written as the bytes they came from (1.7 ms of a snapshot turn at 600 messages).
        return "msgpack", ormsgpack.packb(obj, default=self._encode, option=_MSGPACK_OPTIONS)

    def _encode(self, obj: Any) -> Any:
        # `_msgpack_default` and `_option` are LangGraph's own encoding, private: a snapshot
        # written here must be what LangGraph writes (a test compares the bytes), and an
        # upgrade that renamed them would fail at import, not silently.
        if type(obj) is _DeltaSnapshot:
            return ormsgpack.Ext(
                EXT_DELTA_SNAPSHOT,
                ormsgpack.packb(obj.value, default=self._encode, option=_MSGPACK_OPTIONS),
            )
        stored = self.messages.stored(obj)
        if stored is None:
            return _msgpack_default(obj)
        if self.verify and self._decode_ext(EXT_PYDANTIC_V2, stored) != obj:
            # Changed in place since it was read: write what it is now.
            self.cache.mismatches += 1
            logger.warning(_CHANGED_IN_PLACE)
            return _msgpack_default(obj)
        return ormsgpack.Ext(EXT_PYDANTIC_V2, stored)

    def _cached_ext_hook(self, code: int, data: bytes) -> Any:
        if code == EXT_PYDANTIC_V2:
            cached = self.messages.get(data)
            if cached is not None and not self.verify:
                return cached
            decoded = self._decode_ext(code, data)
            if cached is not None:
                if decoded == cached:
                    return cached
                self.cache.mismatches += 1
                logger.warning(_CHANGED_IN_PLACE)
            kind: type = type(decoded)
            if _is_message(kind):
                self.messages.put(data, decoded)
            return decoded
        if code == EXT_DELTA_SNAPSHOT:
            # Upstream decodes a snapshot's contents with its own hook; this one keeps the
            # messages inside going through the cache.
            return _DeltaSnapshot(
                ormsgpack.unpackb(
                    data, ext_hook=self._cached_ext_hook, option=ormsgpack.OPT_NON_STR_KEYS
                )
            )
        return self._decode_ext(code, data)

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        type_, blob = data
        if type_ != "msgpack" or len(blob) < MIN_CACHED_BYTES:
            return super().loads_typed(data)
        # A clone made by `with_msgpack_allowlist` may decode the same bytes differently.
        key = (_allowlist_key(self._allowed_msgpack_modules), type_, bytes(blob))
        cached = self.cache.get(key)
        if cached is None:
            cached = super().loads_typed(data)
            if not _holds_delta_snapshot(cached):
                # A plain checkpoint is read about once (by the next step); keeping it would
                # only fill memory and lengthen the garbage collector's walks.
                return cached
            self.cache.put(key, cached)
        elif self.verify:
            # Against what is stored, not against cached messages.
            decoded = ormsgpack.unpackb(
                blob, ext_hook=self._decode_ext, option=ormsgpack.OPT_NON_STR_KEYS
            )
            if decoded != cached:
                self.cache.mismatches += 1
                logger.warning(_CHANGED_IN_PLACE)
                self.cache.put(key, decoded)
                cached = decoded
        return own_containers(cached)


_CHANGED_IN_PLACE = (
    "A checkpoint read from the cache no longer matches what is stored: a graph changed its "
    "state in place (a message, say) instead of returning an update. The cache entry is "
    "replaced; LangGraph never stores such changes."
)


@functools.cache
def _is_message(kind: type) -> bool:
    return issubclass(kind, BaseMessage)


def _holds_delta_snapshot(value: Any) -> bool:
    channel_values = value.get("channel_values") if isinstance(value, dict) else None
    return isinstance(channel_values, dict) and any(
        type(item) is _DeltaSnapshot for item in channel_values.values()
    )


def own_containers(value: Any) -> Any:
    """A copy of every dict, list and set in `value`, down to the first object of another
    kind, which is shared."""
    kind = type(value)
    if kind is dict:
        return {key: own_containers(item) for key, item in value.items()}
    if kind is list:
        return [item if type(item) not in _CONTAINERS else own_containers(item) for item in value]
    if kind is set:
        return set(value)
    if kind is _DeltaSnapshot:
        return _DeltaSnapshot(own_containers(value.value))
    return value


_CONTAINERS = frozenset((dict, list, set, _DeltaSnapshot))


def _allowlist_key(allowlist: Iterable[tuple[str, ...]] | bool | None) -> Any:
    if allowlist is None or isinstance(allowlist, bool):
        return allowlist
    return frozenset(allowlist)


def make_serializer(
    cache: CheckpointCacheConfig, serde: SerdeConfig, graph_types: Iterable[TypeKey]
) -> StrictSerializer:
    """The checkpoint serializer a backend's savers share: strict whatever the config (stored
    bytes never choose what code runs), caching decoded snapshots when `cache.max_mb` allows,
    so a snapshot a run decoded serves history reads, and back."""
    allowed = {*graph_types, *serde.msgpack_types()}
    json_allowed = serde.allowed_json_modules
    if not cache.max_mb:
        return StrictSerializer(allowed=allowed, json_allowed=json_allowed)
    return CachingSerializer(
        DecodedBlobCache(cache.max_mb * 1024 * 1024),
        verify=bool(cache.verify),
        allowed=allowed,
        json_allowed=json_allowed,
    )
