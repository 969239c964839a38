"""Imports what langgraph.json names for the HTTP layer: the `langgraph_sdk.Auth` object of
`auth.path` and the Starlette app of `http.app`, as graphs are imported (relative to the
config's folder, dependencies on `sys.path`), with one exact message per failure."""

from __future__ import annotations

import difflib
import inspect
from typing import Any

from langgraph_sdk import Auth
from starlette.applications import Starlette

from agent_runtime.config import RuntimeConfig, parse_graph_spec
from agent_runtime.errors import ConfigError

AUTHENTICATE_PARAMETERS = frozenset(
    {
        "request",
        "body",
        "authorization",
        "headers",
        "path",
        "method",
        "query_params",
        "path_params",
        "scopes",
        "scope",
    }
)
"""What an `@auth.authenticate` handler may ask for by name."""


class AuthLoadError(ConfigError):
    """The auth file or custom app named in langgraph.json cannot be used."""

    default_code = "auth_load_error"


def load_auth(config: RuntimeConfig) -> Auth | None:
    """The `Auth` object `auth.path` names, checked; None when there is no auth file.

    Raises:
        AuthLoadError: the spec is malformed, the file fails to import, lacks the name, names
            something that is not a `langgraph_sdk.Auth`, or its authenticate handler is not
            async or asks for a parameter no request has.
    """
    if config.auth is None:
        return None
    spec = config.auth.path
    target = _import(config, "auth.path", spec)
    if not isinstance(target, Auth):
        raise AuthLoadError(
            f"auth.path: {spec} is {_a(target)}, not a langgraph_sdk.Auth object; "
            "create one with `auth = Auth()` and name it here"
        )
    handler = target._authenticate_handler
    if handler is not None:
        _check_authenticate(spec, handler)
    return target


def load_custom_app(config: RuntimeConfig) -> Starlette | None:
    """The Starlette (or FastAPI) app `http.app` names; None when there is none.

    Raises:
        AuthLoadError: the spec fails to import or names something that is not a Starlette app.
    """
    spec = config.http.routes.app
    if spec is None:
        return None
    target = _import(config, "http.app", spec)
    if not isinstance(target, Starlette):
        raise AuthLoadError(
            f"http.app: {spec} is {_a(target)}, not a Starlette or FastAPI application"
        )
    return target


def _check_authenticate(spec: str, handler: Any) -> None:
    name = getattr(handler, "__name__", repr(handler))
    if not inspect.iscoroutinefunction(handler):
        raise AuthLoadError(
            f"auth.path: {spec}: the authenticate handler {name} must be an async function "
            "(async def)"
        )
    for parameter in inspect.signature(handler).parameters.values():
        if parameter.kind in (parameter.VAR_KEYWORD, parameter.VAR_POSITIONAL):
            continue
        if parameter.name not in AUTHENTICATE_PARAMETERS and parameter.default is parameter.empty:
            known = ", ".join(sorted(AUTHENTICATE_PARAMETERS))
            raise AuthLoadError(
                f'auth.path: {spec}: the authenticate handler {name} asks for "{parameter.name}",'
                f" which no request provides; it may take: {known}"
            )


def _import(config: RuntimeConfig, key: str, spec: str) -> Any:
    # Imported here: the registry pulls in LangGraph, which the config layer must not need.
    from agent_runtime.registry import add_dependency_paths, import_spec_module

    parsed = parse_graph_spec(spec)
    if parsed is None:
        raise AuthLoadError(f'{key}: {spec!r} is not "./file.py:name" or "module:name"')
    add_dependency_paths(config)
    try:
        module = import_spec_module(parsed, config.base_dir)
    except Exception as exc:
        raise AuthLoadError(f"{key}: {spec} failed to import: {type(exc).__name__}: {exc}") from exc
    if not hasattr(module, parsed.attr):
        public = [name for name in vars(module) if not name.startswith("_")]
        close = difflib.get_close_matches(parsed.attr, public, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise AuthLoadError(f'{key}: {parsed.location} has no attribute "{parsed.attr}"{hint}')
    return getattr(module, parsed.attr)


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"
