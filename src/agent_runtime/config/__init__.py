"""langgraph.json and the environment -> a frozen `RuntimeConfig`."""

from agent_runtime.config.database import (
    DATABASE_ENV,
    DATABASE_URI_ENV,
    POOL_SIZE_ENV,
    is_postgres_uri,
    redact_uri,
)
from agent_runtime.config.load import (
    apply_env,
    config_from_dict,
    is_path_dependency,
    load_config,
    parse_graph_spec,
)
from agent_runtime.config.model import (
    DEFAULT_MAX_BODY_BYTES,
    DEV_CORS,
    STUDIO_ORIGIN,
    CheckpointCacheConfig,
    CorsConfig,
    DatabaseConfig,
    GraphSpec,
    HttpConfig,
    LimitsConfig,
    ModelPrice,
    RuntimeConfig,
    SerdeConfig,
    SqliteSynchronous,
)

__all__ = [
    "DATABASE_ENV",
    "DATABASE_URI_ENV",
    "DEFAULT_MAX_BODY_BYTES",
    "DEV_CORS",
    "POOL_SIZE_ENV",
    "STUDIO_ORIGIN",
    "CheckpointCacheConfig",
    "CorsConfig",
    "DatabaseConfig",
    "GraphSpec",
    "HttpConfig",
    "LimitsConfig",
    "ModelPrice",
    "RuntimeConfig",
    "SerdeConfig",
    "SqliteSynchronous",
    "apply_env",
    "config_from_dict",
    "is_path_dependency",
    "is_postgres_uri",
    "load_config",
    "parse_graph_spec",
    "redact_uri",
]
