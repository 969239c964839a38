"""`GET /metrics`: the Prometheus exposition of this deployment's metrics. Not an API operation
(no OpenAPI entry, no authorization handler): authentication still applies, as to every route
that is not public."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agent_runtime.observability.metrics import CONTENT_TYPE, Metrics
from agent_runtime.observability.sampler import sample

METRICS_PATH = "/metrics"


def metrics_route(metrics: Metrics) -> Route:
    """The route that renders `metrics` (fresh readings of the queue and this process first)."""

    async def get_metrics(request: Request) -> Response:
        await sample(metrics, request.app.state.services, queue=True)
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return Route(METRICS_PATH, get_metrics, methods=["GET"], name="get_metrics")
