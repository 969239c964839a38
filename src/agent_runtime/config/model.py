"""The frozen objects a config is made of. Data only: reading and checking them is `load.py`'s
and the readers'. Nothing here imports the rest of agent-runtime but `schema`'s `Json` alias."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from agent_runtime.schema import Json

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024
SqliteSynchronous = Literal["full", "normal"]
DatabaseKind = Literal["sqlite", "postgres"]
DEFAULT_POOL_SIZE = 10
"""Postgres connections per process, by default: the run manager's claims and leases, the
requests served and the checkpointer of every running run share them."""
ProcessRole = Literal["all", "api", "worker"]
"""What one server process does: `all` serves the API and executes runs, `api` serves the API
and queues runs for others to execute, `worker` executes runs and answers only `/ok`."""
LogFormat = Literal["text", "json"]
"""How log lines are printed: uvicorn's text, or one JSON object per line."""
DEFAULT_CACHE_MB = 32
"""Memory for each of the two caches (decoded checkpoints, decoded messages), by default: about
30 snapshots of 600 short messages, and 15,000 messages with their JSON."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DatabaseConfig:
    """Which storage backend holds everything durable, and where."""

    kind: DatabaseKind = "sqlite"
    uri: str
    """For SQLite, the file's absolute path; its folder may not exist yet. For Postgres, the
    `postgresql://` URI as given (it may hold a password: show it with `redact_uri`)."""
    pool_size: int = DEFAULT_POOL_SIZE
    """Postgres only: the most connections this process opens."""
    prepared_statements: bool = True
    """Postgres only: whether a statement run often on a connection is prepared on the server
    (parsed and planned once). Off for a connection pooler that cannot keep them (PgBouncer in
    transaction mode before 1.21, or with `max_prepared_statements = 0`)."""


DEFAULT_REDIS_KEY_PREFIX = "agent-runtime:"


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisConfig:
    """The Redis that carries run events, wake-ups and cancel signals between processes."""

    uri: str
    """`redis://`, `rediss://` or `unix://`; may hold a password (show it redacted)."""
    key_prefix: str = DEFAULT_REDIS_KEY_PREFIX
    """Of every key and channel, so deployments can share one Redis (channels ignore the db
    number)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """Per-thread limits and retention (`agent_runtime.limits`)."""

    max_metadata_bytes: int = 16 * 1024
    """A thread's metadata, JSON-encoded; larger is a 413."""
    max_messages_per_thread: int = 10_000
    """A run that would leave more messages in the thread fails, saying so."""
    inactivity_ttl_days: float | None = None
    """Threads not updated for this long are swept."""
    max_age_days: float | None = None
    """Threads older than this are swept."""
    strategy: Literal["delete", "keep_latest"] = "delete"
    """What sweeping does: delete the thread, or keep only its latest checkpoint."""
    sweep_interval_seconds: float | None = None
    """How often the sweeper runs; default LangGraph's `checkpointer.ttl.sweep_interval_minutes`,
    else 60 s."""
    max_pending_runs_per_thread: int = 100
    """Runs queued (`enqueue`) behind a thread's running run; one more is a 429."""
    max_open_streams: int = 200
    """Server-sent event streams this process serves at once; one more is a 429."""
    stream_send_timeout_seconds: float = 30.0
    """A stream whose reader takes no data for this long is closed and its memory freed."""
    max_event_bytes_per_run: int = 16 * 1024 * 1024
    """The payloads a run keeps for replay (`Last-Event-ID`); past it the oldest are dropped."""
    n_jobs_per_worker: int = 10
    """Runs one server process executes at once (LangGraph's `N_JOBS_PER_WORKER`); the
    others wait `pending` for a free slot in this or another process."""
    run_lease_seconds: float = 30.0
    """How long a process's claim on a run holds unless renewed; past it, with the process
    silent, another process (or the next start) resumes the run."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """USD per million tokens for one model name, from `agent_runtime.pricing`."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckpointCacheConfig:
    """The `agent_runtime.checkpoint_cache` section."""

    max_mb: int = DEFAULT_CACHE_MB
    """Memory, estimated, for each of the decoded checkpoints and the decoded messages kept;
    0 turns the cache off."""
    verify: bool | None = None
    """Decode again on every hit and compare: catches a graph that mutates its state in place
    (at the cost of the cache's benefit). Meant for development and tests; None (not set) is
    on under `agent-runtime dev` and off otherwise."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SerdeConfig:
    """The `checkpointer.serde` section of langgraph.json, as agent-runtime honours it."""

    allowed_json_modules: frozenset[tuple[str, ...]] = field(default_factory=frozenset)
    """Each `[*module parts, name]` entry; allowed both in JSON constructors and in msgpack,
    where LangGraph stores the same types today."""

    def msgpack_types(self) -> set[tuple[str, ...]]:
        return {(".".join(key[:-1]), key[-1]) for key in self.allowed_json_modules}


@dataclass(frozen=True, slots=True, kw_only=True)
class CorsConfig:
    """Cross-origin rules; a key left out of `http.cors` takes the default here."""

    allow_origins: tuple[str, ...] = ()
    allow_methods: tuple[str, ...] = ("*",)
    allow_headers: tuple[str, ...] = ("*",)
    allow_credentials: bool = False
    allow_origin_regex: str | None = None
    # The JS SDK reads these to find and rejoin the run behind a stream.
    expose_headers: tuple[str, ...] = ("Content-Location", "Location")
    max_age: int = 600


STUDIO_ORIGIN = "https://smith.langchain.com"
"""Where LangGraph Studio runs; it calls the server from the developer's browser."""
DEV_CORS = CorsConfig(
    allow_origins=(STUDIO_ORIGIN,),
    allow_origin_regex=r"https?://(localhost|127\.0\.0\.1|\[::1\])(:[0-9]+)?",
)
"""What `agent-runtime dev` allows when `http.cors` is absent: pages on this machine (any port)
and LangGraph Studio. `serve` allows no other origin than its own."""


MiddlewareOrder = Literal["middleware_first", "auth_first"]
RouteGroup = Literal["assistants", "threads", "runs", "store", "meta"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RouteConfig:
    """Which routes exist beside and instead of ours (`http.app`, `http.disable_*`)."""

    app: str | None = None
    """`./app.py:app`: a Starlette (or FastAPI) app whose routes win over ours, and whose
    middleware wraps every route."""
    custom_route_auth: bool = False
    """`http.enable_custom_route_auth`: authenticate requests to the custom app's routes too."""
    middleware_order: MiddlewareOrder = "middleware_first"
    """Whether the custom app's middleware runs before authentication or after it."""
    disabled: frozenset[str] = frozenset()
    """The route groups removed (`http.disable_assistants` ... `disable_meta`)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    """The HTTP settings agent-runtime honours."""

    cors: CorsConfig | None = None
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    routes: RouteConfig = field(default_factory=RouteConfig)
    disable_ui: bool = False
    """`http.disable_ui` or `--no-ui`: no inspector page at `/ui`."""
    allowed_hosts: tuple[str, ...] | None = None
    """`agent_runtime.allowed_hosts`: the names (`Host` headers) the server answers to beyond
    this machine's own; `"*"` for any. None: unset, which the CLI settles by the address it
    listens on (`config.hosts.hosts_for_bind`); an app built in code then checks nothing."""


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthCacheConfig:
    """`auth.cache`: remember what the authenticate handler answered for the same credentials
    (the values of `cache_keys` headers) for `ttl_seconds`, at most `max_size` of them."""

    cache_keys: tuple[str, ...] = ("authorization", "x-api-key")
    """Header names (case-insensitive) whose values make the key; a request carrying none of
    them is authenticated afresh."""
    ttl_seconds: float = 60.0
    max_size: int = 1000


@dataclass(frozen=True, slots=True, kw_only=True)
class AuthConfig:
    """The `auth` section of langgraph.json, with `agent_runtime.auth`."""

    path: str
    """`./auth.py:auth` or `module:auth`: a `langgraph_sdk.Auth` object."""
    disable_studio_auth: bool = False
    openapi: Mapping[str, Any] = field(default_factory=dict)
    """`securitySchemes` and `security`, copied into `/openapi.json`."""
    default: Literal["allow", "deny"] = "allow"
    """What an action with no handler gets: allowed (LangGraph's rule) or a 403."""
    cache: AuthCacheConfig | None = None
    """`auth.cache`; None authenticates every request."""
    trust_studio: bool = False
    """Take `x-auth-scheme: langsmith` requests as LangGraph Studio's user without calling
    the authenticate handler; only `agent-runtime dev` sets it (a local server, as
    `langgraph dev`), and `disable_studio_auth` turns it off."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeConfig:
    """Everything a server needs from langgraph.json, resolved and validated."""

    path: Path | None = None
    """The langgraph.json read; None when built in code."""
    base_dir: Path
    """Its folder: relative graph files, dependencies, `.env` and database paths start here."""
    graphs: Mapping[str, str]
    """Graph id -> spec as written (`./file.py:attr` or `module:attr`), in file order."""
    graph_descriptions: Mapping[str, str] = field(default_factory=dict)
    """Graph id -> the `description` of the object form, for the graphs that have one."""
    dependencies: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    """The `env` section resolved: the `.env` file's values or the object as written."""
    env_file: Path | None = None
    """The `.env` file `env` named, absolute (it may not exist yet: `dev` watches for it);
    None when `env` is an object or absent."""
    store: Mapping[str, Any] = field(default_factory=dict)
    checkpointer: Mapping[str, Any] = field(default_factory=dict)
    http: HttpConfig = field(default_factory=HttpConfig)
    auth: AuthConfig | None = None
    """None: no auth file; requests are only checked against `api_key`, if set."""
    api_key: str | None = field(default=None, repr=False)
    """`AGENT_RUNTIME_API_KEY`: without an auth file, every request but the public ones must
    carry it in `x-api-key`."""
    database: DatabaseConfig
    """Where everything durable lives: the backend kind and its URI."""
    redis: RedisConfig | None = None
    """Redis for several processes (event fan-out and replay, wake-ups, cancels); None: none."""
    webhooks_allow_private: bool = False
    """Whether run webhooks may target private and loopback addresses (`agent_runtime` section)."""
    sqlite_synchronous: SqliteSynchronous = "full"
    """How SQLite commits (`agent_runtime.sqlite_synchronous`): "full" waits for the disk on
    every commit, so a power loss keeps every committed run and checkpoint; "normal" is faster
    and may lose the last commits (never corrupt the file) on a power loss or OS crash."""
    limits: LimitsConfig = field(default_factory=LimitsConfig)
    role: ProcessRole = "all"
    """What this process does (`agent-runtime serve --role`); not read from langgraph.json,
    since the processes of one deployment share the file and differ here."""
    pricing: Mapping[str, ModelPrice] = field(default_factory=dict)
    """Model name (as the chat model reports it) -> its price."""
    checkpoint_cache: CheckpointCacheConfig = field(default_factory=CheckpointCacheConfig)
    """How many decoded checkpoint blobs to keep, and whether to check them on reuse."""
    default_thread_ttl: Json | None = None
    """From LangGraph's `checkpointer.ttl.default_ttl` (minutes): the TTL of threads created
    without one, as `{"strategy": ..., "ttl": minutes}`."""
    serde: SerdeConfig = field(default_factory=SerdeConfig)
    """From LangGraph's `checkpointer.serde`: the types checkpoints may decode to beyond the
    safe ones and those the graphs declare."""
    metrics: bool | None = None
    """Serve Prometheus metrics at `/metrics` (`agent_runtime.metrics`, or
    `AGENT_RUNTIME_METRICS`, or `--metrics`); None (not set) is on under `agent-runtime serve`
    and off otherwise."""
    log_format: LogFormat | None = None
    """`agent_runtime.log_format`: what `--log-format` and `LOG_FORMAT` default to (text)."""
    warnings: tuple[str, ...] = ()
    """Sentences about keys that are ignored; the CLI prints them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class GraphSpec:
    """A graph spec taken apart: where the graph lives and the attribute that holds it."""

    location: str
    """A file path as written (relative to the config folder) or a dotted module name."""
    attr: str
    is_file: bool
