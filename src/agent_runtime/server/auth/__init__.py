"""Authentication and authorization, LangGraph's way: the auth file's `Auth` object, the
middleware that authenticates every request, and the guard that authorizes every operation."""

from agent_runtime.server.auth.authorize import (
    RESOURCE_ACTIONS,
    AuthError,
    Authorizer,
    Filter,
    keep_filter,
    matches_filter,
    request_filter,
)
from agent_runtime.server.auth.guard import OPERATION_ACTIONS, PUBLIC, Guard
from agent_runtime.server.auth.loader import AuthLoadError, load_auth, load_custom_app
from agent_runtime.server.auth.middleware import PUBLIC_PATHS, AuthMiddleware, AuthSettings

__all__ = [
    "OPERATION_ACTIONS",
    "PUBLIC",
    "PUBLIC_PATHS",
    "RESOURCE_ACTIONS",
    "AuthError",
    "AuthLoadError",
    "AuthMiddleware",
    "AuthSettings",
    "Authorizer",
    "Filter",
    "Guard",
    "keep_filter",
    "load_auth",
    "load_custom_app",
    "matches_filter",
    "request_filter",
]
