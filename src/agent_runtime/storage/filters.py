"""The bounds every backend may assume of a metadata or values filter, checked by the routes
before a filter reaches storage. They are SQLite's, the tightest backend's: a filter within them
becomes one SQL statement that SQLite can parse.
"""

from __future__ import annotations

from typing import Any

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
