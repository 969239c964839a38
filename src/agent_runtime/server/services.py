"""What every route reaches through `request.app.state.services`: the `Runtime` (config, storage,
graphs, event log, run manager, stream cap)."""

from __future__ import annotations

from starlette.requests import Request

from agent_runtime.runtime import Runtime

Services = Runtime
"""The name routes know the runtime by."""


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
