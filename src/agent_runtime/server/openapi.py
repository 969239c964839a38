"""Builds the OpenAPI document from the routers' declared operations, so it can never miss a
route. Schemas come from the same TypedDicts that validate requests."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import TypeAdapter

from agent_runtime import __version__
from agent_runtime.schema import Json
from agent_runtime.server.routing import Operation

_ERROR = {
    "type": "object",
    "properties": {"detail": {"type": "string"}, "code": {"type": "string"}},
    "required": ["detail"],
}


_built: dict[tuple[Any, ...], Json] = {}


def shared_openapi(operations: Sequence[Operation]) -> Json:
    """`build_openapi`, once per process for the same operations (pydantic takes some hundreds
    of milliseconds to build the schemas); callers must not change what it returns."""
    key = tuple((op.method, op.path, op.handler) for op in operations)
    found = _built.get(key)
    if found is None:
        found = _built[key] = build_openapi(operations)
    return found


def build_openapi(operations: Iterable[Operation]) -> Json:
    operations = list(operations)
    keyed: list[tuple[Any, Any, TypeAdapter[Any]]] = []
    for op in operations:
        for role in ("body", "query", "response"):
            shape = getattr(op, role)
            if shape is not None:
                mode = "serialization" if role == "response" else "validation"
                keyed.append(((id(op), role), mode, TypeAdapter(shape)))
    schemas, definitions = TypeAdapter.json_schemas(
        keyed, ref_template="#/components/schemas/{model}"
    )
    components = definitions.get("$defs", {})
    paths: Json = {}
    for op in operations:
        path = paths.setdefault(op.path, {})
        path[op.method.lower()] = _operation(op, schemas, components)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "agent-runtime",
            "version": __version__,
            "description": "The LangGraph Server API, served by agent-runtime.",
        },
        "paths": paths,
        "components": {
            "schemas": {**components, "Error": _ERROR},
        },
    }


_UUID: Json = {"type": "string", "format": "uuid"}
_PATH_PARAMETERS: dict[str, Json] = {
    "thread_id": _UUID,
    "run_id": _UUID,
    "checkpoint_id": {
        **_UUID,
        "pattern": "^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$",
    },
    "assistant_id": {
        "type": "string",
        "description": "An assistant id (a UUID), or a graph name for that graph's default "
        "assistant.",
    },
}


def _operation(op: Operation, schemas: dict[Any, Any], components: Json) -> Json:
    spec: Json = {
        "operationId": op.handler.__name__,
        "tags": [op.tag],
        "summary": op.summary,
    }
    if op.description:
        spec["description"] = op.description
    parameters = [
        {
            "name": name,
            "in": "path",
            "required": True,
            "schema": _PATH_PARAMETERS.get(name, {"type": "string"}),
        }
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    query = schemas.get(((id(op), "query"), "validation"))
    if query is not None and "$ref" in query:
        # Query parameters are listed one by one, so a named shape is opened up.
        query = _resolve(query, components)
    if query is not None:
        required = set(query.get("required", []))
        for name, schema in query.get("properties", {}).items():
            parameters.append(
                {"name": name, "in": "query", "required": name in required, "schema": schema}
            )
    if parameters:
        spec["parameters"] = parameters
    body = schemas.get(((id(op), "body"), "validation"))
    if body is not None:
        resolved = _resolve(body, components)
        spec["requestBody"] = {
            # An empty body reads as `{}`, so a body is required only when `{}` is refused.
            "required": bool(resolved.get("required")) or resolved.get("type") == "array",
            "content": {"application/json": {"schema": body}},
        }
    response = schemas.get(((id(op), "response"), "serialization"))
    if response is not None and op.selects:
        response = _selection(response, components)
    responses: Json = {str(op.status): _success(op.status, op.media_type, response)}
    for status, shape in op.more_statuses.items():
        extra = (
            None
            if shape is None
            else TypeAdapter(shape).json_schema(
                ref_template="#/components/schemas/{model}", mode="serialization"
            )
        )
        if extra is not None:
            components.update(extra.pop("$defs", {}))
        responses[str(status)] = _success(status, "application/json", extra)
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    codes = ["404", "409", "422", "503"]
    if body is not None:
        codes.insert(2, "413")
    responses.update({code: error for code in codes})
    spec["responses"] = responses
    return spec


def _success(status: int, media_type: str, schema: Json | None) -> Json:
    success: Json = {"description": "Success"}
    if status == 204:
        return success
    if media_type != "application/json":
        # Server-sent events and pages: text whose shape JSON Schema cannot describe.
        schema = {"type": "string"}
    success["content"] = {media_type: {"schema": schema or {}}}
    return success


def _resolve(schema: Json, components: Json) -> Json:
    if "$ref" in schema:
        found: Json = components.get(schema["$ref"].rsplit("/", 1)[-1], {})
        return found
    return schema


def _selection(schema: Json, components: Json) -> Json:
    """The schema of a response that honoured `select`: the same fields, none required."""
    if schema.get("type") == "array" and "items" in schema:
        return {**schema, "items": _selection(schema["items"], components)}
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        partial = f"{name}Selection"
        if partial not in components:
            shape = {k: v for k, v in components[name].items() if k != "required"}
            components[partial] = {**shape, "title": partial}
        return {"$ref": f"#/components/schemas/{partial}"}
    return {k: v for k, v in schema.items() if k != "required"}
