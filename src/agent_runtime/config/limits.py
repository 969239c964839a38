"""Reading our own limits, retention, pricing and cache settings (`agent_runtime.limits`,
`agent_runtime.pricing`, `agent_runtime.checkpoint_cache`) and LangGraph's `checkpointer.ttl`
and `checkpointer.serde`, read and checked."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agent_runtime.config.model import CheckpointCacheConfig, LimitsConfig, ModelPrice, SerdeConfig
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
    "n_jobs_per_worker": read_positive,
    "run_lease_seconds": read_positive_number,
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
