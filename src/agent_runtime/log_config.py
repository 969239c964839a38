"""Logging under the CLI: our `agent_runtime` loggers print through uvicorn's handler, in its
format or as JSON lines (`--log-format`), at the level `--log-level` (or `LOG_LEVEL`) names.

uvicorn applies this config in the server process and in every reload child. An app served some
other way (the tests' in-process server) keeps the logging its host set up.
"""

from __future__ import annotations

import copy
from typing import Any

from uvicorn.config import LOGGING_CONFIG

from agent_runtime.config.model import LogFormat

LOG_LEVEL_ENV = "LOG_LEVEL"
"""Fallback for `--log-level`, as with `langgraph dev`."""
LOG_LEVELS = ("critical", "error", "warning", "info", "debug")
DEFAULT_LOG_LEVEL = "info"
LOGGER = "agent_runtime"
"""The parent of every logger of ours (`agent_runtime.runs`, ...)."""
_FORMAT_MODULE = "agent_runtime.observability.log_format"


def log_config(level: str, log_format: LogFormat = "text") -> dict[str, Any]:
    """uvicorn's logging config plus our loggers at `level` (one of `LOG_LEVELS`), printed
    as text (uvicorn's format) or as JSON lines that carry the ids of the run that wrote them.

    uvicorn's own loggers take their level from its `log_level` (`--server-log-level`). As
    text, the root logger is left alone: a graph that sets up its own logging keeps it. As
    JSON, the root logger prints warnings and errors as JSON too, so that every line of the
    process can be parsed (a graph's `logging.basicConfig` then does nothing).
    """
    config: dict[str, Any] = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"][LOGGER] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    if log_format == "json":
        json_formatter = {"()": f"{_FORMAT_MODULE}.JsonFormatter"}
        config["formatters"] = {"default": json_formatter, "access": dict(json_formatter)}
        config["filters"] = {"run": {"()": f"{_FORMAT_MODULE}.RunContextFilter"}}
        for handler in config["handlers"].values():
            handler["filters"] = ["run"]
        config["root"] = {"handlers": ["default"], "level": "WARNING"}
    return config
