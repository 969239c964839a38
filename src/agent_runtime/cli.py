"""The `agent-runtime` command: `dev` (what `langgraph dev` does, with reload), `serve`, and
`migrate` (bring the database's tables up to date, then exit).

Maps flags and environment onto the config, checks everything that can fail before serving (config,
graph imports, the port) with one line each, then hands uvicorn a bound socket. No server logic.
"""

from __future__ import annotations

import argparse
import errno
import functools
import ipaddress
import os
import socket
import sys
import webbrowser
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import uvicorn

from agent_runtime import __version__
from agent_runtime.config import (
    API_KEY_ENV,
    DATABASE_ENV,
    DATABASE_URI_ENV,
    DEV_CORS,
    METRICS_ENV,
    REDIS_ENV,
    STUDIO_ORIGIN,
    LogFormat,
    ProcessRole,
    RuntimeConfig,
    apply_env,
    is_path_dependency,
    load_config,
    parse_graph_spec,
    redact_uri,
)
from agent_runtime.errors import ConfigError, StorageError
from agent_runtime.log_config import DEFAULT_LOG_LEVEL, LOG_LEVEL_ENV, LOG_LEVELS, log_config
from agent_runtime.observability.log_format import LOG_FORMAT_ENV, LOG_FORMATS
from agent_runtime.processes import (
    DEFAULT_GRACE_SECONDS,
    DrainingServer,
    Supervisor,
    stop_with_parent,
)
from agent_runtime.reload import ProjectReload
from agent_runtime.startup import STARTUP_FAILED, StartupReport, exit_now, serve_or_exit

if TYPE_CHECKING:
    from starlette.types import ASGIApp

CONFIG_ENV = "AGENT_RUNTIME_CONFIG"
"""Fallback for `--config`; also how `dev` tells its reload children which file to serve."""
HOST_ENV = "AGENT_RUNTIME_HOST"
"""Fallback for `--host` (both commands)."""
PORT_ENV = "AGENT_RUNTIME_PORT"
"""Fallback for `--port` (both commands)."""
NO_UI_ENV = "AGENT_RUNTIME_NO_UI"
"""How `dev` tells its reload children that `--no-ui` was given."""
GRACEFUL_SHUTDOWN_SECONDS = 5
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
class _Command:
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


def run(argv: Sequence[str] | None = None) -> int:
    """Run `agent-runtime` with these arguments and return the exit status.

    2: the config or a graph is broken; 1: the port cannot be listened on; 3: start-up failed
    (the database, the store index, a graph factory); 0: stopped cleanly.
    """
    args = _parser().parse_args(argv)
    if args.command == "migrate":
        return _migrate(args)
    try:
        command = _command(args, os.environ)
        config = _with_process_options(
            load_config(command.config_path, database=command.database, redis=command.redis),
            command,
        )
        if command.name == "dev":
            config = dev_defaults(config)
        if not command.ui:
            config = without_ui(config)
        command = replace(command, log_format=command.log_format or config.log_format or "text")
        for warning in config.warnings:
            _say(f"warning: {warning}")
        environ_before = dict(os.environ)
        apply_env(config, os.environ)
        # Imported here: LangGraph takes a second to import, and --help should not wait for it.
        from agent_runtime.registry import import_graphs

        import_graphs(config)
        from agent_runtime.server.auth import load_auth, load_custom_app

        load_auth(config)
        load_custom_app(config)
    except ConfigError as exc:
        _say(exc.detail)
        return 2
    try:
        sock = _listen(command.host, command.port)
    except OSError as exc:
        _say(_listen_problem(exc, command.host, command.port))
        return 1
    url = _url(command.host, sock.getsockname()[1])
    exposed = exposure_warning(config, command.host)
    if exposed is not None:
        _say(exposed)
    print(f"agent-runtime {command.name}: serving {config.path}", flush=True)
    for graph_id, spec in config.graphs.items():
        print(f"  graph {graph_id}: {spec}", flush=True)
    print(f"  database: {redact_uri(config.database.uri)}", flush=True)
    if config.redis is not None:
        print(f"  redis: {redact_uri(config.redis.uri)}", flush=True)
    if command.name == "serve":
        print(f"  {_processes_line(config, command)}", flush=True)
    print(f"  API: {url}  docs: {url}/docs", flush=True)
    if not config.http.disable_ui:
        print(f"  UI: {url}/ui", flush=True)
    if config.metrics:
        print(f"  metrics: {url}/metrics", flush=True)
    if command.name == "dev":
        print(f"  {_studio_line(config, url)}", flush=True)
    if command.name == "dev" and config.checkpoint_cache.verify and config.checkpoint_cache.max_mb:
        print(
            "  checkpoint cache: every reuse checked against storage (a development default;"
            ' "checkpoint_cache": {"verify": false} turns it off)',
            flush=True,
        )
    if command.browser and sys.stdout.isatty():
        # The socket already listens, so the page waits in the backlog until the app is up.
        webbrowser.open(f"{url}/docs")
    status = 0
    try:
        if command.reload:
            _restore_environ(environ_before)
            status = _serve_reloading(config, command, sock)
        else:
            status = _serve(config, command, sock)
    except KeyboardInterrupt:
        pass  # Ctrl+C is how a dev server stops; `make dev` should not report it as a failure.
    finally:
        sock.close()
    return status


def main() -> None:
    """Console-script entry point."""
    status = run()
    if status == STARTUP_FAILED:
        exit_now(status)
    sys.exit(status)


def _with_process_options(config: RuntimeConfig, command: _Command) -> RuntimeConfig:
    if command.jobs is not None:
        config = replace(config, limits=replace(config.limits, n_jobs_per_worker=command.jobs))
    metrics = command.metrics if command.metrics is not None else config.metrics
    if metrics is None:
        # On in production, where it is scraped; it answers behind the same auth as the API.
        metrics = command.name == "serve"
    return replace(config, role=command.role, metrics=metrics)


def _processes_line(config: RuntimeConfig, command: _Command) -> str:
    count = f"{command.workers} processes" if command.workers > 1 else "1 process"
    if config.role == "api":
        return f"{count}, API only: runs are queued for worker processes"
    work = f"at most {config.limits.n_jobs_per_worker} runs at once each"
    if config.role == "worker":
        return f"{count}, worker only (HTTP: /ok), {work}"
    return f"{count}, {work}"


def _reload_app() -> ASGIApp:
    """The app of one reload child, rebuilt from what the parent put in the environment."""
    from agent_runtime.server.app import create_app

    try:
        config = load_config(os.environ[CONFIG_ENV])
    except ConfigError as exc:
        # The child exits and the parent keeps watching: fixing the file brings the server back.
        _say(exc.detail)
        raise SystemExit(3) from None
    apply_env(config, os.environ)
    jobs = _from_env(None, os.environ, JOBS_ENV, _count)
    if jobs is not None:
        config = replace(config, limits=replace(config.limits, n_jobs_per_worker=jobs))
    if os.environ.get(NO_UI_ENV):
        config = without_ui(config)
    # Only `agent-runtime dev` reloads.
    try:
        app = create_app(dev_defaults(config))
    except ConfigError as exc:
        _say(exc.detail)
        raise SystemExit(3) from None
    return StartupReport(app, _say)


def dev_defaults(config: RuntimeConfig) -> RuntimeConfig:
    """What `agent-runtime dev` turns on that the config leaves unset: checking every reuse of
    the checkpoint cache, so that a node changing its state in place is reported while the
    graph is being written (`agent-runtime serve` trusts it, for speed); and calls from browser
    pages on this machine and LangGraph Studio (`serve` allows only what `http.cors` lists)."""
    cache = config.checkpoint_cache
    if cache.verify is None:
        config = replace(config, checkpoint_cache=replace(cache, verify=True))
    if config.http.cors is None:
        config = replace(config, http=replace(config.http, cors=DEV_CORS))
    if config.auth is not None:
        # As `langgraph dev`: Studio's requests (`x-auth-scheme: langsmith`) act as Studio's
        # user on a local server, unless `auth.disable_studio_auth` says otherwise.
        config = replace(config, auth=replace(config.auth, trust_studio=True))
    return config


def without_ui(config: RuntimeConfig) -> RuntimeConfig:
    """The config with the inspector page at `/ui` turned off (`--no-ui`)."""
    return replace(config, http=replace(config.http, disable_ui=True))


def _studio_line(config: RuntimeConfig, url: str) -> str:
    from agent_runtime.server.origins import OriginPolicy

    if OriginPolicy(config.http.cors or DEV_CORS).allows(STUDIO_ORIGIN):
        return f"Studio: {STUDIO_ORIGIN}/studio/?baseUrl={url}"
    return f"Studio: add {STUDIO_ORIGIN} to http.cors.allow_origins in langgraph.json to use it"


def _parser() -> argparse.ArgumentParser:
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
            type=_count,
            metavar="K",
            help=f"the most runs one process executes at once; more wait queued (default: "
            f"${JOBS_ENV}, else agent_runtime.limits.n_jobs_per_worker, else 10)",
        )
    serve.add_argument(
        "--workers",
        type=_count,
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


def _migrate(args: argparse.Namespace) -> int:
    """`agent-runtime migrate`: 0 once the tables are up to date; 2 for a broken config; 3 when
    the database cannot be reached or migrated."""
    import asyncio

    from agent_runtime.storage import open_storage

    try:
        path = Path(args.config or os.environ.get(CONFIG_ENV) or "langgraph.json")
        config = load_config(path, database=args.database)
    except ConfigError as exc:
        _say(exc.detail)
        return 2

    async def migrate() -> None:
        storage = await open_storage(config)
        await storage.close()

    try:
        asyncio.run(migrate())
    except ConfigError as exc:
        _say(exc.detail)
        return 2
    except StorageError as exc:
        _say(exc.detail)
        return STARTUP_FAILED
    print(f"agent-runtime migrate: {redact_uri(config.database.uri)} is up to date", flush=True)
    return 0


def _command(args: argparse.Namespace, environ: Mapping[str, str]) -> _Command:
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
    workers = None if is_dev else _from_env(args.workers, environ, WORKERS_ENV, _count)
    role = None if is_dev else _from_env(args.role, environ, ROLE_ENV, _role)
    grace = None if is_dev else _from_env(args.shutdown_grace_seconds, environ, GRACE_ENV, _seconds)
    return _Command(
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
        jobs=_from_env(args.n_jobs_per_worker, environ, JOBS_ENV, _count),
        shutdown_grace=DEFAULT_GRACE_SECONDS if grace is None else grace,
        ui=not args.no_ui,
        metrics=args.metrics,
        log_format=_from_env(args.log_format, environ, LOG_FORMAT_ENV, _log_format),
    )


def _from_env(
    flag: _T | None, environ: Mapping[str, str], name: str, parse: Callable[[str], _T]
) -> _T | None:
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


def _count(text: str) -> int:
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


def _listen(host: str, port: int) -> socket.socket:
    # Bound and listening before anything is printed: a busy port is reported, never moved.
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio only turns Nagle off (TCP_NODELAY) on sockets that say they
    # are TCP, and with Nagle on every small response waits ~40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if os.name != "nt":
            # Lets a restarted server take its port back from connections in TIME_WAIT; a port
            # another process listens on still fails. (On Windows the option would steal it.)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except BaseException:
        sock.close()
        raise
    return sock


def _listen_problem(exc: OSError, host: str, port: int) -> str:
    if exc.errno == errno.EADDRINUSE:
        return f"port {port} on {host} is already in use; stop the other server or pass --port"
    if exc.errno == errno.EACCES:
        return f"port {port} on {host} needs more privileges; pass a --port above 1023"
    if isinstance(exc, socket.gaierror):
        return f"host {host} cannot be resolved: {exc.strerror}; pass another --host"
    return f"cannot listen on {host} port {port}: {exc.strerror or exc}"


def exposure_warning(config: RuntimeConfig, host: str) -> str | None:
    """The warning for a server that listens beyond this machine with nothing guarding it."""
    if config.auth is not None or config.api_key or _is_loopback(host):
        return None
    return (
        f"warning: listening on {host} with no authentication: anyone who reaches this port "
        f'can use every thread; set {API_KEY_ENV} or "auth" in langgraph.json'
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _url(host: str, port: int) -> str:
    # A wildcard address is where the server listens, not where a browser can go.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _uvicorn_config(
    app: ASGIApp | str, command: _Command, reload_dirs: list[Path] | None = None
) -> uvicorn.Config:
    # host and port only label uvicorn's logs: it serves on the socket it is handed.
    return uvicorn.Config(
        app,
        host=command.host,
        port=command.port,
        lifespan="on",
        log_level=command.server_log_level,
        log_config=log_config(command.log_level, command.log_format or "text"),
        access_log=command.access_log,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        factory=reload_dirs is not None,
        reload=reload_dirs is not None,
        reload_dirs=None if reload_dirs is None else [str(folder) for folder in reload_dirs],
    )


def _serve(config: RuntimeConfig, command: _Command, sock: socket.socket) -> int:
    if command.workers > 1:
        from agent_runtime.observability.metrics import multiprocess_metrics

        with multiprocess_metrics(bool(config.metrics)) as process_died:
            supervisor = Supervisor(
                functools.partial(_serve_process, command),
                sock,
                count=command.workers,
                # Each process drains, then closes its connections, then stops its runtime.
                stop_timeout=command.shutdown_grace + GRACEFUL_SHUTDOWN_SECONDS + 10,
                say=_say,
                on_exit=process_died,
            )
            return supervisor.run()
    return _serve_app(config, command, sock)


def _serve_app(config: RuntimeConfig, command: _Command, sock: socket.socket) -> int:
    from agent_runtime.server.app import create_app

    app = create_app(config)
    options = _uvicorn_config(StartupReport(app, _say), command)
    server = DrainingServer(options, app=app, grace=command.shutdown_grace)
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILED


def _serve_process(command: _Command, sock: socket.socket) -> None:
    """One of the `--workers` processes; it inherits the environment with `.env` applied."""
    stop_with_parent(os.getppid())
    try:
        config = _with_process_options(
            load_config(command.config_path, database=command.database, redis=command.redis),
            command,
        )
    except ConfigError as exc:
        _say(exc.detail)
        exit_now(STARTUP_FAILED)
    exit_now(_serve_app(config, command, sock))


def _serve_reloading(config: RuntimeConfig, command: _Command, sock: socket.socket) -> int:
    os.environ[CONFIG_ENV] = str(config.path)
    if command.database is not None:
        os.environ[DATABASE_ENV] = config.database.uri
    if command.redis is not None and config.redis is not None:
        os.environ[REDIS_ENV] = config.redis.uri
    if command.jobs is not None:
        os.environ[JOBS_ENV] = str(command.jobs)
    if not command.ui:
        os.environ[NO_UI_ENV] = "1"
    if command.metrics is not None:
        os.environ[METRICS_ENV] = str(command.metrics).lower()
    folders = [config.base_dir]
    for dependency in config.dependencies:
        if is_path_dependency(dependency):
            folders.append(config.base_dir / Path(dependency).expanduser())
    for spec in config.graphs.values():
        parsed = parse_graph_spec(spec)
        if parsed is not None and parsed.is_file:
            folders.append((config.base_dir / parsed.location).resolve().parent)
    options = _uvicorn_config("agent_runtime.cli:_reload_app", command, folders)
    files = [path for path in (config.path, config.env_file) if path is not None]
    target = functools.partial(serve_or_exit, uvicorn.Server(options))
    reloader = ProjectReload(options, target=target, sockets=[sock], files=files)
    reloader.run()
    return STARTUP_FAILED if reloader.first_start_failed else 0


def _restore_environ(before: Mapping[str, str]) -> None:
    # Reload children apply `.env` themselves; handing them the parent's copy would keep them
    # from ever seeing an edited value, since the explicit environment wins.
    for key in set(os.environ) - set(before):
        del os.environ[key]
    os.environ.update(before)


def _say(message: str) -> None:
    # One line per problem, whatever the exception text held.
    print(f"agent-runtime: {' '.join(message.split())}", file=sys.stderr, flush=True)


if __name__ == "__main__":
    main()
