"""agent-runtime: an open, self-hostable runtime serving LangGraph graphs over the LangGraph
Server API."""

from agent_runtime.errors import (
    AgentRuntimeError,
    ConfigError,
    ConflictError,
    GraphLoadError,
    InvalidRequestError,
    NotFoundError,
    PayloadTooLargeError,
    StorageError,
)

__version__ = "0.1.0"

__all__ = [
    "AgentRuntimeError",
    "ConfigError",
    "ConflictError",
    "GraphLoadError",
    "InvalidRequestError",
    "NotFoundError",
    "PayloadTooLargeError",
    "StorageError",
    "__version__",
]
