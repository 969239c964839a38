"""`store.index` -> what semantic search needs: the vector size, the field paths to embed, and
the LangChain `Embeddings` that `embed` names. It loads the user's embeddings; it stores nothing.

`embed` is a provider string (`"openai:text-embedding-3-small"`, loaded by LangChain's
`init_embeddings`), a `"path/to/file.py:name"` naming an `Embeddings` object or an embedding
function (sync or async, texts in, vectors out), or, from Python, the object or function itself.
"""

from __future__ import annotations

import difflib
import importlib.util
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from langchain_core.embeddings import Embeddings
from langgraph.store.base import ensure_embeddings, tokenize_path

from agent_runtime.errors import ConfigError

FieldPath = tuple[str, Literal["$"] | list[str]]
"""A field path as written (`"text"`, `"$"` for the whole value) and as LangGraph tokenizes it."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StoreIndex:
    """A usable `store.index`: items are embedded at `fields` into vectors of `dims` floats."""

    dims: int
    fields: tuple[FieldPath, ...]
    embeddings: Embeddings


def field_paths(paths: list[str] | tuple[str, ...]) -> tuple[FieldPath, ...]:
    """Field paths with LangGraph's tokenization, as `get_text_at_path` takes them."""
    return tuple((path, "$" if path == "$" else tokenize_path(path)) for path in paths)


def load_store_index(index: Mapping[str, Any] | None) -> StoreIndex | None:
    """The semantic index `store.index` describes, or None when semantic search is off.

    Raises:
        ConfigError: `dims` is not a positive integer, or `embed` names nothing usable; the
            message names the key.
    """
    if not index:
        return None
    dims = index.get("dims")
    if isinstance(dims, bool) or not isinstance(dims, int) or dims <= 0:
        raise _error("dims", f"expected a positive integer, got {dims!r}")
    fields = index.get("fields") or ["$"]
    if isinstance(fields, str):
        fields = [fields]
    return StoreIndex(
        dims=dims, fields=field_paths(list(fields)), embeddings=_embeddings(index.get("embed"))
    )


def _embeddings(embed: Any) -> Embeddings:
    if embed is None:
        raise _error("embed", 'is required, e.g. "openai:text-embedding-3-small"')
    if isinstance(embed, str):
        location, _, attr = embed.rpartition(":")
        if location.endswith(".py"):
            return _from_file(Path(location), attr, embed)
        return _from_provider(embed)
    if isinstance(embed, Embeddings) or callable(embed):
        return ensure_embeddings(embed)
    raise _error("embed", f"expected a string, an Embeddings object or a function, got {embed!r}")


def _from_provider(embed: str) -> Embeddings:
    if importlib.util.find_spec("langchain") is None:
        raise _error(
            "embed",
            f'"{embed}" names a provider\'s model, which needs the langchain package and the '
            "provider's (e.g. pip install langchain langchain-openai); or name your own "
            'embeddings as "./file.py:name"',
        )
    try:
        return ensure_embeddings(embed)
    except Exception as exc:
        raise _error("embed", f'cannot load "{embed}": {_describe(exc)}') from exc


def _from_file(path: Path, attr: str, embed: str) -> Embeddings:
    path = path.resolve()
    if not path.is_file():
        raise _error("embed", f"{path} does not exist")
    name = "agent_runtime_store_embed_" + re.sub(r"\W", "_", str(path.with_suffix("")))
    module = sys.modules.get(name)
    if module is None:
        spec = importlib.util.spec_from_file_location(name, path)
        if spec is None or spec.loader is None:
            raise _error("embed", f"{path} cannot be imported")
        module = importlib.util.module_from_spec(spec)
        # Registered before it runs, so that dataclasses and pydantic can look the module up.
        sys.modules[name] = module
        try:
            spec.loader.exec_module(module)
        except BaseException as exc:
            del sys.modules[name]
            raise _error("embed", f"{path} failed to import: {_describe(exc)}") from exc
    if not hasattr(module, attr):
        public = [key for key in vars(module) if not key.startswith("_")]
        close = difflib.get_close_matches(attr, public, n=1)
        hint = f"; did you mean {close[0]}?" if close else ""
        raise _error("embed", f'{path} has no attribute "{attr}"{hint}')
    target = getattr(module, attr)
    if isinstance(target, type):
        raise _error("embed", f"{embed} is a class; name an instance of it")
    if not (isinstance(target, Embeddings) or callable(target)):
        raise _error(
            "embed", f"{embed} is {_a(target)}, not an Embeddings object or an embedding function"
        )
    return ensure_embeddings(target)


def _error(key: str, problem: str) -> ConfigError:
    return ConfigError(f"langgraph.json: store.index.{key}: {problem}")


def _a(value: Any) -> str:
    name = type(value).__name__
    return f"an {name}" if name[:1].lower() in "aeiou" else f"a {name}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}"
