"""A server over the run-test fixture graphs (slow, failing, custom, nested, bursty, plus the
example chat and approval graphs)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from langgraph_sdk.client import LangGraphClient

from tests.conftest import ROOT, RunningServer, raw_client, sdk_client, served

RUNS_CONFIG = ROOT / "tests" / "fixtures" / "runs" / "langgraph.json"


@pytest.fixture
async def runs_server(database: Path) -> AsyncIterator[RunningServer]:
    async with served(RUNS_CONFIG, database) as running:
        yield running


@pytest.fixture
async def rclient(runs_server: RunningServer) -> AsyncIterator[LangGraphClient]:
    async with sdk_client(runs_server) as sdk:
        yield sdk


@pytest.fixture
async def rhttp(runs_server: RunningServer) -> AsyncIterator[httpx.AsyncClient]:
    async with raw_client(runs_server) as raw:
        yield raw
