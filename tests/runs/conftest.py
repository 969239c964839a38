"""Fixtures for the run manager and executor tests: the parts of harness.py, on a fresh
SQLite file per test, stopped and closed afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runs.harness import Harness, build_harness


@pytest.fixture
def database(tmp_path: Path) -> Path:
    return tmp_path / "runs.sqlite"


@pytest.fixture
async def harness(database: Path) -> AsyncIterator[Harness]:
    built = await build_harness(database)
    try:
        yield built
    finally:
        await built.manager.stop()
        await built.storage.close()
