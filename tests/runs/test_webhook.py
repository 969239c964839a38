"""Webhooks' TLS settings: read once a process, off the event loop, and verifying."""

from __future__ import annotations

import ssl

from agent_runtime.runs.webhook import tls_context


async def test_webhooks_share_one_tls_context_that_verifies() -> None:
    first = await tls_context()
    assert await tls_context() is first
    assert first.verify_mode == ssl.CERT_REQUIRED
    assert first.check_hostname
    # httpx's CA bundle (certifi), not an empty store.
    assert first.cert_store_stats()["x509_ca"] > 0
