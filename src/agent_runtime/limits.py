"""Caps on what one client can take from the server: metadata sizes here; open streams in
`streaming/slots.py`; the pending-run cap where runs are queued, in storage. No IO."""

from __future__ import annotations

from typing import Literal

from agent_runtime.encoding import dumps
from agent_runtime.errors import PayloadTooLargeError
from agent_runtime.schema import Json


def check_metadata_size(
    metadata: Json, *, limit: int, owner: Literal["thread", "assistant", "run"] = "thread"
) -> None:
    """Refuse metadata whose JSON encoding is over `limit` bytes.

    Raises:
        PayloadTooLargeError: the metadata would be over `limits.max_metadata_bytes`.
    """
    size = len(dumps(metadata))
    if size > limit:
        raise PayloadTooLargeError(
            f"The {owner}'s metadata would be {size} bytes, over the limit of {limit} bytes "
            "(agent_runtime.limits.max_metadata_bytes in langgraph.json)",
            code="metadata_too_large",
        )
