"""The default backend: one SQLite file holding our tables, LangGraph's checkpoints and store."""

from agent_runtime.storage.sqlite.backend import SqliteStorage

__all__ = ["SqliteStorage"]
