"""JSON encoding: what is kept of an encoded result is the result, not orjson's buffer."""

from __future__ import annotations

import gc
import tracemalloc

from agent_runtime.encoding import dumps


def test_small_results_keep_only_their_own_length() -> None:
    # orjson writes into a buffer of 4 KiB and more and hands that back; event logs keep
    # thousands of small events, so the result is copied to its length.
    gc.collect()
    tracemalloc.start()
    try:
        kept = [dumps({"event": "messages", "token": f"word {n}"}) for n in range(2000)]
        gc.collect()
        used, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert len(kept[0]) < 64
    assert used / len(kept) < 512  # the buffer would be 4,097 bytes each
    assert kept[5] == b'{"event":"messages","token":"word 5"}'
