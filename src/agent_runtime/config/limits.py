"""Our own limits, retention, pricing and cache settings (`agent_runtime.limits`,
`agent_runtime.pricing`, `agent_runtime.checkpoint_cache`) and LangGraph's `checkpointer.ttl`
and `checkpointer.serde`, read and checked."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent_runtime.config.reader import (
    ConfigReader,
    ValueTable,
    read_choice,
    read_flag,
    read_non_negative,
    read_number,
    read_positive,
    read_positive_number,
)
from agent_runtime.schema import Json
from agent_runtime.storage.checkpoint_cache import CheckpointCacheConfig
from agent_runtime.storage.serde import SerdeConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class LimitsConfig:
    """Per-thread limits and retention (`agent_runtime.limits`)."""

    max_metadata_bytes: int = 16 * 1024
    """A thread's metadata, JSON-encoded; larger is a 413."""
    max_messages_per_thread: int = 10_000
    """A run that would leave more messages in the thread fails, saying so."""
    inactivity_ttl_days: float | None = None
    """Threads not updated for this long are swept."""
    max_age_days: float | None = None
    """Threads older than this are swept."""
    strategy: Literal["delete", "keep_latest"] = "delete"
    """What sweeping does: delete the thread, or keep only its latest checkpoint."""
    sweep_interval_seconds: float | None = None
    """How often the sweeper runs; default LangGraph's `checkpointer.ttl.sweep_interval_minutes`,
    else 60 s."""
    max_pending_runs_per_thread: int = 100
    """Runs queued (`enqueue`) behind a thread's running run; one more is a 429."""
    max_open_streams: int = 200
    """Server-sent event streams this process serves at once; one more is a 429."""
    stream_send_timeout_seconds: float = 30.0
    """A stream whose reader takes no data for this long is closed and its memory freed."""
    max_event_bytes_per_run: int = 16 * 1024 * 1024
    """The payloads a run keeps for replay (`Last-Event-ID`); past it the oldest are dropped."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ModelPrice:
    """USD per million tokens for one model name, from `agent_runtime.pricing`."""

    input_per_million: float = 0.0
    output_per_million: float = 0.0


_LIMIT_KEYS: ValueTable = {
    "max_metadata_bytes": read_positive,
    "max_messages_per_thread": read_positive,
    "inactivity_ttl_days": read_number,
    "max_age_days": read_number,
    "strategy": read_choice("delete", "keep_latest"),
    "sweep_interval_seconds": read_number,
    "max_pending_runs_per_thread": read_positive,
    "max_open_streams": read_positive,
    "stream_send_timeout_seconds": read_positive_number,
    "max_event_bytes_per_run": read_positive,
}
# max_mb 0 turns the cache off.
_CACHE_KEYS: ValueTable = {"max_mb": read_non_negative, "verify": read_flag}
_PRICE_KEYS: ValueTable = {"input_per_million": read_number, "output_per_million": read_number}
_CHECKPOINTER_TTL_KEYS: ValueTable = {
    "strategy": read_choice("delete", "keep_latest"),
    "default_ttl": read_number,
    "sweep_interval_minutes": read_number,
}


def _object(reader: ConfigReader, key: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise reader.bad(key, value, "an object")
    return value


def read_limits(reader: ConfigReader, key: str, value: Any) -> LimitsConfig:
    return LimitsConfig(**reader.values(_object(reader, key, value), f"{key}.", _LIMIT_KEYS))


def read_checkpoint_cache(reader: ConfigReader, key: str, value: Any) -> CheckpointCacheConfig:
    return CheckpointCacheConfig(
        **reader.values(_object(reader, key, value), f"{key}.", _CACHE_KEYS)
    )


def read_pricing(reader: ConfigReader, key: str, value: Any) -> dict[str, ModelPrice]:
    prices = {}
    for model, price in _object(reader, key, value).items():
        where = f"{key}.{model}"
        prices[str(model)] = ModelPrice(
            **reader.values(_object(reader, where, price), f"{where}.", _PRICE_KEYS)
        )
    return prices


def default_thread_ttl(reader: ConfigReader, checkpointer: Mapping[str, Any]) -> Json | None:
    if checkpointer.get("ttl") is None:
        return None
    ttl = reader.values(
        _object(reader, "checkpointer.ttl", checkpointer["ttl"]),
        "checkpointer.ttl.",
        _CHECKPOINTER_TTL_KEYS,
    )
    if "default_ttl" not in ttl:
        return None
    return {"strategy": ttl.get("strategy", "delete"), "ttl": ttl["default_ttl"]}


def read_serde(reader: ConfigReader, checkpointer: Mapping[str, Any]) -> SerdeConfig:
    """`checkpointer.serde`: the extra types checkpoints may decode to. Pickle, and letting
    any type decode, are refused: stored bytes must never choose what code runs."""
    key = "checkpointer.serde"
    section = _object(reader, key, checkpointer.get("serde") or {})
    reader.check_keys(section, f"{key}.", ("allowed_json_modules", "pickle_fallback"))
    if section.get("pickle_fallback"):
        raise reader.error(
            f"{key}.pickle_fallback",
            "agent-runtime never unpickles checkpoints (pickled bytes can run any code); "
            "remove the key or set it to false",
        )
    modules = section.get("allowed_json_modules")
    if modules is True:
        raise reader.error(
            f"{key}.allowed_json_modules",
            "true would let stored bytes construct any type; list each type instead, as "
            '["my_package", "my_module", "MyType"]',
        )
    if modules is None or modules is False:
        return SerdeConfig()
    if not isinstance(modules, list):
        raise reader.bad(f"{key}.allowed_json_modules", modules, "a list of module paths")
    allowed: set[tuple[str, ...]] = set()
    for index, path in enumerate(modules):
        where = f"{key}.allowed_json_modules[{index}]"
        if (
            not isinstance(path, list)
            or len(path) < 2
            or not all(isinstance(part, str) and part.isidentifier() for part in path)
        ):
            raise reader.bad(
                where, path, 'a module path and a type name, as ["my_module", "MyType"]'
            )
        allowed.add(tuple(path))
    return SerdeConfig(allowed_json_modules=frozenset(allowed))
