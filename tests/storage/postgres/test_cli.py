"""The real CLI on Postgres: `agent-runtime migrate` alone, then `agent-runtime serve
--database postgresql://...` driven through langgraph_sdk, the banner hiding the password."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import psycopg
from langgraph_sdk import get_client

from agent_runtime.storage.postgres.schema import MIGRATIONS
from tests.test_cli import ECHO, _environ

STARTUP_TIMEOUT_SECONDS = 30
_API_LINE = re.compile(r"API: (http://\S+)")


def _with_password(uri: str) -> str:
    # The test server trusts every local user, so any password is accepted and must not show.
    return uri.replace("postgresql://", "postgresql://root:hunter2@", 1)


async def test_migrate_then_serve_a_run_on_postgres(pg_uri: str, tmp_path: Path) -> None:
    uri = _with_password(pg_uri)
    migrated = await asyncio.to_thread(
        subprocess.run,
        [sys.executable, "-m", "agent_runtime.cli", "migrate", "--config",
         str(ECHO / "langgraph.json"), "--database", uri],
        capture_output=True, text=True, env=_environ(), cwd=tmp_path, timeout=60, check=False,
    )  # fmt: skip
    assert migrated.returncode == 0, migrated.stderr
    assert migrated.stdout.strip() == (
        f"agent-runtime migrate: {uri.replace(':hunter2@', ':***@')} is up to date"
    )
    async with await psycopg.AsyncConnection.connect(pg_uri) as conn:
        cursor = await conn.execute("SELECT max(version) FROM agent_runtime_migrations")
        assert await cursor.fetchone() == (len(MIGRATIONS),)

    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agent_runtime.cli", "serve", "--config",
        str(ECHO / "langgraph.json"), "--host", "127.0.0.1", "--port", "0", "--database", uri,
        cwd=tmp_path, env=_environ(), stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    output: list[str] = []
    try:
        assert process.stdout is not None
        url = None
        async with asyncio.timeout(STARTUP_TIMEOUT_SECONDS):
            async for raw in process.stdout:
                output.append(raw.decode().rstrip())
                if match := _API_LINE.search(output[-1]):
                    url = match.group(1)
                    break
        assert url is not None, "\n".join(output)
        assert f"  database: {uri.replace(':hunter2@', ':***@')}" in output
        assert not any("hunter2" in line for line in output)
        client = get_client(url=url, api_key=None)
        try:
            thread = await client.threads.create()
            result = await client.runs.wait(thread["thread_id"], "echo", input={"text": "hi"})
            assert result == {"text": "echo: hi"}
            runs = await client.runs.list(thread["thread_id"])
            assert [run["status"] for run in runs] == ["success"]
        finally:
            await client.http.client.aclose()
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), 30)
    # The run and its checkpoints are in Postgres, not in a file.
    async with await psycopg.AsyncConnection.connect(pg_uri) as conn:
        cursor = await conn.execute("SELECT status FROM runs")
        assert await cursor.fetchall() == [("success",)]
    assert not (tmp_path / ".agent-runtime").exists()
