"""Where Redis is (`--redis`, `REDIS_URI`, `agent_runtime.redis`) and the prefix of every key
and channel (`REDIS_KEY_PREFIX`, `agent_runtime.redis.key_prefix`). URIs may hold a password:
every message shows them redacted."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import urlsplit

from agent_runtime.config.database import redact_uri
from agent_runtime.config.model import DEFAULT_REDIS_KEY_PREFIX, RedisConfig
from agent_runtime.config.reader import ConfigReader, read_string
from agent_runtime.errors import ConfigError

REDIS_ENV = "REDIS_URI"
"""Names the Redis (LangGraph Platform's variable); the `--redis` flag beats it, and it beats
`agent_runtime.redis`."""
REDIS_PREFIX_ENV = "REDIS_KEY_PREFIX"
"""The key prefix, for deployments that share one Redis; beats the file's `key_prefix`."""
REDIS_SCHEMES = ("redis", "rediss", "unix")


def read_redis(reader: ConfigReader, key: str, value: Any) -> RedisConfig:
    """`agent_runtime.redis`: a URI, or `{"uri": ..., "key_prefix": ...}`."""
    if isinstance(value, str):
        return RedisConfig(uri=_checked_uri(f"{reader.label}: {key}", value))
    if not isinstance(value, Mapping):
        raise reader.bad(key, value, 'a "redis://host:port/db" URI or an object')
    reader.check_keys(value, f"{key}.", ("uri", "key_prefix"))
    if "uri" not in value:
        raise reader.error(f"{key}.uri", 'required in the object form ("redis://host:port/db")')
    uri = read_string(reader, f"{key}.uri", value["uri"])
    prefix = value.get("key_prefix")
    return RedisConfig(
        uri=_checked_uri(f"{reader.label}: {key}.uri", uri),
        key_prefix=DEFAULT_REDIS_KEY_PREFIX
        if prefix is None
        else read_string(reader, f"{key}.key_prefix", prefix),
    )


def resolve_redis(
    flag: str | None, environ: Mapping[str, str], from_file: RedisConfig | None
) -> RedisConfig | None:
    """The flag, else `REDIS_URI`, else the file; None: no Redis (one process, or processes
    that learn of each other's runs from the database only).

    Raises:
        ConfigError: the URI is not a Redis one.
    """
    prefix = environ.get(REDIS_PREFIX_ENV) or (
        from_file.key_prefix if from_file is not None else DEFAULT_REDIS_KEY_PREFIX
    )
    if flag:
        return RedisConfig(uri=_checked_uri("--redis", flag), key_prefix=prefix)
    if environ.get(REDIS_ENV):
        return RedisConfig(uri=_checked_uri(REDIS_ENV, environ[REDIS_ENV]), key_prefix=prefix)
    if from_file is not None:
        return RedisConfig(uri=from_file.uri, key_prefix=prefix)
    return None


def _checked_uri(source: str, uri: str) -> str:
    try:
        scheme = urlsplit(uri).scheme
    except ValueError:
        scheme = ""
    if scheme not in REDIS_SCHEMES:
        raise ConfigError(
            f'{source}: expected a Redis URI ("redis://host:6379/0", "rediss://..." or '
            f'"unix:///path"), got "{redact_uri(uri)}"'
        )
    return uri
