"""Logging under the CLI: our `agent_runtime` loggers print through uvicorn's handler, in its
format, at the level `--log-level` (or `LOG_LEVEL`) names.

uvicorn applies this config in the server process and in every reload child. An app served some
other way (the tests' in-process server) keeps the logging its host set up.
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

LOG_LEVEL_ENV = "LOG_LEVEL"
"""Fallback for `--log-level`, as with `langgraph dev`."""
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_LOG_LEVEL = "info"
LOGGER = "agent_runtime"
"""The parent of every logger of ours (`agent_runtime.runs`, ...)."""


def log_config(level: str) -> dict[str, Any]:
    """uvicorn's logging config plus our loggers at `level` (one of `LOG_LEVELS`).

    uvicorn's own loggers take their level from its `log_level` (`--server-log-level`). The
    root logger is left alone: a graph that sets up its own logging keeps it.
    """
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"][LOGGER] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    return config
