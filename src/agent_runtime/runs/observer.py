"""The hooks through which a run's life is observed (metrics, traces, run log lines): the run
manager and executor call them at a few fixed points, and this default does nothing. What the
hooks do lives in `agent_runtime.observability`; nothing here may change how a run runs."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

from agent_runtime.schema import Run
from agent_runtime.storage.records import NewRun, RunOutcome


class RunObserver:
    """Called by the run manager and executor; every method must be cheap and must never
    raise into the run it watches. Subclass and override what you need."""

    def run_creating(self, new: NewRun) -> NewRun:
        """The run about to be queued; what is returned is queued (a trace context added)."""
        return new

    def run_created(self, run: Run, graph_id: str) -> None:
        """The run is queued (committed)."""

    @contextlib.contextmanager
    def run_claimed(self, run: Run) -> Iterator[None]:
        """Held while this process executes and finishes a claimed run; the run's tasks
        (graph nodes, tools) start inside it and inherit what it sets in their context."""
        yield

    def run_started(self, run: Run, graph_id: str) -> None:
        """The run's graph is about to start (its assistant and graph are resolved)."""

    def callbacks(self, run_id: str) -> Sequence[Any]:
        """LangChain callback handlers to attach to the run's graph."""
        return ()

    def run_finished(self, run: Run, outcome: RunOutcome) -> None:
        """The run ended and its outcome is recorded."""

    def leases_reaped(self, count: int) -> None:
        """`count` threads' runs were re-queued from processes whose leases lapsed."""

    def slots_changed(self, busy: int, limit: int) -> None:
        """This process now holds `busy` of its `limit` run slots."""


NO_OBSERVER = RunObserver()
"""Observes nothing: the default of the run manager and executor."""
