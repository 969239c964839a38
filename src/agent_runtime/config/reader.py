"""Reading one langgraph.json section: key checks with a "did you mean", typed value readers,
and errors and warnings that name the file and the key path. No knowledge of which keys exist."""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Any

from agent_runtime.errors import ConfigError


class ConfigReader:
    """Names the file and key path in every error and warning."""

    def __init__(self, label: str) -> None:
        self.label = label
        self.warnings: list[str] = []

    def error(self, key: str, problem: str) -> ConfigError:
        return ConfigError(f"{self.label}: {key}: {problem}")

    def bad(self, key: str, value: Any, wanted: str) -> ConfigError:
        return self.error(key, f"expected {wanted}, got {describe_value(value)}")

    def warn(self, message: str) -> None:
        self.warnings.append(f"{self.label}: {message}")

    def check_keys(self, section: Mapping[str, Any], prefix: str, known: Collection[str]) -> None:
        for key in section:
            if key not in known:
                close = difflib.get_close_matches(str(key), list(known), n=1)
                hint = f"did you mean {close[0]}?" if close else "it is ignored"
                self.warn(f"{prefix}{key} is not a known key; {hint}")

    def section(self, data: Mapping[str, Any], key: str, prefix: str = "") -> Mapping[str, Any]:
        value = data.get(key)
        if value is not None and not isinstance(value, Mapping):
            raise self.bad(f"{prefix}{key}", value, "an object")
        return value or {}

    def values(self, section: Mapping[str, Any], prefix: str, table: ValueTable) -> dict[str, Any]:
        """Check a section against a table of readers; absent and null keys are left out."""
        self.check_keys(section, prefix, table)
        return {
            key: table[key](self, f"{prefix}{key}", value)
            for key, value in section.items()
            if key in table and value is not None
        }

    def existing(self, key: str, written: str, base_dir: Path) -> Path:
        resolved = (base_dir / Path(written).expanduser()).resolve()
        if not resolved.exists():
            raise self.error(key, f"{written} does not exist (resolved to {resolved})")
        return resolved


ValueTable = Mapping[str, Callable[[ConfigReader, str, Any], Any]]
"""Key -> the reader that checks and converts its value."""


def read_string(reader: ConfigReader, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise reader.bad(key, value, "a non-empty string")
    return value


def read_strings(reader: ConfigReader, key: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise reader.bad(key, value, "a list of strings")
    return tuple(value)


def read_positive(reader: ConfigReader, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise reader.bad(key, value, "a positive integer")
    return value


def read_non_negative(reader: ConfigReader, key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise reader.bad(key, value, "a non-negative integer")
    return value


def read_flag(reader: ConfigReader, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise reader.bad(key, value, "true or false")
    return value


def read_regex(reader: ConfigReader, key: str, value: Any) -> str:
    try:
        return re.compile(read_string(reader, key, value)).pattern
    except re.error as exc:
        raise reader.error(key, f"invalid regular expression: {exc}") from None


def describe_value(value: Any) -> str:
    text = json.dumps(value, default=repr, ensure_ascii=False)
    return text if len(text) <= 60 else text[:57] + "..."


def read_number(reader: ConfigReader, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise reader.bad(key, value, "a non-negative number")
    return float(value)


def read_positive_number(reader: ConfigReader, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not value > 0:
        raise reader.bad(key, value, "a positive number")
    return float(value)


def read_choice(*choices: str) -> Callable[[ConfigReader, str, Any], str]:
    """A reader accepting one of `choices`."""

    def read(reader: ConfigReader, key: str, value: Any) -> str:
        if value not in choices:
            raise reader.bad(key, value, " or ".join(f'"{c}"' for c in choices))
        return str(value)

    return read
