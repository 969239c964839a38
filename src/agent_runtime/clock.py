"""The wall clock the runtime stamps records with: timezone-aware UTC, one function to pass where
a clock is injectable (storage takes `clock=`), so no layer reaches into another for it."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_now() -> datetime:
    """Now, in UTC, timezone-aware."""
    return datetime.now(UTC)
