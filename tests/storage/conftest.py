"""Fixtures for the storage contract: every backend under test, on a hand-driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.storage.base import Storage
from agent_runtime.storage.sqlite import SqliteStorage


@pytest.fixture
def clock() -> FakeClock:
    """Hand-driven, so ordering and TTL tests do not sleep; each reading a millisecond on."""
    return FakeClock(tick=timedelta(milliseconds=1))


@pytest.fixture(params=["sqlite"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, clock: FakeClock
) -> AsyncIterator[Storage]:
    backend = SqliteStorage(tmp_path / "nested" / "runtime.sqlite", clock=clock)
    await backend.setup()
    try:
        yield backend
    finally:
        await backend.close()
