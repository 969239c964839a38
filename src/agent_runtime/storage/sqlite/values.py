"""How the SQLite file keeps a thread's latest values (`thread_values."values"`): JSON text when
short, else the JSON compressed with zlib in a BLOB (the column's TEXT affinity keeps blobs as
they are). A thread's messages made up most of the file's growth beyond the checkpointer (404 KiB
of 4.4 MB after the size benchmark's 500 runs), and their JSON compresses about six times.

A long thread's values are rewritten at each run's end (263 KiB of JSON at 600 messages), so the
compressor keeps, per thread, its state after the part of the JSON the next values will likely
start with too (`stable`, from the run executor: the messages before the closing bracket). The
next values that do start with those same bytes compress from there on: tens of microseconds
instead of a millisecond, and the writer stores 35 KiB instead of 263. Values that do not (a run
from an earlier checkpoint, a message edited, another process's state) compress whole; the
bytes are compared, so what is stored is always the compression of exactly the values given.

Readers see JSON through `stored_json`, and SQL through two functions every connection has:
`values_json(stored)` (the JSON text) and `values_contain(stored, filter)` (containment, one
decompression a row; `filters.json_contains`).
"""

from __future__ import annotations

import zlib
from collections import OrderedDict
from dataclasses import dataclass

import aiosqlite

from agent_runtime.encoding import loads
from agent_runtime.storage.filters import json_contains

COMPRESS_FROM = 512
"""Values JSON shorter than this is stored as text: compressing it saves too little to matter."""
KEPT_BYTES = 8 * 1024 * 1024
"""The values' bytes kept per thread for compressing its next values, all threads together; the
least recently used thread is let go first. Each thread also holds a compressor (~80 KiB) and
its compressed output."""
_LEVEL = 1
_WINDOW_BITS = 13
"""An 8 KiB window and a small hash (`_MEM_LEVEL`) make a compressor cheap to copy (10 us,
against 120 for zlib's default 32 KiB), which each compression does; the JSON of messages
repeats its keys within a message or two, so the output is within 15% of the default's."""
_MEM_LEVEL = 6


def stored_json(stored: str | bytes | None) -> str | bytes | None:
    """The JSON of values as the column holds them: text as it is, a blob decompressed."""
    if isinstance(stored, bytes):
        return zlib.decompress(stored)
    return stored


def values_json(stored: str | bytes | None) -> str | None:
    """SQL `values_json(stored)`: the values' JSON text, for `json_extract` and the like."""
    found = stored_json(stored)
    return found.decode() if isinstance(found, bytes) else found


def values_contain(stored: str | bytes | None, expected: str) -> bool:
    """SQL `values_contain(stored, filter)`: whether the values contain the filter's JSON."""
    found = stored_json(stored)
    return found is not None and json_contains(loads(found), loads(expected))


async def register_functions(conn: aiosqlite.Connection) -> None:
    """Give a connection the SQL functions that read stored values."""
    await conn.create_function("values_json", 1, values_json, deterministic=True)
    await conn.create_function("values_contain", 2, values_contain, deterministic=True)


@dataclass(frozen=True, slots=True)
class _Compressed:
    """A compressor that has taken the first `length` bytes of `source` and been flushed
    (`Z_SYNC_FLUSH`) to a byte boundary, and everything it wrote (`out`): a stream that goes on
    from there. `source` is the values' own bytes, not a copy (a 263 KiB copy into fresh pages
    takes 200 us; the values' bytes are kept by the run's events for a while anyway)."""

    source: bytes
    length: int
    compressor: zlib._Compress
    out: bytes

    def starts(self, data: bytes) -> bool:
        """Whether `data` starts with the bytes this stream has taken."""
        return data.startswith(memoryview(self.source)[: self.length])

    def then(self, data: bytes, end: int, *, finish: bool) -> _Compressed:
        """This stream gone on with `data[self.length:end]` (`data` starts as `source`)."""
        compressor = self.compressor.copy()
        written = compressor.compress(memoryview(data)[self.length : end])
        written += compressor.flush(zlib.Z_FINISH if finish else zlib.Z_SYNC_FLUSH)
        return _Compressed(data, end, compressor, self.out + written)


def _fresh(data: bytes) -> _Compressed:
    compressor = zlib.compressobj(_LEVEL, zlib.DEFLATED, _WINDOW_BITS, _MEM_LEVEL)
    return _Compressed(data, 0, compressor, b"")


class ValuesCompressor:
    """Encodes values JSON for the column, each thread's from where its last values stopped
    changing. Not thread-safe: the writer's thread alone uses it."""

    def __init__(self, kept_bytes: int = KEPT_BYTES) -> None:
        self.kept_bytes = kept_bytes
        self._threads: OrderedDict[str, _Compressed] = OrderedDict()
        self._kept = 0
        self.resumed = 0
        """Encodings that went on from a thread's kept state (for tests and benchmarks)."""

    def encode(self, thread_id: str, data: bytes, stable: int = 0) -> str | bytes:
        """`data` as the column stores it. `stable`: how many of its leading bytes the thread's
        next values will likely start with (a guess: nothing breaks if they do not)."""
        kept = self._threads.pop(thread_id, None)
        if kept is not None:
            self._kept -= len(kept.source)
        if len(data) < COMPRESS_FROM:
            return data.decode()
        base = _fresh(data)
        if kept is not None and kept.starts(data):
            base = kept
            self.resumed += 1
        stable = min(stable, len(data))
        if stable > base.length:
            base = base.then(data, stable, finish=False)
        if base.length:
            self._keep(thread_id, base)
        return base.then(data, len(data), finish=True).out

    def _keep(self, thread_id: str, compressed: _Compressed) -> None:
        self._threads[thread_id] = compressed
        self._kept += len(compressed.source)
        while self._kept > self.kept_bytes and self._threads:
            self._kept -= len(self._threads.popitem(last=False)[1].source)

    def __len__(self) -> int:
        return len(self._threads)
