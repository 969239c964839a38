"""LangGraph's `store` section of langgraph.json (`index` for semantic search, `ttl`), read and
checked. It checks shapes and paths only: the embeddings themselves load when storage starts."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from agent_runtime.config.reader import ConfigReader, read_positive, read_string

_INDEX_KEYS = ("dims", "embed", "fields", "distance_type")


def read_store(reader: ConfigReader, section: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    """The `store` section as written, `index` checked and an `embed` file path made absolute.

    Raises:
        ConfigError: `store.index` lacks `dims` or `embed`, or a value has the wrong shape.
    """
    reader.check_keys(section, "store.", ("index", "ttl"))
    store = dict(section)
    if section.get("index") is not None:
        store["index"] = _read_index(reader, reader.section(section, "index", "store."), base_dir)
    return store


def _read_index(reader: ConfigReader, index: Mapping[str, Any], base_dir: Path) -> dict[str, Any]:
    reader.check_keys(index, "store.index.", _INDEX_KEYS)
    for key in ("dims", "embed"):
        if index.get(key) is None:
            raise reader.error(
                f"store.index.{key}",
                'is required for semantic search, e.g. "index": {"dims": 1536, '
                '"embed": "openai:text-embedding-3-small"}',
            )
    embed = read_string(reader, "store.index.embed", index["embed"])
    fields = index.get("fields")
    if isinstance(fields, str):
        fields = [fields]
    if fields is not None and (
        not isinstance(fields, list) or not all(isinstance(f, str) and f for f in fields)
    ):
        raise reader.bad("store.index.fields", fields, 'a list of field paths such as ["$"]')
    distance = index.get("distance_type", "cosine")
    if distance != "cosine":
        raise reader.bad("store.index.distance_type", distance, '"cosine", the only one supported')
    read_positive(reader, "store.index.dims", index["dims"])
    return {**index, "embed": _absolute_embed(reader, embed, base_dir)}


def _absolute_embed(reader: ConfigReader, embed: str, base_dir: Path) -> str:
    # "./file.py:name" is relative to langgraph.json; "provider:model" goes to LangChain as is.
    location, _, attr = embed.rpartition(":")
    if not location.endswith(".py"):
        return embed
    if not attr.isidentifier():
        raise reader.bad("store.index.embed", embed, '"./file.py:name" with a Python name')
    path = reader.existing("store.index.embed", location, base_dir)
    return f"{path}:{attr}"
