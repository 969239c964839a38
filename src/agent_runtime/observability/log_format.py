"""Log lines as text (uvicorn's format, the default) or as one JSON object per line
(`--log-format json`), each carrying the ids of the run that wrote it. Formatting only: which
loggers print where is `log_config.py`'s."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

import orjson

from agent_runtime.config.model import LogFormat
from agent_runtime.observability.context import RUN_FIELDS, current_run_ids

LOG_FORMATS: tuple[LogFormat, ...] = ("text", "json")
LOG_FORMAT_ENV = "LOG_FORMAT"
"""Fallback for `--log-format`."""

# What every LogRecord has; anything else on a record came from `extra=` and is printed.
_STANDARD = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "color_message"}


class RunContextFilter(logging.Filter):
    """Puts the current run's ids (`observability.context`) on every record that lacks them."""

    def filter(self, record: logging.LogRecord) -> bool:
        for key, value in current_run_ids().items():
            if not hasattr(record, key):
                setattr(record, key, value)
        return True


class JsonFormatter(logging.Formatter):
    """One JSON object per line: `time`, `level`, `logger`, `message`, the run's ids when a run
    wrote it, whatever `extra=` added, and `error` (type, message, traceback) for exceptions.
    uvicorn's access lines also get `client`, `method`, `path` and `status`."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in RUN_FIELDS:
            value = getattr(record, key, None)
            if value is not None:
                entry[key] = value
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        if record.name == "uvicorn.access" and isinstance(record.args, tuple):
            entry.update(_access_fields(record.args))
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            entry["error"] = {
                "type": type(error).__name__,
                "message": str(error),
                "traceback": self.formatException(record.exc_info),
            }
        return orjson.dumps(entry, default=str).decode()


def _access_fields(args: tuple[Any, ...]) -> dict[str, Any]:
    # uvicorn logs '%s - "%s %s HTTP/%s" %d' with these five arguments.
    if len(args) != 5:
        return {}
    client, method, path, _, status = args
    return {"client": client, "method": method, "path": path, "status": status}
