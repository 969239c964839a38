"""LangSmith, as LangChain itself traces to it: whether tracing is on (its own environment
variables: `LANGSMITH_TRACING`, `LANGCHAIN_TRACING_V2`, ...), and a run's `langsmith_tracer`
settings (project, dataset example) applied to the tracer of that run alone. agent-runtime adds
no tracer of its own and never turns LangChain's off."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Any

logger = logging.getLogger("agent_runtime.runs")


def langsmith_tracing_enabled() -> bool:
    """Whether LangChain traces this process's runs to LangSmith (read from the environment
    as LangChain reads it)."""
    from langsmith.utils import tracing_is_enabled

    return tracing_is_enabled() is True


@contextlib.contextmanager
def langsmith_run_context(settings: Any) -> Iterator[None]:
    """While the block runs, and in the tasks it starts, the run traces to the project and
    dataset example its request named; a no-op without settings or with tracing off."""
    if not isinstance(settings, dict) or not settings or not langsmith_tracing_enabled():
        yield
        return
    from langchain_core.tracers.context import tracing_v2_enabled

    traced = tracing_v2_enabled(
        project_name=settings.get("project_name"), example_id=settings.get("example_id")
    )
    try:
        traced.__enter__()
    except Exception:
        # Checked when the run was created; a run stored by another release still runs.
        logger.warning("The run's langsmith_tracer %r cannot be applied", settings, exc_info=True)
        yield
        return
    try:
        yield
    finally:
        traced.__exit__(None, None, None)
