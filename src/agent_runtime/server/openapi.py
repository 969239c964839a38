"""Builds the OpenAPI document from the routers' declared operations, so it can never miss a
route. Schemas come from the same TypedDicts that validate requests."""

from __future__ import annotations

import re
from collections.abc import Iterable
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


def _operation(op: Operation, schemas: dict[Any, Any], components: Json) -> Json:
    spec: Json = {
        "operationId": op.handler.__name__,
        "tags": [op.tag],
        "summary": op.summary,
    }
    if op.description:
        spec["description"] = op.description
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
        for name in re.findall(r"{(\w+)}", op.path)
    ]
    query = schemas.get(((id(op), "query"), "validation"))
    if query is not None and "$ref" in query:
        # Query parameters are listed one by one, so a named shape is opened up.
        query = components.get(query["$ref"].rsplit("/", 1)[-1], {})
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
        spec["requestBody"] = {
            "required": False,
            "content": {"application/json": {"schema": body}},
        }
    response = schemas.get(((id(op), "response"), "serialization"))
    success: Json = {"description": "Success"}
    if op.status != 204:
        success["content"] = {"application/json": {"schema": response or {}}}
    error = {
        "description": "Error",
        "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
    }
    spec["responses"] = {str(op.status): success, "404": error, "409": error, "422": error}
    return spec
