"""The filters storage applies: the bounds every backend may assume of a metadata or values
filter (SQLite's, the tightest backend's: a filter within them becomes one SQL statement that
SQLite can parse), and the typed filter an authorization handler returns. No IO, no SQL.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from agent_runtime.schema import Json

MAX_FILTER_DEPTH = 6
"""Levels of objects and arrays in a filter. Each level nests a subquery, and SQLite's parser
stack (100 entries) overflowed at 8 levels."""
MAX_FILTER_ITEMS = 100
"""Keys and array items in a filter, at every level together. SQLite refuses an expression
tree of more than 1,000 levels, which a few hundred keys reach."""
_INT64 = range(-(2**63), 2**63)


def filter_problem(expected: Any) -> str | None:
    """Why `expected` cannot be a filter (too deep, too big, an integer SQLite cannot bind),
    or None when it can."""
    items = 0
    deepest = 0
    stack: list[tuple[Any, int, str]] = [(expected, 0, "")]
    while stack:
        value, depth, path = stack.pop()
        if isinstance(value, dict | list):
            deepest = max(deepest, depth + 1)
            pairs = value.items() if isinstance(value, dict) else enumerate(value)
            for key, sub in pairs:
                items += 1
                stack.append((sub, depth + 1, f"{path}.{key}" if path else str(key)))
        elif isinstance(value, int) and not isinstance(value, bool) and value not in _INT64:
            return f"a filter's integers must fit in 64 bits ({path} is {value})"
    if deepest > MAX_FILTER_DEPTH:
        return f"a filter may nest at most {MAX_FILTER_DEPTH} levels deep"
    if items > MAX_FILTER_ITEMS:
        return f"a filter may hold at most {MAX_FILTER_ITEMS} keys and items in all"
    return None


@dataclass(frozen=True, slots=True)
class MetadataCondition:
    """One key of a handler's filter: the metadata value under `key` equals `value` (`$eq`,
    or a plain value), or is a list holding `value` (`$contains`; every item of `value` when
    it is a list itself)."""

    key: str
    operator: Literal["$eq", "$contains"]
    value: Any

    def containment(self) -> Json:
        """The same condition as a JSON containment object (`metadata @> this`)."""
        if self.operator == "$contains":
            needles = self.value if isinstance(self.value, list) else [self.value]
            return {self.key: needles}
        return {self.key: self.value}


@dataclass(frozen=True, slots=True)
class AuthFilter:
    """The filter an authorization handler returned (`{"owner": "a"}`, `{"owner": {"$eq":
    "a"}}`, `{"members": {"$contains": "a"}}`), typed, for storage to apply to the metadata of
    whatever it searches, counts, updates or deletes. Every condition must hold.

    Equality is JSON containment, as in search filters: a scalar equals the same scalar (1
    equals 1.0; true never equals 1); an object or list matches one that holds it."""

    conditions: tuple[MetadataCondition, ...]

    @classmethod
    def parse(cls, raw: Mapping[str, Any]) -> AuthFilter:
        """The typed filter of a handler's answer, already checked by the authorizer."""
        conditions: list[MetadataCondition] = []
        for key, wanted in raw.items():
            if isinstance(wanted, Mapping) and set(wanted) <= {"$eq", "$contains"} and wanted:
                for operator in ("$eq", "$contains"):
                    if operator in wanted:
                        conditions.append(MetadataCondition(str(key), operator, wanted[operator]))
            else:
                conditions.append(MetadataCondition(str(key), "$eq", wanted))
        return cls(tuple(conditions))

    def containments(self) -> list[Json]:
        """One JSON containment object per condition; a row passes when its metadata contains
        every one."""
        return [condition.containment() for condition in self.conditions]

    def matches(self, metadata: Mapping[str, Any] | None) -> bool:
        """Whether metadata passes, exactly as the backends' SQL decides."""
        actual = dict(metadata or {})
        return all(json_contains(actual, expected) for expected in self.containments())


def auth_containments(auth: AuthFilter | None) -> list[Json]:
    """The containment objects of an optional filter (none without one)."""
    return auth.containments() if auth is not None else []


def json_contains(actual: Any, expected: Any) -> bool:
    """JSON containment (`actual @> expected`) in Python, with SQLite's and Postgres's rules
    for what the filters here can hold."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(
            key in actual and json_contains(actual[key], sub) for key, sub in expected.items()
        )
    if isinstance(expected, list):
        return isinstance(actual, list) and all(
            any(json_contains(item, sub) for item in actual) for sub in expected
        )
    if expected is None or isinstance(expected, bool):
        return actual is expected
    if isinstance(expected, int | float):
        return (
            isinstance(actual, int | float)
            and not isinstance(actual, bool)
            and (actual == expected)
        )
    return isinstance(actual, str) and actual == str(expected)
