"""Fixtures for the storage contract: every backend under test, on a hand-driven clock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from agent_runtime.storage.base import Storage
from agent_runtime.storage.sqlite import SqliteStorage


class Clock:
    """A hand-driven clock, so ordering and TTL tests do not sleep."""

    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, tzinfo=UTC)

    def __call__(self) -> datetime:
        self.now += timedelta(milliseconds=1)
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["sqlite"])
async def storage(
    request: pytest.FixtureRequest, tmp_path: Path, clock: Clock
) -> AsyncIterator[Storage]:
    backend = SqliteStorage(tmp_path / "nested" / "runtime.sqlite", clock=clock)
    await backend.setup()
    try:
        yield backend
    finally:
        await backend.close()
