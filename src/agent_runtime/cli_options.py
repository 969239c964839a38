"""The flags and environment variables of `agent-runtime`: the argument parser, and the mapping
of flags (else their variables, else the defaults) onto one `Command` per invocation. It reads
nothing but its arguments and the environment it is given; the CLI serves."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

from agent_runtime import __version__
from agent_runtime.config import (
    DATABASE_ENV,
    DATABASE_URI_ENV,
    METRICS_ENV,
    REDIS_ENV,
    LogFormat,
    ProcessRole,
)
from agent_runtime.errors import ConfigError
from agent_runtime.log_config import DEFAULT_LOG_LEVEL, LOG_LEVEL_ENV, LOG_LEVELS
from agent_runtime.observability.log_format import LOG_FORMAT_ENV, LOG_FORMATS
from agent_runtime.processes import DEFAULT_GRACE_SECONDS

CONFIG_ENV = "AGENT_RUNTIME_CONFIG"
"""Fallback for `--config`; also how `dev` tells its reload children which file to serve."""
HOST_ENV = "AGENT_RUNTIME_HOST"
"""Fallback for `--host` (both commands)."""
PORT_ENV = "AGENT_RUNTIME_PORT"
"""Fallback for `--port` (both commands)."""
NO_UI_ENV = "AGENT_RUNTIME_NO_UI"
"""How `dev` tells its reload children that `--no-ui` was given."""
WORKERS_ENV = "WEB_CONCURRENCY"
"""Fallback for `--workers` (uvicorn's and gunicorn's variable)."""
JOBS_ENV = "N_JOBS_PER_WORKER"
"""Fallback for `--n-jobs-per-worker` (LangGraph's variable); beats the config's
`agent_runtime.limits.n_jobs_per_worker`."""
ROLE_ENV = "AGENT_RUNTIME_ROLE"
"""Fallback for `--role`."""
GRACE_ENV = "BG_JOB_SHUTDOWN_GRACE_PERIOD_SECS"
"""Fallback for `--shutdown-grace-seconds` (LangGraph's variable)."""
ROLES: tuple[ProcessRole, ...] = ("all", "api", "worker")
_T = TypeVar("_T")


@dataclass(frozen=True, slots=True, kw_only=True)
class Command:
    """One invocation of `dev` or `serve`, flags and environment resolved."""

    name: str
    config_path: Path
    database: str | None
    redis: str | None
    host: str
    port: int
    reload: bool
    browser: bool
    log_level: str
    """Of our loggers, and of uvicorn's unless `server_log_level` says otherwise."""
    server_log_level: str
    access_log: bool
    workers: int = 1
    role: ProcessRole = "all"
    jobs: int | None = None
    """`--n-jobs-per-worker` or its variable; None leaves the config's."""
    shutdown_grace: float = DEFAULT_GRACE_SECONDS
    ui: bool = True
    metrics: bool | None = None
    """`--metrics` / `--no-metrics`; None leaves the config's (else on for `serve` only)."""
    log_format: LogFormat | None = None
    """`--log-format` or `LOG_FORMAT`; None leaves the config's (else text)."""


def build_parser() -> argparse.ArgumentParser:
    """The parser of every `agent-runtime` command and flag."""
    parser = argparse.ArgumentParser(
        prog="agent-runtime",
        description="Serve the LangGraph graphs of a langgraph.json over the LangGraph Server API.",
    )
    parser.add_argument("--version", action="version", version=f"agent-runtime {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    dev = commands.add_parser(
        "dev", help="serve for development: reload on changes, open the docs (like langgraph dev)"
    )
    serve = commands.add_parser("serve", help="serve in production: all interfaces, no reload")
    for sub, host, port in ((dev, "127.0.0.1", 2024), (serve, "0.0.0.0", 8000)):
        sub.add_argument(
            "--config",
            help=f"the langgraph.json to serve (default: ${CONFIG_ENV}, else ./langgraph.json)",
        )
        sub.add_argument(
            "--host", help=f"interface to listen on (default: ${HOST_ENV}, else {host})"
        )
        sub.add_argument(
            "--port", type=_port, help=f"port to listen on (default: ${PORT_ENV}, else {port})"
        )
        _database_options(sub)
        sub.add_argument(
            "--redis",
            metavar="URI",
            help=f"a Redis (redis://host:6379/0) for several processes serving one deployment: "
            f"run events, wake-ups and cancels (default: ${REDIS_ENV}, else "
            "agent_runtime.redis in the config, else none)",
        )
        sub.add_argument(
            "--log-level",
            type=_log_level,
            help=f"level of agent-runtime's and the server's logs: {', '.join(LOG_LEVELS)} "
            f"(default: ${LOG_LEVEL_ENV}, else {DEFAULT_LOG_LEVEL})",
        )
        sub.add_argument(
            "--server-log-level",
            type=_log_level,
            help="level of the HTTP server's (uvicorn's) logs only (default: the --log-level)",
        )
        sub.add_argument("--no-access-log", action="store_true", help="do not log every request")
        sub.add_argument(
            "--no-ui", action="store_true", help="do not serve the inspector page at /ui"
        )
        sub.add_argument(
            "--log-format",
            type=_log_format,
            help="text (uvicorn's lines) or json (one object per line, with the run's ids on "
            f"each line a run writes) (default: ${LOG_FORMAT_ENV}, else agent_runtime.log_format "
            "in the config, else text)",
        )
        sub.add_argument(
            "--metrics",
            action=argparse.BooleanOptionalAction,
            help="serve Prometheus metrics at /metrics, behind the API's authentication "
            f"(default: ${METRICS_ENV}, else agent_runtime.metrics in the config, else on for "
            "serve and off for dev)",
        )
        sub.set_defaults(default_host=host, default_port=port)
        sub.add_argument(
            "--n-jobs-per-worker",
            type=parse_count,
            metavar="K",
            help=f"the most runs one process executes at once; more wait queued (default: "
            f"${JOBS_ENV}, else agent_runtime.limits.n_jobs_per_worker, else 10)",
        )
    serve.add_argument(
        "--workers",
        type=parse_count,
        metavar="N",
        help="server processes sharing the port, each in the --role and with its own "
        f"--n-jobs-per-worker; one that dies is replaced (default: ${WORKERS_ENV}, else 1)",
    )
    serve.add_argument(
        "--role",
        type=_role,
        help="all: serve the API and execute runs; api: serve the API and queue runs for "
        "worker processes (LangGraph's API server); worker: execute runs queued in the database "
        f"and answer only GET /ok (LangGraph's queue worker) (default: ${ROLE_ENV}, else all)",
    )
    serve.add_argument(
        "--shutdown-grace-seconds",
        type=_seconds,
        metavar="S",
        help="on SIGTERM or SIGINT, take no new runs and give those running this long to end "
        "(the API still answers), then hand the rest back for another process to resume "
        f"(default: ${GRACE_ENV}, else {DEFAULT_GRACE_SECONDS:g})",
    )
    migrate = commands.add_parser(
        "migrate",
        help="create or upgrade the database's tables, then exit (serve and dev also do it)",
    )
    migrate.add_argument(
        "--config",
        help=f"the langgraph.json whose database to migrate (default: ${CONFIG_ENV}, else "
        "./langgraph.json)",
    )
    _database_options(migrate)
    dev.add_argument("--no-browser", action="store_true", help="do not open the docs in a browser")
    dev.add_argument("--no-reload", action="store_true", help="do not restart on file changes")
    return parser


def _database_options(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--database",
        help="a SQLite file or a postgresql:// URI (default: "
        f"${DATABASE_ENV}, else ${DATABASE_URI_ENV}, else agent_runtime.database in the config, "
        "else .agent-runtime/runtime.sqlite beside it)",
    )


def read_command(args: argparse.Namespace, environ: Mapping[str, str]) -> Command:
    """The command these parsed flags ask for, with unset flags taken from `environ`.

    Raises:
        ConfigError: a variable holds a value its flag would refuse.
    """
    port = args.port
    if port is None and environ.get(PORT_ENV):
        try:
            port = _port(environ[PORT_ENV])
        except argparse.ArgumentTypeError:
            raise ConfigError(
                f'{PORT_ENV}: expected a port number (0-65535), got "{environ[PORT_ENV]}"'
            ) from None
    log_level = args.log_level
    if log_level is None and environ.get(LOG_LEVEL_ENV):
        try:
            log_level = _log_level(environ[LOG_LEVEL_ENV])
        except argparse.ArgumentTypeError as exc:
            raise ConfigError(f"{LOG_LEVEL_ENV}: {exc}") from None
    log_level = log_level or DEFAULT_LOG_LEVEL
    is_dev = args.command == "dev"
    # `dev` serves one process that does everything, as `langgraph dev` does.
    workers = None if is_dev else from_env(args.workers, environ, WORKERS_ENV, parse_count)
    role = None if is_dev else from_env(args.role, environ, ROLE_ENV, _role)
    grace = None if is_dev else from_env(args.shutdown_grace_seconds, environ, GRACE_ENV, _seconds)
    return Command(
        name=args.command,
        config_path=Path(args.config or environ.get(CONFIG_ENV) or "langgraph.json"),
        database=args.database,
        redis=args.redis,
        host=args.host or environ.get(HOST_ENV) or args.default_host,
        port=args.default_port if port is None else port,
        reload=is_dev and not args.no_reload,
        browser=is_dev and not args.no_browser,
        log_level=log_level,
        server_log_level=args.server_log_level or log_level,
        access_log=not args.no_access_log,
        workers=workers or 1,
        role=role or "all",
        jobs=from_env(args.n_jobs_per_worker, environ, JOBS_ENV, parse_count),
        shutdown_grace=DEFAULT_GRACE_SECONDS if grace is None else grace,
        ui=not args.no_ui,
        metrics=args.metrics,
        log_format=from_env(args.log_format, environ, LOG_FORMAT_ENV, _log_format),
    )


def from_env(
    flag: _T | None, environ: Mapping[str, str], name: str, parse: Callable[[str], _T]
) -> _T | None:
    """The flag's value, else the variable `name` parsed, else None.

    Raises:
        ConfigError: the variable holds a value `parse` refuses.
    """
    if flag is not None or not environ.get(name):
        return flag
    try:
        return parse(environ[name])
    except argparse.ArgumentTypeError as exc:
        raise ConfigError(f"{name}: {exc}") from None


def _role(text: str) -> ProcessRole:
    for role in ROLES:
        if text == role:
            return role
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(ROLES)}, got {text!r}")


def parse_count(text: str) -> int:
    """A whole number of at least 1 (workers, jobs).

    Raises:
        argparse.ArgumentTypeError: it is not one.
    """
    if not text.strip().isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _seconds(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0 or seconds == float("inf"):
        raise argparse.ArgumentTypeError(f"expected a number of seconds (0 or more), got {text!r}")
    return seconds


def _port(text: str) -> int:
    if not text.isdigit() or int(text) > 65535:
        raise argparse.ArgumentTypeError(f"expected a port number (0-65535), got {text!r}")
    return int(text)


def _log_format(text: str) -> LogFormat:
    for found in LOG_FORMATS:
        if text.lower() == found:
            return found
    raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_FORMATS)}, got {text!r}")


def _log_level(text: str) -> str:
    if text.lower() not in LOG_LEVELS:
        raise argparse.ArgumentTypeError(f"expected one of {', '.join(LOG_LEVELS)}, got {text!r}")
    return text.lower()
