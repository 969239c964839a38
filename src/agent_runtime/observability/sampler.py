"""Readings the metrics take rather than count: the run queue's depth (one query, when
`/metrics` is scraped), and this process's slots, streams and database pool (at each scrape and
every few seconds, so that under `--workers` each process's live gauges stay current)."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING

from agent_runtime.observability.metrics import Metrics

if TYPE_CHECKING:
    from agent_runtime.runtime import Runtime

logger = logging.getLogger("agent_runtime")

SAMPLE_SECONDS = 10.0


async def sample(metrics: Metrics, runtime: Runtime, *, queue: bool = False) -> None:
    """Set the gauges of this process; with `queue`, also the pending runs of the database.

    Raises:
        StorageError: the database cannot be read (with `queue`).
    """
    if runtime.config.role != "api":
        metrics.slots(runtime.runs.executing, runtime.config.limits.n_jobs_per_worker)
    metrics.streams_open.set(runtime.streams.open)
    metrics.pool(runtime.storage.pool_stats())
    if queue:
        metrics.runs_pending.set(await runtime.storage.count_pending_runs())


async def sample_forever(
    metrics: Metrics, runtime: Runtime, *, seconds: float = SAMPLE_SECONDS
) -> None:
    """`sample` every `seconds` until cancelled."""
    while True:
        try:
            await sample(metrics, runtime)
        except Exception:
            # A gauge missing a reading must never stop the server.
            logger.exception("Sampling the metrics failed")
        await asyncio.sleep(seconds)
