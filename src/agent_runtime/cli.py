"""The `agent-runtime` command: `dev` (what `langgraph dev` does, with reload), `serve`, and
`migrate` (bring the database's tables up to date, then exit).

Maps the command (`cli_options`: flags and environment) onto the config, checks everything that can
fail before serving (config, graph imports, the port) with one line each, then hands uvicorn a bound
socket. No server logic.
"""

from __future__ import annotations

import argparse
import errno
import functools
import os
import socket
import sys
import webbrowser
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import uvicorn

from agent_runtime.cli_options import (
    CONFIG_ENV,
    HOST_ENV,
    JOBS_ENV,
    NO_UI_ENV,
    Command,
    build_parser,
    from_env,
    parse_count,
    read_command,
)
from agent_runtime.config import (
    API_KEY_ENV,
    DATABASE_ENV,
    DEV_CORS,
    METRICS_ENV,
    REDIS_ENV,
    STUDIO_ORIGIN,
    RuntimeConfig,
    apply_env,
    is_path_dependency,
    load_config,
    parse_graph_spec,
    redact_uri,
)
from agent_runtime.config.hosts import hosts_for_bind, is_loopback
from agent_runtime.errors import ConfigError, StorageError
from agent_runtime.log_config import log_config
from agent_runtime.observability.access_log import AccessLog, QuietHttpToolsProtocol
from agent_runtime.processes import DrainingServer, Supervisor, stop_with_parent
from agent_runtime.reload import ProjectReload
from agent_runtime.startup import STARTUP_FAILED, StartupReport, exit_now, serve_or_exit

if TYPE_CHECKING:
    from starlette.types import ASGIApp

GRACEFUL_SHUTDOWN_SECONDS = 5


def run(argv: Sequence[str] | None = None) -> int:
    """Run `agent-runtime` with these arguments and return the exit status.

    2: the config or a graph is broken; 1: the port cannot be listened on; 3: start-up failed
    (the database, the store index, a graph factory); 0: stopped cleanly.
    """
    args = build_parser().parse_args(argv)
    if args.command == "migrate":
        return _migrate(args)
    try:
        command = read_command(args, os.environ)
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


def _with_process_options(config: RuntimeConfig, command: Command) -> RuntimeConfig:
    if command.jobs is not None:
        config = replace(config, limits=replace(config.limits, n_jobs_per_worker=command.jobs))
    metrics = command.metrics if command.metrics is not None else config.metrics
    if metrics is None:
        # On in production, where it is scraped; it answers behind the same auth as the API.
        metrics = command.name == "serve"
    config = replace(config, role=command.role, metrics=metrics)
    return with_hosts_for(config, command.host, dev=command.name == "dev")


def with_hosts_for(config: RuntimeConfig, bind: str, *, dev: bool) -> RuntimeConfig:
    """`http.allowed_hosts` settled for a server listening on `bind` (`hosts_for_bind`).
    `serve` checks only the names it is given: in production a proxy in front of a loopback
    port commonly passes the public name on, and no browser on the machine is the target."""
    allowed = config.http.allowed_hosts
    if allowed is None and not dev:
        return config
    return replace(config, http=replace(config.http, allowed_hosts=hosts_for_bind(allowed, bind)))


def _processes_line(config: RuntimeConfig, command: Command) -> str:
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
    jobs = from_env(None, os.environ, JOBS_ENV, parse_count)
    if jobs is not None:
        config = replace(config, limits=replace(config.limits, n_jobs_per_worker=jobs))
    if os.environ.get(NO_UI_ENV):
        config = without_ui(config)
    # The parent put the address it listens on here (`_serve_reloading`); else dev's default.
    config = with_hosts_for(config, os.environ.get(HOST_ENV, "127.0.0.1"), dev=True)
    # Only `agent-runtime dev` reloads.
    try:
        app = create_app(dev_defaults(config))
    except ConfigError as exc:
        _say(exc.detail)
        raise SystemExit(3) from None
    return AccessLog(StartupReport(app, _say))


def without_ui(config: RuntimeConfig) -> RuntimeConfig:
    """The config with the inspector page at `/ui` turned off (`--no-ui`)."""
    return replace(config, http=replace(config.http, disable_ui=True))


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


def _studio_line(config: RuntimeConfig, url: str) -> str:
    from agent_runtime.server.origins import OriginPolicy

    if OriginPolicy(config.http.cors or DEV_CORS).allows(STUDIO_ORIGIN):
        return f"Studio: {STUDIO_ORIGIN}/studio/?baseUrl={url}"
    return f"Studio: add {STUDIO_ORIGIN} to http.cors.allow_origins in langgraph.json to use it"


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
    if config.auth is not None or config.api_key or is_loopback(host):
        return None
    return (
        f"warning: listening on {host} with no authentication: anyone who reaches this port "
        f'can use every thread; set {API_KEY_ENV} or "auth" in langgraph.json'
    )


def _url(host: str, port: int) -> str:
    # A wildcard address is where the server listens, not where a browser can go.
    shown = {"0.0.0.0": "127.0.0.1", "::": "::1", "": "127.0.0.1"}.get(host, host)
    return f"http://[{shown}]:{port}" if ":" in shown else f"http://{shown}:{port}"


def _uvicorn_config(
    app: ASGIApp | str, command: Command, reload_dirs: list[Path] | None = None
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
        # Its access line is written by `AccessLog` as each response ends.
        http=QuietHttpToolsProtocol,
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
        factory=reload_dirs is not None,
        reload=reload_dirs is not None,
        reload_dirs=None if reload_dirs is None else [str(folder) for folder in reload_dirs],
    )


def _serve(config: RuntimeConfig, command: Command, sock: socket.socket) -> int:
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


def _serve_app(config: RuntimeConfig, command: Command, sock: socket.socket) -> int:
    from agent_runtime.server.app import create_app

    app = create_app(config)
    options = _uvicorn_config(AccessLog(StartupReport(app, _say)), command)
    server = DrainingServer(options, app=app, grace=command.shutdown_grace)
    server.run(sockets=[sock])
    return 0 if server.started else STARTUP_FAILED


def _serve_process(command: Command, sock: socket.socket) -> None:
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


def _serve_reloading(config: RuntimeConfig, command: Command, sock: socket.socket) -> int:
    os.environ[CONFIG_ENV] = str(config.path)
    if command.database is not None:
        os.environ[DATABASE_ENV] = config.database.uri
    if command.redis is not None and config.redis is not None:
        os.environ[REDIS_ENV] = config.redis.uri
    if command.jobs is not None:
        os.environ[JOBS_ENV] = str(command.jobs)
    if command.metrics is not None:
        os.environ[METRICS_ENV] = str(command.metrics).lower()
    if not command.ui:
        os.environ[NO_UI_ENV] = "1"
    os.environ[HOST_ENV] = command.host
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
