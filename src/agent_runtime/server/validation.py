"""Request parsing: JSON bodies with a size limit, shapes checked against TypedDicts, path ids.
Every failure becomes an `InvalidRequestError` or `PayloadTooLargeError` naming the field."""

from __future__ import annotations

from functools import cache
from typing import Any, TypeVar
from uuid import UUID

import orjson
from pydantic import ConfigDict, TypeAdapter, ValidationError, with_config
from starlette.requests import Request

from agent_runtime.errors import InvalidRequestError, PayloadTooLargeError

_CLOSED = ConfigDict(extra="forbid")
_Shape = TypeVar("_Shape", bound=type)


def closed(shape: _Shape) -> _Shape:
    """Mark a request TypedDict so that a field it does not declare is a 422, not ignored."""
    return with_config(_CLOSED)(shape)


async def read_json(request: Request, limit: int) -> Any:
    """The request body as JSON, whatever its `Content-Type`; an empty body reads as `{}`.

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
    if not raw.strip():
        return {}
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequestError(
            f"The request body is not valid JSON: {exc}", code="invalid_json"
        ) from exc


def validate(shape: Any, data: Any, *, where: str) -> Any:
    """Check `data` against a TypedDict (or any type pydantic understands) and return it."""
    try:
        return _adapter(shape).validate_python(data)
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


def preview(value: Any) -> str:
    """A value as short JSON, for error messages."""
    try:
        text = orjson.dumps(value).decode()
    except TypeError:
        text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


@cache
def _adapter(shape: Any) -> TypeAdapter[Any]:
    return TypeAdapter(shape)


def parse_uuid(value: str, *, field: str) -> str:
    """A UUID in canonical form, or a 422 naming the field."""
    try:
        return str(UUID(value))
    except ValueError:
        raise InvalidRequestError(
            f'{field} must be a UUID, got "{value}"', code="invalid_id"
        ) from None


def _too_large(size: int, limit: int) -> PayloadTooLargeError:
    return PayloadTooLargeError(
        f"The request body is {size} bytes, over the limit of {limit} bytes "
        "(agent_runtime.max_body_bytes in langgraph.json)"
    )
