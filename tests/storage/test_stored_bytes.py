"""No code runs from stored bytes: checkpoints and pending writes are decoded strictly, and a
thread whose stored state cannot be decoded fails alone, with a sentence, never a hung run.

Every case writes real rows into a real database file while the server is stopped, as an
attacker with write access to the file (or a backup restored from elsewhere) would, then serves
the file again. A payload that would run a command touches a sentinel file instead; it must
never appear."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import ormsgpack
import pytest
from langgraph.checkpoint.serde.jsonplus import (
    EXT_CONSTRUCTOR_KW_ARGS,
    EXT_CONSTRUCTOR_POS_ARGS,
    EXT_CONSTRUCTOR_SINGLE_ARG,
    EXT_METHOD_SINGLE_ARG,
    EXT_PYDANTIC_V1,
    EXT_PYDANTIC_V2,
    JsonPlusSerializer,
)

from tests.conftest import RunningServer, example_config, raw_client

# The rows are written with `sqlite3` into the file the server serves.
pytestmark = pytest.mark.sqlite_only

Payload = Callable[[Path], tuple[str, bytes]]


def _ext(code: int, *parts: Any) -> tuple[str, bytes]:
    return "msgpack", ormsgpack.packb(ormsgpack.Ext(code, ormsgpack.packb(list(parts))))


# Each builds a stored value that, decoded by LangGraph's permissive default, runs `touch`.
PAYLOADS: dict[str, Payload] = {
    "single_arg": lambda s: _ext(EXT_CONSTRUCTOR_SINGLE_ARG, "os", "system", f"touch {s}"),
    "pos_args": lambda s: _ext(EXT_CONSTRUCTOR_POS_ARGS, "subprocess", "run", [["touch", str(s)]]),
    "kw_args": lambda s: _ext(
        EXT_CONSTRUCTOR_KW_ARGS, "subprocess", "run", {"args": ["touch", str(s)]}
    ),
    "method": lambda s: _ext(EXT_METHOD_SINGLE_ARG, "os", "system", f"touch {s}", "__call__"),
    "pydantic_v1": lambda s: _ext(
        EXT_PYDANTIC_V1, "subprocess", "Popen", {"args": ["touch", str(s)]}
    ),
    "pydantic_v2": lambda s: _ext(
        EXT_PYDANTIC_V2, "subprocess", "Popen", {"args": ["touch", str(s)]}, None
    ),
}


def _pickle_payload(sentinel: Path) -> tuple[str, bytes]:
    return "pickle", b"cos\nsystem\n(S'touch " + str(sentinel).encode() + b"'\ntR."


def _json_payload(sentinel: Path) -> tuple[str, bytes]:
    envelope = {
        "lc": 2,
        "type": "constructor",
        "id": ["subprocess", "Popen"],
        "kwargs": {"args": ["touch", str(sentinel)]},
    }
    return "json", json.dumps(envelope).encode()


async def _thread_with_history(database: Path) -> tuple[str, str]:
    """Two threads with a finished run each; returns (the one to tamper with, the other)."""
    server = await RunningServer(example_config(database)).start()
    try:
        async with raw_client(server) as http:
            ids = []
            for _ in range(2):
                thread = (await http.post("/threads", json={})).json()
                body = {"assistant_id": "chat", "input": {"messages": "hello"}}
                response = await http.post(f"/threads/{thread['thread_id']}/runs/wait", json=body)
                assert response.status_code == 200
                ids.append(thread["thread_id"])
    finally:
        await server.stop()
    return ids[0], ids[1]


def _replace_channel_value(database: Path, thread_id: str, stored: tuple[str, bytes]) -> None:
    """Put `stored` as a channel value inside the thread's latest checkpoint."""
    with sqlite3.connect(database) as conn:
        checkpoint_id, blob = conn.execute(
            "SELECT checkpoint_id, checkpoint FROM checkpoints WHERE thread_id = ? "
            "ORDER BY checkpoint_id DESC LIMIT 1",
            (thread_id,),
        ).fetchone()
        # Keep every extension as raw bytes: only the one channel value changes.
        checkpoint = ormsgpack.unpackb(
            blob,
            ext_hook=lambda code, data: ormsgpack.Ext(code, data),
            option=ormsgpack.OPT_NON_STR_KEYS,
        )
        kind, value = stored
        assert kind == "msgpack"
        checkpoint["channel_values"]["evil"] = ormsgpack.unpackb(
            value, ext_hook=lambda code, data: ormsgpack.Ext(code, data)
        )
        conn.execute(
            "UPDATE checkpoints SET checkpoint = ? WHERE thread_id = ? AND checkpoint_id = ?",
            (
                ormsgpack.packb(checkpoint, option=ormsgpack.OPT_NON_STR_KEYS),
                thread_id,
                checkpoint_id,
            ),
        )


def _replace_checkpoint(database: Path, thread_id: str, stored: tuple[str, bytes]) -> None:
    """Replace the thread's latest checkpoint blob (and its type tag) as a whole."""
    with sqlite3.connect(database) as conn:
        (checkpoint_id,) = conn.execute(
            "SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        conn.execute(
            "UPDATE checkpoints SET type = ?, checkpoint = ? "
            "WHERE thread_id = ? AND checkpoint_id = ?",
            (*stored, thread_id, checkpoint_id),
        )


def _add_pending_write(database: Path, thread_id: str, stored: tuple[str, bytes]) -> None:
    with sqlite3.connect(database) as conn:
        (checkpoint_id,) = conn.execute(
            "SELECT max(checkpoint_id) FROM checkpoints WHERE thread_id = ?", (thread_id,)
        ).fetchone()
        conn.execute(
            "INSERT INTO writes (thread_id, checkpoint_ns, checkpoint_id, task_id, idx, channel, "
            "type, value) VALUES (?, '', ?, 'task-evil', 0, 'evil', ?, ?)",
            (thread_id, checkpoint_id, *stored),
        )


@pytest.mark.parametrize("name", sorted(PAYLOADS))
def test_payloads_would_run_a_command_under_the_permissive_default(
    tmp_path: Path, name: str
) -> None:
    # Proof that the cases below are live: LangGraph's permissive mode runs every one.
    sentinel = tmp_path / "ran"
    stored = PAYLOADS[name](sentinel)
    permissive = JsonPlusSerializer(allowed_msgpack_modules=True)

    permissive.loads_typed(stored)

    if name != "method":  # methods are checked against a fixed list even when permissive
        assert _appears(sentinel)


def _appears(path: Path) -> bool:
    deadline = time.monotonic() + 2
    while time.monotonic() < deadline:
        if path.exists():
            return True
        time.sleep(0.02)
    return False


@pytest.mark.timeout(60)
@pytest.mark.parametrize("where", ["channel", "pending_write"])
@pytest.mark.parametrize("name", sorted(PAYLOADS))
async def test_stored_constructors_never_run(
    database: Path, tmp_path: Path, name: str, where: str
) -> None:
    sentinel = tmp_path / "ran"
    tampered, _ = await _thread_with_history(database)
    stored = PAYLOADS[name](sentinel)
    if where == "channel":
        _replace_channel_value(database, tampered, stored)
    else:
        _add_pending_write(database, tampered, stored)

    server = await RunningServer(example_config(database)).start()
    try:
        async with raw_client(server) as http:
            state = await http.get(f"/threads/{tampered}/state")
            history = await http.post(f"/threads/{tampered}/history", json={"limit": 10})
            body = {"assistant_id": "chat", "input": {"messages": "again"}}
            run = await http.post(f"/threads/{tampered}/runs/wait", json=body)
    finally:
        await server.stop()

    assert not sentinel.exists()
    # Strict decoding hands back the payload's plain data; nothing fails and nothing runs.
    assert state.status_code == 200
    assert history.status_code == 200
    assert run.status_code == 200


@pytest.mark.timeout(60)
@pytest.mark.parametrize(
    "stored",
    [
        pytest.param(_pickle_payload, id="pickle"),
        pytest.param(_json_payload, id="json_constructor"),
        pytest.param(lambda _: ("msgpack", b"\xc1\xc1 not msgpack"), id="corrupt"),
    ],
)
async def test_an_undecodable_thread_fails_alone(
    database: Path, tmp_path: Path, stored: Payload
) -> None:
    sentinel = tmp_path / "ran"
    tampered, healthy = await _thread_with_history(database)
    _replace_checkpoint(database, tampered, stored(sentinel))

    server = await RunningServer(example_config(database)).start()
    try:
        async with raw_client(server) as http:
            state = await http.get(f"/threads/{tampered}/state")
            run = await _run_on(http, tampered)
            runs = (await http.get(f"/threads/{tampered}/runs")).json()
            second = await _run_on(http, tampered)
            other = await _run_on(http, healthy)
    finally:
        await server.stop()

    assert not sentinel.exists()
    assert state.status_code == 500
    assert state.json()["code"] == "checkpoint_unreadable"
    assert state.json()["detail"].startswith(
        f'Thread "{tampered}" has a stored checkpoint that cannot be decoded ('
    )
    assert state.json()["detail"].endswith(
        "); other threads are not affected. Restore the thread from a backup or delete it."
    )
    # The run ends at once, saying why, and does not hold up the next one.
    assert run["__error__"]["error"] == "CheckpointDecodeError"
    assert run["__error__"]["message"] == state.json()["detail"]
    assert runs[0]["status"] == "error"
    assert second["__error__"]["error"] == "CheckpointDecodeError"
    assert other["messages"][-1]["content"] == "[offline model] You said: hello"


async def _run_on(http: httpx.AsyncClient, thread_id: str) -> Any:
    body = {"assistant_id": "chat", "input": {"messages": "hello"}}
    response = await http.post(f"/threads/{thread_id}/runs/wait", json=body, timeout=20)
    assert response.status_code == 200
    return response.json()
