"""The ids of the run the current task works for (`run_id`, `thread_id`, `assistant_id`,
`graph_id`), in a context variable that the run's tasks inherit, so that every log line a run
writes can carry them. Set by the run observer; read by the logging filter. No IO."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from contextvars import ContextVar

RUN_FIELDS = ("run_id", "thread_id", "assistant_id", "graph_id")
"""The ids a run's log lines carry, in this order."""

# A dict, not a frozen mapping: the graph id is learnt after the run's tasks have copied the
# context, and they must see it too.
_current: ContextVar[dict[str, str] | None] = ContextVar("agent_runtime_run", default=None)


def current_run_ids() -> Mapping[str, str]:
    """The ids of the run this task works for; empty outside any run."""
    return _current.get() or {}


@contextlib.contextmanager
def run_ids_context(**ids: str | None) -> Iterator[dict[str, str]]:
    """Make these the current run's ids until the block ends (None values are left out);
    yields the mapping, which `add_run_id` may complete later."""
    found = {key: value for key, value in ids.items() if value is not None}
    token = _current.set(found)
    try:
        yield found
    finally:
        _current.reset(token)


def add_run_id(key: str, value: str) -> None:
    """Complete the current run's ids (the graph id, once the assistant is read)."""
    found = _current.get()
    if found is not None:
        found[key] = value
