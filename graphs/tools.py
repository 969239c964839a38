"""Offline tools for the example graphs: a safe calculator and a clock, neither needs a network.

No `from __future__ import annotations` anywhere in graphs/: the runtime loads these files by
path, and LangGraph and pydantic evaluate their annotations at run time.
"""

import ast
import operator
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from langchain_core.tools import BaseTool, StructuredTool, ToolException

_MAX_LENGTH = 200
# Integer arithmetic is exact and unbounded, so `9**9**9` would hang the run; results past
# this many bits are refused before they are computed.
_MAX_BITS = 100_000

_Number = int | float
_BINARY: dict[type[ast.operator], Callable[[_Number, _Number], _Number]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.FloorDiv: operator.floordiv,
    ast.Mod: operator.mod,
    ast.Pow: operator.pow,
}
_UNARY: dict[type[ast.unaryop], Callable[[_Number], _Number]] = {
    ast.UAdd: operator.pos,
    ast.USub: operator.neg,
}


def evaluate(expression: str) -> _Number:
    """Evaluate arithmetic by walking its syntax tree; nothing is ever passed to `eval`.

    Raises:
        ToolException: the text is not arithmetic, divides by zero or is too large.
    """
    if len(expression) > _MAX_LENGTH:
        raise ToolException(f"The expression is longer than {_MAX_LENGTH} characters")
    try:
        tree = ast.parse(expression.strip(), mode="eval")
    except SyntaxError:
        raise ToolException(_not_arithmetic(expression)) from None
    return _evaluate_node(tree.body, expression)


def _evaluate_node(node: ast.expr, expression: str) -> _Number:
    # bool is an int subclass, and True + True is not arithmetic anyone asked for.
    if (
        isinstance(node, ast.Constant)
        and isinstance(node.value, int | float)
        and not isinstance(node.value, bool)
    ):
        return node.value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _UNARY:
        return _UNARY[type(node.op)](_evaluate_node(node.operand, expression))
    if isinstance(node, ast.BinOp) and type(node.op) in _BINARY:
        left = _evaluate_node(node.left, expression)
        right = _evaluate_node(node.right, expression)
        if isinstance(node.op, ast.Pow) and _pow_bits(left, right) > _MAX_BITS:
            # Checked first: computing the power is what would hang.
            raise ToolException(f'"{expression}" is too large to compute')
        try:
            result = _BINARY[type(node.op)](left, right)
        except ZeroDivisionError:
            raise ToolException(f'"{expression}" divides by zero') from None
        except OverflowError:
            raise ToolException(f'"{expression}" is too large to compute') from None
        if isinstance(result, int) and result.bit_length() > _MAX_BITS:
            raise ToolException(f'"{expression}" is too large to compute')
        return result
    raise ToolException(_not_arithmetic(expression))


def _pow_bits(base: _Number, exponent: _Number) -> int:
    # Float powers overflow with OverflowError on their own; only exact ints can grow forever.
    if not isinstance(base, int) or not isinstance(exponent, int) or exponent <= 0:
        return 0
    return exponent * max(abs(base).bit_length(), 1)


def _not_arithmetic(expression: str) -> str:
    return (
        f'"{expression}" is not arithmetic; use numbers, + - * / // % **, '
        "unary + and -, and parentheses"
    )


def calculate(expression: str) -> str:
    """Evaluate an arithmetic expression such as "2 + 3 * (4 - 1)" and return the number."""
    text = repr(evaluate(expression))
    return text.removesuffix(".0")


def tell_time(timezone: str = "UTC") -> str:
    """Return the current date and time, ISO 8601, in an IANA timezone such as "Europe/Paris"."""
    try:
        zone = ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ToolException(
            f'Unknown timezone "{timezone}"; use an IANA name such as "Europe/Paris" or "UTC"'
        ) from None
    return datetime.now(zone).isoformat(timespec="seconds")


# handle_tool_error=True turns a ToolException into a ToolMessage with status "error" carrying
# its message, so the model can read the mistake; any other exception is a bug and fails the run.
calculator = StructuredTool.from_function(calculate, name="calculator", handle_tool_error=True)
current_time = StructuredTool.from_function(tell_time, name="current_time", handle_tool_error=True)

TOOLS: list[BaseTool] = [calculator, current_time]
