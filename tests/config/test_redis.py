"""Where Redis comes from (`--redis`, `REDIS_URI`, `agent_runtime.redis`), its key prefix, and
messages that never show a password."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from agent_runtime.config import RedisConfig, config_from_dict, redact_uri
from agent_runtime.errors import ConfigError

GRAPHS = {"graphs": {"agent": "mod:graph"}}


def _config(
    tmp_path: Path, own: dict[str, Any] | None = None, *, flag: str | None = None, **env: str
) -> RedisConfig | None:
    data = {**GRAPHS, **({"agent_runtime": own} if own is not None else {})}
    return config_from_dict(data, base_dir=tmp_path, environ=env, redis=flag).redis


def test_no_redis_by_default(tmp_path: Path) -> None:
    assert _config(tmp_path) is None


def test_flag_beats_environment_beats_file(tmp_path: Path) -> None:
    own = {"redis": "redis://file:6379/0"}
    assert _config(tmp_path, own) == RedisConfig(uri="redis://file:6379/0")
    env = {"REDIS_URI": "redis://env:6379/1"}
    assert _config(tmp_path, own, **env) == RedisConfig(uri="redis://env:6379/1")
    flagged = _config(tmp_path, own, flag="rediss://flag:6380/2", **env)
    assert flagged == RedisConfig(uri="rediss://flag:6380/2")


def test_key_prefix_from_file_and_environment(tmp_path: Path) -> None:
    own = {"redis": {"uri": "redis://h:6379/0", "key_prefix": "app-a:"}}
    assert _config(tmp_path, own) == RedisConfig(uri="redis://h:6379/0", key_prefix="app-a:")
    found = _config(tmp_path, own, REDIS_KEY_PREFIX="app-b:")
    assert found == RedisConfig(uri="redis://h:6379/0", key_prefix="app-b:")
    assert _config(tmp_path, flag="redis://h") == RedisConfig(uri="redis://h")


def test_a_uri_that_is_not_redis_is_refused_with_its_password_hidden(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        _config(tmp_path, flag="postgres://user:s3cret@db:5432/app")
    assert caught.value.detail == (
        '--redis: expected a Redis URI ("redis://host:6379/0", "rediss://..." or '
        '"unix:///path"), got "postgres://user:***@db:5432/app"'
    )
    with pytest.raises(ConfigError, match=r"^REDIS_URI: expected a Redis URI"):
        _config(tmp_path, REDIS_URI="localhost:6379")
    with pytest.raises(ConfigError, match=r"^langgraph.json: agent_runtime.redis.uri: expected"):
        _config(tmp_path, {"redis": {"uri": "http://x"}})
    with pytest.raises(ConfigError, match=r"agent_runtime\.redis\.uri: required in the object"):
        _config(tmp_path, {"redis": {"key_prefix": "x:"}})


def test_redact_uri_hides_only_the_password() -> None:
    assert redact_uri("redis://:pw@h:6379/0") == "redis://:***@h:6379/0"
    assert redact_uri("redis://user:pw@h/0") == "redis://user:***@h/0"
    assert redact_uri("redis://h:6379/0") == "redis://h:6379/0"
