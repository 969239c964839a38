"""A thread's values in the SQLite file (`storage.sqlite.values`): compressed when long, each
thread's next values compressed from where the last stopped changing, and always stored as the
compression of exactly the values given, whatever the executor's guess."""

from __future__ import annotations

import sqlite3
import zlib
from pathlib import Path
from typing import Any

import pytest

from agent_runtime.encoding import dumps, loads
from agent_runtime.storage.filters import json_contains
from agent_runtime.storage.records import NewThread, RunOutcome
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.storage.sqlite.containment import containment_sql
from agent_runtime.storage.sqlite.values import (
    COMPRESS_FROM,
    ValuesCompressor,
    stored_json,
    values_json,
)


def _messages(count: int, *, edited: int | None = None) -> list[dict[str, Any]]:
    return [
        {
            "type": "human" if n % 2 == 0 else "ai",
            "content": ("edited " if n == edited else "") + f"message {n} " * 8,
            "id": f"id-{n}",
        }
        for n in range(count)
    ]


def _encoded(messages: list[dict[str, Any]]) -> tuple[bytes, int]:
    # As the executor encodes a state: the messages first, stable up to their closing bracket.
    data = dumps({"messages": messages, "step": len(messages)})
    return data, data.rindex(b"],")


def _stored(blob: str | bytes) -> bytes:
    found = stored_json(blob)
    assert isinstance(found, bytes)
    return found


def test_a_growing_thread_compresses_from_where_its_values_stopped_changing() -> None:
    compressor = ValuesCompressor()
    for turn in range(3, 33):  # from the first turn past `COMPRESS_FROM`
        data, stable = _encoded(_messages(2 * turn))
        assert len(data) >= COMPRESS_FROM
        blob = compressor.encode("t", data, stable)
        assert isinstance(blob, bytes) and _stored(blob) == data
        assert len(blob) < len(data) / 3
    # Every turn but the first went on from the kept state.
    assert compressor.resumed == 29
    assert len(compressor) == 1


def test_values_that_do_not_start_as_kept_compress_whole() -> None:
    compressor = ValuesCompressor()
    data, stable = _encoded(_messages(20))
    compressor.encode("t", data, stable)
    # A message in the kept part edited (or a run from an earlier checkpoint).
    edited, stable = _encoded(_messages(22, edited=3))
    assert _stored(compressor.encode("t", edited, stable)) == edited
    assert compressor.resumed == 0
    # A guess past what the next values share costs the next compression, not its bytes.
    data, _ = _encoded(_messages(24))
    compressor.encode("t", data, len(data) - 1)
    data, stable = _encoded(_messages(26))
    assert _stored(compressor.encode("t", data, stable)) == data
    assert compressor.resumed == 0
    # A guess beyond the data is as harmless.
    assert _stored(compressor.encode("t", data, len(data) + 100)) == data


def test_short_values_stay_text_and_kept_state_is_bounded() -> None:
    compressor = ValuesCompressor(kept_bytes=16_000)
    short = dumps({"messages": []})
    assert len(short) < COMPRESS_FROM
    assert compressor.encode("t", short) == short.decode()
    for n in range(10):
        data, stable = _encoded(_messages(40))
        assert 4_000 < stable < 5_300
        compressor.encode(f"t{n}", data, stable)
    # Three threads' stable JSON fit in 16,000 bytes; the least recently used went first.
    assert len(compressor) == 3
    data, stable = _encoded(_messages(42))
    compressor.encode("t9", data, stable)
    compressor.encode("t0", data, stable)
    assert compressor.resumed == 1


CASES: list[tuple[Any, Any]] = [
    ({"a": 1, "b": {"c": [1, 2]}}, {"a": 1}),
    ({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [2]}}),
    ({"a": 1, "b": {"c": [1, 2]}}, {"b": {"c": [3]}}),
    ({"a": 1}, {"a": 1.0}),
    ({"a": 1}, {"a": True}),
    ({"a": True}, {"a": 1}),
    ({"a": None}, {"a": None}),
    ({"a": 0}, {"a": None}),
    ({"a": "1"}, {"a": 1}),
    ({"a": [{"x": 1, "y": 2}, {"x": 3}]}, {"a": [{"x": 3}, {"y": 2}]}),
    ({"a": [{"x": 1}]}, {"a": {"x": 1}}),
    ({"a": {"x": 1}}, {"a": [{"x": 1}]}),
    ({"a": []}, {"a": []}),
    ({"a": {}}, {"a": {}}),
    ({"a": "é"}, {"a": "é"}),
    ({"b": 1}, {"a": None}),
    ([1, 2], [2]),
    ("text", "text"),
]


@pytest.mark.parametrize(("found", "expected"), CASES)
def test_python_containment_agrees_with_the_sql_one(found: Any, expected: Any) -> None:
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE t (doc TEXT)")
    conn.execute("INSERT INTO t VALUES (?)", (dumps(found).decode(),))
    sql, params = containment_sql("doc", expected)
    in_sql = bool(conn.execute(f"SELECT count(*) FROM t WHERE {sql}", params).fetchone()[0])
    assert json_contains(found, expected) == in_sql


async def test_the_file_holds_long_values_compressed_and_reads_text_rows_too(
    tmp_path: Path,
) -> None:
    path = tmp_path / "runtime.sqlite"
    storage = SqliteStorage(path)
    await storage.setup()
    try:
        for thread_id in ("long", "old"):
            await storage.create_thread(NewThread(thread_id=thread_id), if_exists="raise")
        data, stable = _encoded(_messages(30))
        outcome = RunOutcome(status="success", values_json=data, values_json_stable=stable)
        await storage.settle_thread("long", outcome)
        assert (await storage.get_thread("long"))["values"] == loads(data)
    finally:
        await storage.close()
    conn = sqlite3.connect(path)
    try:
        kind, stored = conn.execute(
            'SELECT typeof("values"), "values" FROM thread_values WHERE thread_id = ?', ("long",)
        ).fetchone()
        assert kind == "blob" and zlib.decompress(stored) == data
        assert values_json(stored) == data.decode()
        # A row written as text (by an earlier release) reads as it is.
        conn.execute(
            'INSERT INTO thread_values (thread_id, "values") VALUES (?, ?)',
            ("old", data.decode()),
        )
        conn.commit()
    finally:
        conn.close()
    storage = SqliteStorage(path)
    await storage.setup()
    try:
        assert (await storage.get_thread("old"))["values"] == loads(data)
    finally:
        await storage.close()
