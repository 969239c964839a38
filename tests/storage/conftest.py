"""Fixtures for the storage contract: every backend under test, on a hand-driven clock. The
Postgres backend runs on a fresh database of the local server (`tests/services.py`), and skips
with a reason where there is none."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.storage.base import Storage
from agent_runtime.storage.sqlite import SqliteStorage
from tests.services import fresh_postgres_database

TEST_POOL_SIZE = 4
"""Connections per storage under test: the server has 100 in all, shared by every test run."""


@pytest.fixture
def clock() -> FakeClock:
    """Hand-driven, so ordering and TTL tests do not sleep; each reading a millisecond on."""
    return FakeClock(tick=timedelta(milliseconds=1))


@pytest.fixture(params=["sqlite", "postgres"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Storage]:
    if request.param == "sqlite":
        backend: Storage = SqliteStorage(tmp_path / "nested" / "runtime.sqlite", clock=clock)
        await backend.setup()
        try:
            yield backend
        finally:
            await backend.close()
        return
    from agent_runtime.storage.postgres import PostgresStorage

    async with fresh_postgres_database(migrated=True) as uri:
        backend = PostgresStorage(uri, pool_size=TEST_POOL_SIZE, clock=clock)
        await backend.setup()
        try:
            yield backend
        finally:
            await backend.close()
