"""The `auth` section of langgraph.json, our `agent_runtime.auth`, and the `http` keys that
shape which routes exist and how requests reach them (`app`, `disable_*`, `middleware_order`,
`enable_custom_route_auth`). Reading and checking only: the server imports and applies them."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_runtime.config.model import AuthCacheConfig, AuthConfig, RouteConfig
from agent_runtime.config.reader import (
    ConfigReader,
    read_choice,
    read_flag,
    read_positive,
    read_positive_number,
    read_strings,
)

_AUTH_KEYS = ("path", "disable_studio_auth", "openapi", "cache")
_DISABLE_KEYS = ("assistants", "threads", "runs", "store", "meta")


def read_auth(
    reader: ConfigReader, section: Mapping[str, Any], own: Mapping[str, Any], base_dir: Path
) -> AuthConfig | None:
    """The `auth` section (None when it names no file) with `agent_runtime.auth.default`.

    Raises:
        ConfigError: a key holds an invalid value or the file named does not exist.
    """
    reader.check_keys(section, "auth.", _AUTH_KEYS)
    default = read_choice("allow", "deny")(
        reader, "agent_runtime.auth.default", own.get("default", "allow")
    )
    reader.check_keys(own, "agent_runtime.auth.", ("default",))
    cache = _read_cache(reader, section.get("cache"))
    openapi = section.get("openapi")
    if openapi is not None and not isinstance(openapi, Mapping):
        raise reader.bad("auth.openapi", openapi, "an object (securitySchemes and security)")
    if openapi is not None:
        reader.check_keys(openapi, "auth.openapi.", ("securitySchemes", "security"))
    disable_studio_auth = read_flag(
        reader, "auth.disable_studio_auth", section.get("disable_studio_auth", False)
    )
    path = section.get("path")
    if path is None:
        if section and default == "allow":
            reader.warn("auth has no path; requests are not authenticated")
        if default == "deny":
            raise reader.error(
                "agent_runtime.auth.default",
                '"deny" needs an auth file; set auth.path to "./auth.py:auth"',
            )
        return None
    _check_spec(reader, "auth.path", path, base_dir)
    return AuthConfig(
        path=path,
        disable_studio_auth=disable_studio_auth,
        openapi=dict(openapi or {}),
        default=default,  # type: ignore[arg-type]
        cache=cache,
    )


def _read_cache(reader: ConfigReader, value: Any) -> AuthCacheConfig | None:
    if value is None:
        return None
    if not isinstance(value, Mapping):
        raise reader.bad("auth.cache", value, "an object (cache_keys, ttl_seconds, max_size)")
    reader.check_keys(value, "auth.cache.", ("cache_keys", "ttl_seconds", "max_size"))
    default = AuthCacheConfig()
    keys = default.cache_keys
    if "cache_keys" in value:
        names = read_strings(reader, "auth.cache.cache_keys", value["cache_keys"])
        keys = tuple(name.lower() for name in names)
        if not keys:
            raise reader.error(
                "auth.cache.cache_keys", 'name at least one header, e.g. ["authorization"]'
            )
    ttl = default.ttl_seconds
    if "ttl_seconds" in value:
        ttl = read_positive_number(reader, "auth.cache.ttl_seconds", value["ttl_seconds"])
    size = default.max_size
    if "max_size" in value:
        size = read_positive(reader, "auth.cache.max_size", value["max_size"])
    return AuthCacheConfig(cache_keys=keys, ttl_seconds=ttl, max_size=size)


def read_routes(reader: ConfigReader, http: Mapping[str, Any], base_dir: Path) -> RouteConfig:
    """`http.app`, `http.disable_*`, `http.middleware_order`, `http.enable_custom_route_auth`.

    Raises:
        ConfigError: a key holds an invalid value or `http.app` names no file.
    """
    app = http.get("app")
    if app is not None:
        _check_spec(reader, "http.app", app, base_dir)
    order = http.get("middleware_order")
    if order is not None:
        order = read_choice("middleware_first", "auth_first")(
            reader, "http.middleware_order", order
        )
    disabled = frozenset(
        name
        for name in _DISABLE_KEYS
        if read_flag(reader, f"http.disable_{name}", http.get(f"disable_{name}", False))
    )
    return RouteConfig(
        app=app,
        custom_route_auth=read_flag(
            reader, "http.enable_custom_route_auth", http.get("enable_custom_route_auth", False)
        ),
        middleware_order="auth_first" if order == "auth_first" else "middleware_first",
        disabled=disabled,
    )


def _check_spec(reader: ConfigReader, key: str, spec: Any, base_dir: Path) -> None:
    # Imported here: load.py imports this module.
    from agent_runtime.config.load import parse_graph_spec

    parsed = parse_graph_spec(spec) if isinstance(spec, str) else None
    if parsed is None:
        raise reader.bad(key, spec, '"./file.py:name" or "module:name"')
    if parsed.is_file:
        reader.existing(key, parsed.location, base_dir)
