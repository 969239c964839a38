"""JSON containment (`metadata @> filter` in Postgres terms) as SQLite SQL over JSON text columns.

Objects match when every filter key matches; arrays when every filter element matches some element;
scalars by JSON type and value (1 matches 1.0; true never matches 1). Filters arrive bounded by
`storage.filters.filter_problem`, because each level and each key adds a subquery to one SQL
statement.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import count
from typing import Any


def containment_sql(column: str, expected: Any) -> tuple[str, list[Any]]:
    """SQL that is true when the JSON in `column` contains `expected`, and its parameters."""
    params: list[Any] = []
    # Aliases are unique within the statement, which is all SQL needs.
    sql = _match(column, f"json_type({column})", expected, params, count())
    return sql, params


def _match(value: str, kind: str, expected: Any, params: list[Any], aliases: Iterator[int]) -> str:
    if isinstance(expected, dict):
        parts = [f"{kind} = 'object'"]
        for key, sub in expected.items():
            alias = f"j{next(aliases)}"
            source = f"CASE WHEN {kind} = 'object' THEN {value} ELSE '{{}}' END"
            params.append(str(key))
            inner = _match(f"{alias}.value", f"{alias}.type", sub, params, aliases)
            parts.append(
                f"EXISTS (SELECT 1 FROM json_each({source}) AS {alias} "
                f"WHERE {alias}.key = ? AND {inner})"
            )
        return "(" + " AND ".join(parts) + ")"
    if isinstance(expected, list):
        parts = [f"{kind} = 'array'"]
        for sub in expected:
            alias = f"j{next(aliases)}"
            source = f"CASE WHEN {kind} = 'array' THEN {value} ELSE '[]' END"
            inner = _match(f"{alias}.value", f"{alias}.type", sub, params, aliases)
            parts.append(f"EXISTS (SELECT 1 FROM json_each({source}) AS {alias} WHERE {inner})")
        return "(" + " AND ".join(parts) + ")"
    if expected is None:
        return f"({kind} = 'null')"
    if isinstance(expected, bool):
        return f"({kind} = '{'true' if expected else 'false'}')"
    if isinstance(expected, int | float):
        params.append(expected)
        return f"({kind} IN ('integer', 'real') AND {_scalar(value, kind)} = ?)"
    params.append(str(expected))
    return f"({kind} = 'text' AND {_scalar(value, kind)} = ?)"


def _scalar(value: str, kind: str) -> str:
    # A root column holds JSON text, so its scalar must be extracted; json_each values already
    # come out as SQL scalars.
    if kind.startswith("json_type("):
        return f"json_extract({value}, '$')"
    return value
