"""Webhooks: a finished run is POSTed to the URL its request named. URLs are checked when the
run is created, so a refused address is a 422 rather than a silent failure later."""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import ssl
from urllib.parse import urlsplit

import httpx

from agent_runtime.encoding import dumps
from agent_runtime.errors import InvalidRequestError
from agent_runtime.schema import Run

logger = logging.getLogger("agent_runtime.webhooks")
TIMEOUT_SECONDS = 10.0

_tls: ssl.SSLContext | None = None


async def tls_context() -> ssl.SSLContext:
    """The TLS settings every webhook's client shares (httpx's defaults: certifi's CAs, or
    `SSL_CERT_FILE` / `SSL_CERT_DIR`). Reading the CA bundle takes some 50 ms of CPU: done once
    a process, on a worker thread, not for every webhook on the event loop."""
    global _tls
    if _tls is None:
        _tls = await asyncio.to_thread(httpx.create_ssl_context)
    return _tls


async def check_webhook_url(url: str, *, allow_private: bool) -> None:
    """Refuse URLs that are not http(s), and (unless allowed) any whose host resolves to a
    loopback, private, link-local or reserved address.

    Raises:
        InvalidRequestError: the URL cannot or may not be called.
    """
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequestError(f'webhook: "{url}" is not an http or https URL')
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(parts.hostname, parts.port or 443)
    except OSError as exc:
        raise InvalidRequestError(f'webhook: cannot resolve "{parts.hostname}": {exc}') from exc
    for info in infos:
        address = ipaddress.ip_address(info[4][0])
        if (
            address.is_private
            or address.is_loopback
            or address.is_link_local
            or address.is_reserved
        ):
            raise InvalidRequestError(
                f'webhook: "{parts.hostname}" resolves to {address}, a private or loopback '
                'address; set "agent_runtime": {"webhooks_allow_private": true} in '
                "langgraph.json to allow it",
                code="webhook_refused",
            )


async def send_webhook(url: str, run: Run) -> None:
    """POST the run as JSON; failures are logged, never raised (the run has already ended)."""
    try:
        tls = await tls_context()
        async with httpx.AsyncClient(timeout=TIMEOUT_SECONDS, verify=tls) as client:
            response = await client.post(
                url, content=dumps(run), headers={"content-type": "application/json"}
            )
        if response.status_code >= 400:
            logger.warning(
                "Webhook %s answered %s for run %s", url, response.status_code, run["run_id"]
            )
    except httpx.HTTPError as exc:
        logger.warning("Webhook %s failed for run %s: %s", url, run["run_id"], exc)
