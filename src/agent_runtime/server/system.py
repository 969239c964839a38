"""Service routes: health, server info, the OpenAPI document and a docs page built from it."""

from __future__ import annotations

import asyncio
import html
from importlib.metadata import PackageNotFoundError, version

from starlette.requests import Request
from starlette.responses import HTMLResponse

from agent_runtime import __version__
from agent_runtime.schema import Json
from agent_runtime.server.routing import Router

router = Router("system")


@router.get("/ok")
async def ok(request: Request, _: None) -> Json:
    """Health check: answers once storage and graphs are up."""
    return {"ok": True}


@router.get("/info")
async def info(request: Request, _: None) -> Json:
    """Server version, LangGraph version and the features this server has."""
    return {
        "version": __version__,
        "server": "agent-runtime",
        "langgraph_py_version": _version_of("langgraph"),
        "flags": {"assistants": True, "crons": True, "langsmith": False},
        "graphs": list(request.app.state.services.registry.graph_ids),
    }


@router.get("/openapi.json")
async def get_openapi(request: Request, _: None) -> Json:
    """This API described as OpenAPI 3.1."""
    return await _document(request)


@router.get("/docs", media_type="text/html")
async def docs(request: Request, _: None) -> HTMLResponse:
    """A page listing every route, from the OpenAPI document (no external assets)."""
    spec = await _document(request)
    rows = []
    for path, methods in spec["paths"].items():
        for method, op in methods.items():
            rows.append(
                f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(path)}</code>"
                f"</td><td>{html.escape(op.get('summary', ''))}</td></tr>"
            )
    page = (
        "<!doctype html><meta charset=utf-8><title>agent-runtime API</title>"
        "<style>body{font-family:system-ui;margin:2rem}td{padding:.2rem .8rem}</style>"
        f"<h1>agent-runtime {__version__}</h1><p>The LangGraph Server API. Machine-readable: "
        "<a href=/openapi.json>/openapi.json</a>.</p><table>" + "".join(rows) + "</table>"
    )
    return HTMLResponse(page)


def _version_of(package: str) -> str | None:
    try:
        return version(package)
    except PackageNotFoundError:
        return None


async def _document(request: Request) -> Json:
    # Built on first use (`create_app`), on a worker thread: pydantic takes some 0.45 s over
    # it, which on the event loop would stall every stream of the process.
    spec: Json = await asyncio.to_thread(request.app.state.openapi)
    return spec
