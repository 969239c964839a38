"""JSON for everything we store or send: orjson with a default that understands LangChain
messages, pydantic models and dataclasses. Never pickle."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

_OPTIONS = orjson.OPT_NON_STR_KEYS | orjson.OPT_SERIALIZE_NUMPY


def _default(obj: Any) -> Any:
    to_json: Callable[..., Any] | None = getattr(obj, "model_dump", None)
    if to_json is not None:
        return to_json(mode="json")
    to_dict: Callable[..., Any] | None = getattr(obj, "_asdict", None)  # namedtuples
    if to_dict is not None:
        return to_dict()
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {f.name: getattr(obj, f.name) for f in dataclasses.fields(obj)}
    if isinstance(obj, set | frozenset | tuple):
        return list(obj)
    if isinstance(obj, bytes | bytearray):
        return obj.decode("utf-8", errors="replace")
    if isinstance(obj, UUID | datetime):
        return str(obj)
    if isinstance(obj, BaseException):
        return {"error": type(obj).__name__, "message": str(obj)}
    raise TypeError(f"Object of type {type(obj).__name__} is not JSON serializable")


def dumps(obj: Any) -> bytes:
    """Encode to JSON bytes; unknown objects fall back to their JSON-able form."""
    return orjson.dumps(obj, default=_default, option=_OPTIONS)


def dumps_text(obj: Any) -> str:
    return dumps(obj).decode()


def loads(data: bytes | str) -> Any:
    return orjson.loads(data)


def to_jsonable(obj: Any) -> Any:
    """Round-trip through JSON so the result holds only dicts, lists and scalars."""
    return orjson.loads(dumps(obj))
