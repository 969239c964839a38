"""Storage backends behind one protocol."""

from agent_runtime.storage.base import Storage
from agent_runtime.storage.open import open_storage
from agent_runtime.storage.sqlite import SqliteStorage

__all__ = ["SqliteStorage", "Storage", "open_storage"]
