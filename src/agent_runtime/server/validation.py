"""Request parsing: JSON bodies with a size and a depth limit, shapes checked against
TypedDicts, path ids, and the bounded types every route shares (offsets, durations, metadata,
filters), so that no request reaches storage with a value it cannot hold. Every failure
becomes an `InvalidRequestError` or `PayloadTooLargeError` naming the field."""

from __future__ import annotations

import re
from collections.abc import Callable
from functools import cache
from typing import Annotated, Any, TypeVar

import orjson
from pydantic import AfterValidator, ConfigDict, Field, TypeAdapter, ValidationError, with_config
from pydantic_core import PydanticCustomError
from starlette.requests import Request

from agent_runtime.encoding import preview
from agent_runtime.errors import InvalidRequestError, PayloadTooLargeError
from agent_runtime.schema import Json
from agent_runtime.storage.filters import filter_problem

MAX_JSON_DEPTH = 100
"""Levels of arrays and objects a request body may nest. orjson parses 1,024 but encodes only
254, and what we store is wrapped a few levels deeper when it is sent back."""
INT64_MAX = 2**63 - 1
"""SQLite integers (offsets, versions, filter values bound as parameters) stop here."""
ONE_YEAR_SECONDS = 365 * 24 * 60 * 60
TEN_YEARS_MINUTES = 10 * 365 * 24 * 60

_CLOSED = ConfigDict(extra="forbid")
_Shape = TypeVar("_Shape", bound=type)


def closed(shape: _Shape) -> _Shape:
    """Mark a request TypedDict so that a field it does not declare is a 422, not ignored."""
    return with_config(_CLOSED)(shape)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, whatever its `Content-Type`; an empty body reads as `{}`
    (but whitespace alone is not JSON).

    LangGraph Studio sends its JSON as `text/plain`, which spares it a preflight. Reading that
    as JSON is safe because `server.origins` refuses such requests from origins not allowed.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise _too_large(int(declared), limit)
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_large(size, limit)
        chunks.append(chunk)
    raw = b"".join(chunks)
    if not raw:
        return {}
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc
    # Fewer brackets than the limit cannot nest past it; most bodies stop here.
    if raw.count(b"[") + raw.count(b"{") > MAX_JSON_DEPTH:
        depth = json_depth(data)
        if depth > MAX_JSON_DEPTH:
            raise InvalidRequestError(
                f"The request body nests {depth} levels deep; the limit is {MAX_JSON_DEPTH}",
                code="too_deep",
            )
    return data


def json_depth(value: Any) -> int:
    """How many levels of arrays and objects `value` nests (0 for a scalar), without recursion."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        current, depth = stack.pop()
        if isinstance(current, dict):
            children: Any = current.values()
        elif isinstance(current, list):
            children = current
        else:
            continue
        deepest = max(deepest, depth)
        stack.extend((child, depth + 1) for child in children)
    return deepest


def validate(shape: Any, data: Any, *, where: str) -> Any:
    """Check `data` against a TypedDict (or any type pydantic understands) and return it.

    A body is JSON, so its types are checked strictly (`0` is not `false`, `true` is not
    `1.0`), as `/openapi.json` declares them; query parameters are strings, read leniently."""
    try:
        return _adapter(shape).validate_python(data, strict=where == "body")
    except ValidationError as exc:
        raise InvalidRequestError(describe(exc, where=where), code="validation_error") from exc


def describe(exc: ValidationError, *, where: str) -> str:
    """One sentence per problem, naming the field by its dotted path."""
    problems = [_describe_one(error, where) for error in exc.errors()[:5]]
    more = len(exc.errors()) - len(problems)
    if more > 0:
        problems.append(f"and {more} more problem{'s' if more > 1 else ''}")
    return "; ".join(problems)


def _describe_one(error: Any, where: str) -> str:
    loc = [str(part) for part in error["loc"] if not _is_union_branch(part)]
    field = ".".join(loc)
    kind = error["type"]
    if kind == "extra_forbidden":
        return f'Unknown field "{field}" in the request {where}'
    if kind == "missing":
        return f'The request {where} is missing the required field "{field}"'
    received = preview(error.get("input"))
    message = error["msg"][0].lower() + error["msg"][1:]
    if not field:
        if kind in ("dict_type", "model_type", "typed_dict_type"):
            return f"The request {where} must be a JSON object, got {received}"
        return f"The request {where}: {message}, got {received}"
    return f"{field}: {message.replace('input ', 'value ', 1)}, got {received}"


def _is_union_branch(part: Any) -> bool:
    # pydantic names the union member it tried (e.g. "str", "list[...]"); users never wrote it.
    return isinstance(part, str) and (
        part in {"str", "int", "float", "bool", "dict", "list", "none"}
        or "[" in part
        or part.startswith(("function-", "typed-dict", "literal["))
    )


@cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


_UUID = re.compile(r"^[0-9a-fA-F]{8}(-[0-9a-fA-F]{4}){3}-[0-9a-fA-F]{12}$")


def parse_namespace(value: str, *, field: str) -> tuple[str, ...]:
    """A store namespace given as its labels joined by dots; empty for the root.

    Raises:
        InvalidRequestError: a label is empty or holds a NUL character.
    """
    if not value:
        return ()
    labels = tuple(value.split("."))
    if any(not label or "\x00" in label for label in labels):
        raise InvalidRequestError(
            f"{field}: labels must be non-empty and free of NUL characters, got {preview(value)}",
            code="validation_error",
        )
    return labels


def is_uuid(value: str) -> bool:
    """Whether `value` is a UUID spelled the standard way."""
    return bool(_UUID.match(value))


def parse_uuid(value: str, *, field: str) -> str:
    """A UUID spelled the standard way (8-4-4-4-12 hex digits), lower-cased; a 422 naming the
    field for anything else. Braces, `urn:uuid:` and missing dashes are refused rather than
    rewritten, so that the id a client stored is the id it reads back."""
    if not isinstance(value, str) or not _UUID.match(value):
        raise InvalidRequestError(
            f"{field} must be a UUID, got {preview(value)}",
            code="invalid_id",
        )
    return value.lower()


def _refuse(problem: str) -> PydanticCustomError:
    # The message goes in as context, so braces in what the user sent are not a template.
    return PydanticCustomError("invalid_value", "{problem}", {"problem": problem})


def _at_most(limit: int, why: str) -> AfterValidator:
    def check(value: Any) -> Any:
        if value > limit:
            raise _refuse(f"must be at most {limit} ({why})")
        return value

    return AfterValidator(check)


UuidStr = Annotated[str, Field(json_schema_extra={"format": "uuid"})]
"""An id field: documented as a UUID; the handler checks it with `parse_uuid`, whose message
names the field."""
Int64 = Annotated[
    int,
    Field(json_schema_extra={"minimum": -(2**63), "maximum": INT64_MAX}, ge=-(2**63)),
    _at_most(INT64_MAX, "the largest 64-bit integer"),
]
Offset = Annotated[
    int,
    Field(ge=0, json_schema_extra={"maximum": INT64_MAX}),
    _at_most(INT64_MAX, "the largest 64-bit integer"),
]
Version = Annotated[
    int,
    Field(ge=1, json_schema_extra={"maximum": INT64_MAX}),
    _at_most(INT64_MAX, "the largest 64-bit integer"),
]
AfterSeconds = Annotated[
    float,
    Field(ge=0, allow_inf_nan=False, json_schema_extra={"maximum": ONE_YEAR_SECONDS}),
    _at_most(ONE_YEAR_SECONDS, "one year"),
]
TtlMinutes = Annotated[
    float,
    Field(gt=0, allow_inf_nan=False, json_schema_extra={"maximum": TEN_YEARS_MINUTES}),
    _at_most(TEN_YEARS_MINUTES, "ten years in minutes"),
]


def _walk(value: Any, visit: Callable[[str | None, Any], None]) -> None:
    """Calls `visit(key, value)` for every key and value under `value`, without recursion."""
    stack: list[tuple[str | None, Any]] = [(None, value)]
    while stack:
        key, current = stack.pop()
        visit(key, current)
        if isinstance(current, dict):
            stack.extend(current.items())
        elif isinstance(current, list):
            stack.extend((None, item) for item in current)


def _free_of_nul(value: Any) -> Any:
    def visit(key: str | None, item: Any) -> None:
        if (key is not None and "\x00" in key) or (isinstance(item, str) and "\x00" in item):
            raise _refuse("keys and strings must not contain NUL characters (\\u0000)")

    _walk(value, visit)
    return value


Metadata = Annotated[Json, AfterValidator(_free_of_nul)]
"""Stored metadata: free-form JSON, but no NUL character in a key or a string (SQLite's JSON
functions stop reading a key there, so the thread could never be found by it)."""


def _containment(value: Any) -> Any:
    _free_of_nul(value)
    problem = filter_problem(value)
    if problem is not None:
        raise _refuse(problem)
    return value


ContainmentFilter = Annotated[Json, AfterValidator(_containment)]
"""A `metadata` or `values` filter, matched by JSON containment in storage."""

_FILTER_KEY = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")
_STORE_OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte")


def _path_filter(value: Any) -> Any:
    _containment(value)
    for key in value:
        if not _FILTER_KEY.match(key):
            raise _refuse(
                f'{preview(key)} is not a filter key; use letters, digits, "_" and "-", '
                'with "." between nested keys'
            )
    return value


def _store_filter(value: Any) -> Any:
    _path_filter(value)
    for condition in value.values():
        if isinstance(condition, dict):
            for operator in condition:
                if operator not in _STORE_OPERATORS:
                    raise _refuse(
                        f"{preview(operator)} is not an operator; use $eq, $ne, $gt, $gte, "
                        "$lt or $lte"
                    )
    return value


PathFilter = Annotated[Json, AfterValidator(_path_filter)]
"""A checkpoint `metadata` filter: LangGraph's saver reads each key as a JSON path."""
StoreFilter = Annotated[Json, AfterValidator(_store_filter)]
"""A store `filter`: keys are JSON paths into the value; an object value maps operators
($eq, $ne, $gt, $gte, $lt, $lte) to operands."""


def _too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The request body is {size} bytes, over the limit of {limit} bytes "
        "(agent_runtime.max_body_bytes in langgraph.json)"
    )
