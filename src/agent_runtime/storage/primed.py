"""A run's first checkpoint read, made by its creation: a run created claimed on an idle thread
reads the thread's latest checkpoint in the creation's own transaction (or statement), and the
run's graph, whose first act is that same read, takes it from here instead of asking the
database again.

Nothing can change the thread's checkpoints in between: the creation marks the thread busy,
state edits refuse a busy thread, and no other run starts on it. Only the read a run's root
graph makes first (its thread, the root namespace, no `checkpoint_id`) is served, once; any
other read goes to the database as before.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph.checkpoint.base import get_checkpoint_id

MAX_PRIMED = 256
"""Reads kept for runs whose graph has not asked yet; beyond it the oldest is dropped (its run
reads the database, as it would have)."""


@dataclass(frozen=True, slots=True)
class PrimedRead:
    """What a backend's saver read for the thread, in its own raw form (None: no checkpoint)."""

    thread_id: str
    found: Any


class PrimedReads:
    """The reads made for runs not yet started, by run id; one saver's, on its event loop."""

    def __init__(self, max_entries: int = MAX_PRIMED) -> None:
        self._max_entries = max_entries
        self._reads: OrderedDict[str, PrimedRead] = OrderedDict()

    def put(self, run_id: str, thread_id: str, found: Any) -> None:
        self._reads[run_id] = PrimedRead(thread_id, found)
        if len(self._reads) > self._max_entries:
            self._reads.popitem(last=False)

    def take(self, config: RunnableConfig) -> PrimedRead | None:
        """The read made for the run `config` names, if this is its root graph's first read of
        the thread's latest checkpoint; a root read of anything else drops it unused."""
        if not self._reads:
            return None
        configurable = config.get("configurable", {})
        run_id = configurable.get("run_id")
        if not isinstance(run_id, str) or configurable.get("checkpoint_ns", ""):
            return None
        primed = self._reads.pop(run_id, None)
        if primed is None or get_checkpoint_id(config):
            return None
        return primed if str(configurable.get("thread_id")) == primed.thread_id else None

    def forget(self, run_id: str) -> None:
        """Drop a run's read if its graph never made it (the run failed before, say)."""
        self._reads.pop(run_id, None)

    def __len__(self) -> int:
        return len(self._reads)
