"""A fresh Postgres database per test, and storages opened on it."""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

import pytest

from agent_runtime.clock import FakeClock
from agent_runtime.storage.postgres import PostgresStorage
from tests.services import fresh_postgres_database


@pytest.fixture
async def pg_uri() -> AsyncIterator[str]:
    async with fresh_postgres_database() as uri:
        yield uri


@asynccontextmanager
async def opened(
    uri: str,
    *,
    clock: FakeClock | None = None,
    store_config: Mapping[str, Any] | None = None,
    **options: Any,
) -> AsyncIterator[PostgresStorage]:
    """A storage set up on `uri`, closed afterwards."""
    storage = PostgresStorage(
        uri,
        pool_size=options.pop("pool_size", 3),
        clock=clock or FakeClock(),
        store_config=store_config,
        **options,
    )
    await storage.setup()
    try:
        yield storage
    finally:
        await storage.close()
