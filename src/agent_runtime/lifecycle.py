"""Thread lifecycle rules: which transitions are allowed, and the one error every write to a
read-only thread answers with. Storage enforces them; `state.write` checks them before every
state write, and routes call `require_open` before the other writes they guard."""

from __future__ import annotations

from agent_runtime.errors import ConflictError
from agent_runtime.schema import Lifecycle, Thread

ALLOWED: frozenset[tuple[Lifecycle, Lifecycle]] = frozenset(
    {("open", "locked"), ("locked", "open"), ("open", "archived"), ("locked", "archived")}
)


def check_transition(thread_id: str, current: Lifecycle, wanted: Lifecycle) -> None:
    """Raises:
    ConflictError: the change is not one of open<->locked, open->archived, locked->archived.
    """
    if current == wanted or (current, wanted) in ALLOWED:
        return
    if current == "archived":
        reason = "archived threads stay archived"
    else:
        reason = "allowed: open <-> locked, open -> archived, locked -> archived"
    raise ConflictError(
        f'Thread "{thread_id}" is {current} and cannot become {wanted}; {reason}',
        code="lifecycle_transition",
    )


def read_only_error(thread_id: str, lifecycle: Lifecycle, action: str) -> ConflictError:
    """The answer to a write on a locked or archived thread."""
    if lifecycle == "locked":
        way_out = 'reopen it with PATCH {"lifecycle": "open"} first'
    else:
        way_out = "archived threads stay read-only; copy it to continue"
    return ConflictError(
        f'Thread "{thread_id}" is {lifecycle}, so it cannot {action}; {way_out}',
        code=f"thread_{lifecycle}",
    )


def require_editable(thread: Thread, *, doing: str, action: str) -> None:
    """A thread whose state is about to be written must be idle and open.

    Raises:
        ConflictError: a run is active on the thread, or it is locked or archived.
    """
    if thread["status"] == "busy":
        raise ConflictError(
            f'Thread "{thread["thread_id"]}" is busy with a run; wait for it or cancel it '
            f"before {doing}",
            code="thread_busy",
        )
    require_open(thread["thread_id"], thread["lifecycle"], action)


def require_open(thread_id: str, lifecycle: Lifecycle, action: str) -> None:
    """Raises:
    ConflictError: the thread is locked or archived.
    """
    if lifecycle != "open":
        raise read_only_error(thread_id, lifecycle, action)
