"""langgraph.json -> a frozen `RuntimeConfig`: validation, warnings, `.env`, the database.

Reads the config file and its `.env`, nothing else: it never imports graphs (that is `registry`),
creates folders (storage does) or touches the process environment (except through `apply_env`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, MutableMapping
from pathlib import Path
from typing import Any

from agent_runtime.config.auth import read_auth, read_routes
from agent_runtime.config.database import resolve_database
from agent_runtime.config.dotenv import parse_dotenv
from agent_runtime.config.hosts import read_allowed_hosts
from agent_runtime.config.limits import (
    default_thread_ttl,
    read_checkpoint_cache,
    read_limits,
    read_pricing,
    read_serde,
)
from agent_runtime.config.model import (
    DEFAULT_MAX_BODY_BYTES,
    CheckpointCacheConfig,
    CorsConfig,
    GraphSpec,
    HttpConfig,
    LimitsConfig,
    RuntimeConfig,
)
from agent_runtime.config.reader import (
    ConfigReader,
    ValueTable,
    describe_value,
    read_choice,
    read_flag,
    read_non_negative,
    read_positive,
    read_regex,
    read_string,
    read_strings,
)
from agent_runtime.config.redis import read_redis, resolve_redis
from agent_runtime.config.store import read_store
from agent_runtime.errors import ConfigError

API_KEY_ENV = "AGENT_RUNTIME_API_KEY"
"""A shared key every request must carry in `x-api-key` when there is no auth file."""
METRICS_ENV = "AGENT_RUNTIME_METRICS"
"""`true` or `false`: serve `/metrics` or not; beats `agent_runtime.metrics` in langgraph.json
(and `--metrics` / `--no-metrics` beat it)."""


def parse_graph_spec(spec: str) -> GraphSpec | None:
    """Split `./file.py:attr` or `package.module:attr`; None when the spec is neither."""
    location, colon, attr = spec.rpartition(":")
    if not colon or not location or not attr.isidentifier():
        return None
    if location.endswith(".py") or location.startswith(".") or "/" in location or "\\" in location:
        return GraphSpec(location=location, attr=attr, is_file=True)
    if all(part.isidentifier() for part in location.split(".")):
        return GraphSpec(location=location, attr=attr, is_file=False)
    return None


def is_path_dependency(dependency: str) -> bool:
    """Whether a `dependencies` entry is a local folder (`.`, `./src`) rather than a package."""
    return dependency.startswith((".", "~")) or os.path.isabs(dependency)


def load_config(
    path: str | Path,
    *,
    environ: Mapping[str, str] | None = None,
    database: str | Path | None = None,
    redis: str | None = None,
) -> RuntimeConfig:
    """Read and validate a langgraph.json file.

    Args:
        environ: where `AGENT_RUNTIME_DATABASE` and `REDIS_URI` are looked up; `os.environ`
            when None.
        database: the `--database` flag; beats the environment and the file.
        redis: the `--redis` flag; beats `REDIS_URI` and the file.

    Raises:
        ConfigError: the file is missing or not JSON, or a key holds an invalid value.
    """
    file = Path(path).expanduser().resolve()
    try:
        data = json.loads(file.read_text(encoding="utf-8-sig"))
    except FileNotFoundError:
        raise ConfigError(f"{file}: file not found") from None
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"{file}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{file}: cannot be read: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file.name}: expected a JSON object at the top level, got {describe_value(data)}"
        )
    return _build(ConfigReader(file.name), data, file, file.parent, environ, database, redis)


def config_from_dict(
    data: Mapping[str, Any],
    *,
    base_dir: Path,
    environ: Mapping[str, str] | None = None,
    database: str | Path | None = None,
    redis: str | None = None,
) -> RuntimeConfig:
    """Validate a langgraph.json already in memory, as if it sat in `base_dir`.

    Raises:
        ConfigError: a key holds an invalid value.
    """
    return _build(
        ConfigReader("langgraph.json"), data, None, base_dir.resolve(), environ, database, redis
    )


def apply_env(config: RuntimeConfig, environ: MutableMapping[str, str]) -> None:
    """Copy the config's `env` into `environ`, keeping every variable that is already set.

    The explicit environment wins, as with python-dotenv: `API_KEY=x agent-runtime dev` overrides
    the `.env` file, never the other way round.
    """
    for key, value in config.env.items():
        environ.setdefault(key, value)


_RESOURCES = ("assistants", "threads", "runs", "store")
_SECTIONS = (
    "agent_runtime", "auth", "checkpointer", "dependencies", "env", "graphs", "http", "store",
)  # fmt: skip
# Accepted silently: they shape the image langgraph-cli builds, not how graphs run.
_BUILD_KEYS = (
    "$schema",
    "_INTERNAL_docker_tag",
    "api_version",
    "base_image",
    "dockerfile_lines",
    "image_distro",
    "keep_pkg_tools",
    "node_version",
    "pip_config_file",
    "pip_installer",
    "python_version",
    "ui_config",
)
# Accepted with a warning: LangGraph's server acts on them, agent-runtime does not.
_IGNORED = {
    "encryption": "data is stored unencrypted",
    "ui": "UI components are not served",
    "webhooks": "its URL policy and headers are not applied",
}
_HTTP_IGNORED = {
    "mount_prefix": "routes are served from /",
    "configurable_headers": "request headers are not copied into runs",
    "logging_headers": "it is ignored",
}
_HTTP_ROUTES = (
    "app",
    "enable_custom_route_auth",
    "middleware_order",
    *(f"disable_{name}" for name in (*_RESOURCES, "meta")),
)
# agent-runtime serves none of these, which is what setting them asks for: nothing to warn about.
_HTTP_MOOT = ("disable_a2a", "disable_mcp", "disable_webhooks")


_CORS_KEYS: ValueTable = {
    "allow_origins": read_strings,
    "allow_methods": read_strings,
    "allow_headers": read_strings,
    "allow_credentials": read_flag,
    "allow_origin_regex": read_regex,
    "expose_headers": read_strings,
    "max_age": read_non_negative,
}
# Our own section, one line per key: pricing and limits will each add theirs here.
_OWN_KEYS: ValueTable = {
    "database": read_string,
    "postgres_pool_size": read_positive,
    "postgres_prepared_statements": read_flag,
    "max_body_bytes": read_positive,
    "webhooks_allow_private": read_flag,
    "sqlite_synchronous": read_choice("full", "normal"),
    "limits": read_limits,
    "pricing": read_pricing,
    "checkpoint_cache": read_checkpoint_cache,
    "redis": read_redis,
    "metrics": read_flag,
    "log_format": read_choice("text", "json"),
    "allowed_hosts": read_allowed_hosts,
    "auth": lambda reader, key, value: value,  # read with the auth section
}


def _build(
    reader: ConfigReader,
    data: Mapping[str, Any],
    path: Path | None,
    base_dir: Path,
    environ: Mapping[str, str] | None,
    database: str | Path | None,
    redis: str | None = None,
) -> RuntimeConfig:
    reader.check_keys(data, "", (*_SECTIONS, *_BUILD_KEYS, *_IGNORED))
    for key, consequence in _IGNORED.items():
        if data.get(key):
            reader.warn(f"{key} is not supported by agent-runtime; {consequence}")
    graphs, descriptions = _read_graphs(reader, data.get("graphs"), base_dir)
    env = data.get("env")
    # A missing `.env` is a warning (in _read_env): LangChain's templates ship `.env.example`.
    env_file = (base_dir / Path(env).expanduser()).resolve() if isinstance(env, str) else None
    dependencies = read_strings(reader, "dependencies", data.get("dependencies") or [])
    for index, dependency in enumerate(dependencies):
        if is_path_dependency(dependency):
            reader.existing(f"dependencies[{index}]", dependency, base_dir)
    store = read_store(reader, reader.section(data, "store"), base_dir)
    checkpointer = reader.section(data, "checkpointer")
    reader.check_keys(checkpointer, "checkpointer.", ("path", "ttl", "serde"))
    if checkpointer.get("path"):
        reader.warn("checkpointer.path is not supported by agent-runtime; its own one is used")
    http = reader.section(data, "http")
    reader.check_keys(
        http, "http.", ("cors", "disable_ui", *_HTTP_IGNORED, *_HTTP_ROUTES, *_HTTP_MOOT)
    )
    for key, consequence in _HTTP_IGNORED.items():
        if http.get(key) not in (None, False):
            reader.warn(f"http.{key} is not supported by agent-runtime; {consequence}")
    cors = None
    if http.get("cors") is not None:
        cors_section = reader.section(http, "cors", "http.")
        cors = CorsConfig(**reader.values(cors_section, "http.cors.", _CORS_KEYS))
        if cors.allow_credentials and "*" in cors.allow_origins:
            # Browsers refuse credentials with a wildcard; echoing every origin instead would
            # let any website act with the user's cookies.
            raise reader.error(
                "http.cors.allow_credentials",
                'cannot be true while http.cors.allow_origins contains "*"; list the origins',
            )
    environ = os.environ if environ is None else environ
    own_section = reader.section(data, "agent_runtime")
    own = reader.values(own_section, "agent_runtime.", _OWN_KEYS)
    auth = read_auth(
        reader,
        reader.section(data, "auth"),
        reader.section(own_section, "auth", "agent_runtime."),
        base_dir,
    )
    routes = read_routes(reader, http, base_dir)
    env_values = _read_env(reader, env, env_file)
    return RuntimeConfig(
        path=path,
        base_dir=base_dir,
        graphs=graphs,
        graph_descriptions=descriptions,
        dependencies=dependencies,
        env=env_values,
        env_file=env_file,
        store=store,
        checkpointer=dict(checkpointer),
        http=HttpConfig(
            cors=cors,
            max_body_bytes=own.get("max_body_bytes", DEFAULT_MAX_BODY_BYTES),
            routes=routes,
            disable_ui=read_flag(reader, "http.disable_ui", http.get("disable_ui", False)),
            allowed_hosts=own.get("allowed_hosts"),
        ),
        auth=auth,
        api_key=environ.get(API_KEY_ENV) or env_values.get(API_KEY_ENV) or None,
        database=resolve_database(
            database,
            environ,
            own.get("database"),
            base_dir,
            own.get("postgres_pool_size"),
            own.get("postgres_prepared_statements"),
        ),
        redis=resolve_redis(redis, environ, own.get("redis")),
        webhooks_allow_private=own.get("webhooks_allow_private", False),
        sqlite_synchronous=own.get("sqlite_synchronous", "full"),
        limits=own.get("limits", LimitsConfig()),
        pricing=own.get("pricing", {}),
        checkpoint_cache=own.get("checkpoint_cache", CheckpointCacheConfig()),
        metrics=_metrics_switch(environ, own.get("metrics")),
        log_format=own.get("log_format"),
        default_thread_ttl=default_thread_ttl(reader, checkpointer),
        serde=read_serde(reader, checkpointer),
        warnings=tuple(reader.warnings),
    )


def _metrics_switch(environ: Mapping[str, str], configured: bool | None) -> bool | None:
    given = environ.get(METRICS_ENV, "").strip().lower()
    if not given:
        return configured
    if given in ("true", "1", "yes", "on"):
        return True
    if given in ("false", "0", "no", "off"):
        return False
    raise ConfigError(f'{METRICS_ENV}: expected true or false, got "{environ[METRICS_ENV]}"')


def _read_graphs(
    reader: ConfigReader, value: Any, base_dir: Path
) -> tuple[dict[str, str], dict[str, str]]:
    if value is None:
        raise reader.error("graphs", 'required; map each graph id to "./file.py:attr"')
    if not isinstance(value, Mapping) or not value:
        raise reader.bad("graphs", value, "a non-empty object")
    graphs: dict[str, str] = {}
    descriptions: dict[str, str] = {}
    for graph_id, entry in value.items():
        key = f"graphs.{graph_id}"
        if not graph_id:
            raise reader.error("graphs", "a graph id is empty")
        spec = entry
        if isinstance(entry, Mapping):
            reader.check_keys(entry, f"{key}.", ("path", "description"))
            if "path" not in entry:
                raise reader.error(f"{key}.path", "required in the object form")
            spec = entry["path"]
            if entry.get("description") is not None:
                descriptions[graph_id] = read_string(
                    reader, f"{key}.description", entry["description"]
                )
        parsed = parse_graph_spec(spec) if isinstance(spec, str) else None
        if parsed is None:
            raise reader.bad(key, spec, '"./file.py:attr" or "module:attr"')
        if parsed.is_file and not parsed.location.endswith(".py"):
            problem = f"{parsed.location} is not a Python file; agent-runtime serves Python graphs"
            raise reader.error(key, problem)
        if parsed.is_file:
            reader.existing(key, parsed.location, base_dir)
        graphs[graph_id] = spec
    return graphs, descriptions


def _read_env(reader: ConfigReader, value: Any, file: Path | None) -> dict[str, str]:
    if file is not None:
        if not file.exists():
            example = file.with_name(f"{file.name}.example")
            way_out = (
                f"copy {example.name} to {file.name} to set its variables"
                if example.exists()
                else "no variables are loaded from it"
            )
            reader.warn(f"env: {value} does not exist (resolved to {file}); {way_out}")
            return {}
        try:
            env, problems = parse_dotenv(file.read_text(encoding="utf-8-sig"))
        except (OSError, UnicodeDecodeError) as exc:
            raise reader.error("env", f"{file} cannot be read: {exc}") from None
        for line, problem in problems:
            reader.warn(f"env: {value} line {line}: {problem}")
        return env
    if value is not None and not isinstance(value, Mapping):
        raise reader.bad("env", value, "a path to a .env file or an object of strings")
    for key, item in (value or {}).items():
        if not isinstance(item, str):
            raise reader.bad(f"env.{key}", item, "a string")
    return dict(value or {})
