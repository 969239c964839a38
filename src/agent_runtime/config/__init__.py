"""langgraph.json and the environment -> a frozen `RuntimeConfig`."""

from agent_runtime.config.load import (
    DATABASE_ENV,
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
    ProcessRole,
    RuntimeConfig,
    SerdeConfig,
    SqliteSynchronous,
)

__all__ = [
    "DATABASE_ENV",
    "DEFAULT_MAX_BODY_BYTES",
    "DEV_CORS",
    "STUDIO_ORIGIN",
    "CheckpointCacheConfig",
    "CorsConfig",
    "DatabaseConfig",
    "GraphSpec",
    "HttpConfig",
    "LimitsConfig",
    "ModelPrice",
    "ProcessRole",
    "RuntimeConfig",
    "SerdeConfig",
    "SqliteSynchronous",
    "apply_env",
    "config_from_dict",
    "is_path_dependency",
    "load_config",
    "parse_graph_spec",
]
