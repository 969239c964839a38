"""Whether this process exports OpenTelemetry traces, decided from OpenTelemetry's own
variables: on when the `otel` extra is installed and `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
`OTEL_EXPORTER_OTLP_ENDPOINT` is set (unless `OTEL_SDK_DISABLED=true` or
`OTEL_TRACES_EXPORTER=none`). Imports OpenTelemetry only then: without the extra, nothing of it
is loaded. The spans themselves are `otel.py`'s."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from agent_runtime.observability.otel import Tracing

logger = logging.getLogger("agent_runtime")

ENDPOINT_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT")
PROTOCOL_ENVS = ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", "OTEL_EXPORTER_OTLP_PROTOCOL")
EXTRA_HINT = "pip install 'agent-runtime[otel]'"


def tracing_wanted(environ: Mapping[str, str]) -> bool:
    """Whether the environment asks for traces to be exported."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    if environ.get("OTEL_TRACES_EXPORTER", "").strip().lower() == "none":
        return False
    return any(environ.get(name) for name in ENDPOINT_ENVS)


def load_tracing(environ: Mapping[str, str]) -> Tracing | None:
    """Traces exported over OTLP as the environment configures them (endpoint, protocol,
    headers, `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, sampling), or None when the
    environment does not ask for them or the extra is missing (said once, as a warning)."""
    if not tracing_wanted(environ):
        return None
    protocol = next((environ[name] for name in PROTOCOL_ENVS if environ.get(name)), "")
    grpc = protocol.strip().lower() == "grpc"
    try:
        from agent_runtime.observability.otel import Tracing, otlp_provider

        return Tracing(otlp_provider(environ, grpc=grpc))
    except ImportError as exc:
        package = "opentelemetry-exporter-otlp-proto-grpc" if grpc else EXTRA_HINT
        logger.warning(
            "An OTLP endpoint is set (%s) but %s cannot be imported, so no traces are "
            "exported; install it (%s)",
            next(name for name in ENDPOINT_ENVS if environ.get(name)),
            exc.name or "OpenTelemetry",
            f"pip install {package}" if grpc else package,
        )
        return None
