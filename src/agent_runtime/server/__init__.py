"""HTTP layer: Starlette routes speaking the LangGraph Server API."""

from agent_runtime.server.app import create_app

__all__ = ["create_app"]
