"""Fixtures for the run manager and executor tests: the parts of harness.py, on a fresh
database per test (SQLite, or Postgres with `--backend postgres`), stopped and closed
afterwards."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.conftest import Database, database_for
from tests.runs.harness import Harness, build_harness


@pytest.fixture
async def database(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Database]:
    async with database_for(request, tmp_path / "runs.sqlite") as found:
        yield found


@pytest.fixture
async def harness(database: Database) -> AsyncIterator[Harness]:
    built = await build_harness(database)
    try:
        yield built
    finally:
        await built.manager.stop()
        await built.storage.close()
