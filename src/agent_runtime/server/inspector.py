"""The inspector page at `/ui`: serves the files of `server/ui/` as a static shell under a strict
Content-Security-Policy. It holds no API logic: the page reads and writes through the public API,
whose authentication applies to every call it makes."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files

from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Route

UI_PATH = "/ui"
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'none'"
)
"""No inline script or style, nothing from another origin: thread data is hostile input, and a
page that only ever runs its own files cannot be made to run anything else."""
_MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Asset:
    """One file of the page, read once when the app is built."""

    body: bytes
    media_type: str
    etag: str


def load_assets() -> dict[str, Asset]:
    """Every file of `server/ui/` by name, as shipped inside the package."""
    folder = files("agent_runtime.server").joinpath("ui")
    assets: dict[str, Asset] = {}
    for entry in folder.iterdir():
        suffix = "." + entry.name.rsplit(".", 1)[-1]
        if entry.is_file() and suffix in _MEDIA_TYPES:
            body = entry.read_bytes()
            digest = hashlib.sha256(body).hexdigest()[:16]
            assets[entry.name] = Asset(body=body, media_type=_MEDIA_TYPES[suffix], etag=digest)
    return assets


def ui_routes() -> list[BaseRoute]:
    """`/ui` (the page), `/ui/` (a redirect to it) and `/ui/<file>` (its scripts and styles)."""
    assets = load_assets()

    async def page(request: Request) -> Response:
        return _answer(request, assets["index.html"])

    async def slash(request: Request) -> Response:
        return RedirectResponse(UI_PATH, status_code=308)

    async def asset(request: Request) -> Response:
        found = assets.get(request.path_params["name"])
        if found is None:
            raise HTTPException(404)
        return _answer(request, found)

    return [
        Route(UI_PATH, page, methods=["GET", "HEAD"], name="ui"),
        Route(f"{UI_PATH}/", slash, methods=["GET", "HEAD"]),
        Route(f"{UI_PATH}/{{name}}", asset, methods=["GET", "HEAD"], name="ui_asset"),
    ]


def is_ui_path(path: str) -> bool:
    """Whether a request is for the page's own files (public, like `/docs`)."""
    return path == UI_PATH or path.startswith(f"{UI_PATH}/")


def _answer(request: Request, asset: Asset) -> Response:
    etag = f'"{asset.etag}"'
    headers = {
        "Content-Security-Policy": CONTENT_SECURITY_POLICY,
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
        # Revalidated on every load, so a new version is never hidden behind a cached one.
        "Cache-Control": "no-cache",
        "ETag": etag,
    }
    if request.headers.get("if-none-match") == etag:
        return Response(status_code=304, headers=headers)
    return Response(asset.body, media_type=asset.media_type, headers=headers)
