"""The thread-state domain: state at a checkpoint, history, the one write path (updates, forks,
message edits), the messages view, the checkpoint tree and diffs. Functions take their
collaborators (storage, registry, ids) explicitly; nothing here sees a request."""

from agent_runtime.state.diff import diff_checkpoints, diff_values
from agent_runtime.state.history import get_history
from agent_runtime.state.messages import (
    add_messages,
    delete_message,
    edit_message,
    get_message,
    list_messages,
)
from agent_runtime.state.snapshot import get_state
from agent_runtime.state.tree import get_tree
from agent_runtime.state.write import Change, Written, update_state, write_state

__all__ = [
    "Change",
    "Written",
    "add_messages",
    "delete_message",
    "diff_checkpoints",
    "diff_values",
    "edit_message",
    "get_history",
    "get_message",
    "get_state",
    "get_tree",
    "list_messages",
    "update_state",
    "write_state",
]
