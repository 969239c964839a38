"""A server on the auth fixture (`tests/fixtures/auth`): users by bearer token, single-owner
resources, per-user store namespaces."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import ROOT, RunningServer, served

AUTH_CONFIG = ROOT / "tests" / "fixtures" / "auth" / "langgraph.json"
TOKENS = {"a": "Bearer user-a", "b": "Bearer user-b", "reader": "Bearer reader"}


@pytest.fixture
async def auth_server(database: Path) -> AsyncIterator[RunningServer]:
    async with served(AUTH_CONFIG, database) as running:
        yield running


def as_user(server: RunningServer, who: str | None) -> httpx.AsyncClient:
    """A raw client sending `who`'s token (no Authorization header for None)."""
    headers = {"Authorization": TOKENS[who]} if who else {}
    return httpx.AsyncClient(base_url=server.url, headers=headers, timeout=30)
