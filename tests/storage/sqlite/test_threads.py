"""A thread's values on SQLite: a head and a tail, so that a conversation that grows rewrites the
tail alone (schema V7). The contract suite checks that every state reads back whole."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from agent_runtime.encoding import dumps
from agent_runtime.storage.records import NewThread, RunOutcome
from agent_runtime.storage.sqlite import SqliteStorage
from agent_runtime.storage.sqlite.threads import TAIL_LIMIT, TAIL_MARGIN


def _stored(path: Path) -> tuple[bytes, bytes]:
    # As text, each part must be whole characters (Python refuses to decode half of one).
    conn = sqlite3.connect(path)
    try:
        head = conn.execute('SELECT "values", typeof("values") FROM thread_values').fetchone()
        tail = conn.execute("SELECT tail, typeof(tail) FROM thread_value_tails").fetchone()
    finally:
        conn.close()
    assert (head[1], tail[1]) == ("text", "text")
    return head[0].encode(), tail[0].encode()


async def test_appended_messages_rewrite_only_the_tail(tmp_path: Path) -> None:
    path = tmp_path / "runtime.sqlite"
    storage = SqliteStorage(path)
    await storage.setup()
    try:
        await storage.create_thread(
            NewThread(thread_id="t", metadata={}, ttl=None), if_exists="raise"
        )
        messages = [{"type": "human", "content": "x" * 4000}]
        # Two-byte characters, so some cuts fall inside one and move back to its start.
        states = []
        heads = []
        while len(states) < 2 or heads[-1] == heads[0]:
            messages = [*messages, {"type": "ai", "content": f"reply {len(messages)} " + "é" * 450}]
            values = {"messages": messages, "n": len(states)}
            text = dumps(values)
            states.append(text)
            await storage.settle_thread("t", RunOutcome(status="success", values=values))
            head, tail = _stored(path)
            heads.append(head)
            assert head + tail == text
        # The first state's head (all but its last characters) served every later state until
        # the tail outgrew its limit; the state that outgrew it wrote a new head.
        assert len(states[0]) - TAIL_MARGIN - 1 <= len(heads[0]) <= len(states[0]) - TAIL_MARGIN
        assert states[0].startswith(heads[0])
        assert all(head == heads[0] for head in heads[:-1])
        assert len(states[-2]) - len(heads[0]) <= TAIL_LIMIT < len(states[-1]) - len(heads[0])
        assert states[-1].startswith(heads[-1]) and heads[-1] != heads[0]
        # A state that does not start with the head (an edited first message) writes anew.
        messages[0] = {"type": "human", "content": "edited"}
        edited = dumps({"messages": messages})
        await storage.settle_thread("t", RunOutcome(status="success", values_json=edited))
        head, tail = _stored(path)
        assert head + tail == edited and len(tail) in (TAIL_MARGIN, TAIL_MARGIN + 1)
    finally:
        await storage.close()
