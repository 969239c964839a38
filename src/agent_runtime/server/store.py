"""Store routes: LangGraph's long-term key-value store, the same one graphs reach through
`runtime.store`."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Required

from langgraph.store.base import Item
from pydantic import Field
from starlette.requests import Request
from typing_extensions import TypedDict

from agent_runtime.errors import InvalidRequestError, NotFoundError
from agent_runtime.schema import Json, SearchItem, StoreItem
from agent_runtime.server.routing import Router
from agent_runtime.server.services import services
from agent_runtime.server.validation import (
    Offset,
    StoreFilter,
    TtlMinutes,
    closed,
    parse_namespace,
)

router = Router("store")

Label = Annotated[str, Field(min_length=1, pattern=r"^[^.\u0000]+$")]
Namespace = list[Label]


@closed
class StorePut(TypedDict, total=False):
    namespace: Required[Annotated[Namespace, Field(min_length=1)]]
    key: Required[Annotated[str, Field(min_length=1)]]
    value: Required[Json]
    index: Any
    """False to skip indexing, or the fields to index; None (default) uses the store's config."""
    ttl: TtlMinutes | None
    """Minutes until the item expires; needs a `store.ttl` section in langgraph.json."""


@closed
class StoreDelete(TypedDict):
    namespace: Namespace
    key: Annotated[str, Field(min_length=1)]


@closed
class StoreGetQuery(TypedDict, total=False):
    namespace: Required[str]
    """The namespace's labels joined by dots; empty for the root."""
    key: Required[Annotated[str, Field(min_length=1)]]
    refresh_ttl: bool


@closed
class StoreSearch(TypedDict, total=False):
    namespace_prefix: Namespace
    filter: StoreFilter | None
    limit: Annotated[int, Field(ge=1, le=1000)]
    offset: Offset
    query: str | None
    refresh_ttl: bool | None


@closed
class NamespaceSearch(TypedDict, total=False):
    prefix: Namespace | None
    suffix: Namespace | None
    max_depth: Annotated[int, Field(ge=1, le=1000)] | None
    limit: Annotated[int, Field(ge=1, le=1000)]
    offset: Offset


class SearchResult(TypedDict):
    items: list[SearchItem]


class NamespaceResult(TypedDict):
    namespaces: list[list[str]]


@router.put("/store/items", body=StorePut, status=204)
async def put_item(request: Request, body: StorePut) -> None:
    """Create or replace an item."""
    store = services(request).storage.store
    if body.get("ttl") is not None and not store.supports_ttl:
        raise InvalidRequestError(
            'ttl: this store has no TTL support; add "store": {"ttl": {...}} to langgraph.json',
            code="ttl_not_configured",
        )
    index = body.get("index")
    if index is not None and index is not False and not _is_field_list(index):
        raise InvalidRequestError("index: must be false or a list of field paths")
    await store.aput(
        tuple(body["namespace"]), body["key"], body["value"], index=index, ttl=body.get("ttl")
    )


@router.get("/store/items", query=StoreGetQuery, response=StoreItem)
async def get_item(request: Request, query: StoreGetQuery) -> Json:
    """Get one item by namespace and key."""
    namespace = parse_namespace(query["namespace"], field="namespace")
    item = await services(request).storage.store.aget(
        namespace, query["key"], refresh_ttl=query.get("refresh_ttl")
    )
    if item is None:
        raise NotFoundError(
            f'No item with key "{query["key"]}" in namespace "{query["namespace"]}"',
            code="item_not_found",
        )
    return _item(item)


@router.delete("/store/items", body=StoreDelete, status=204)
async def delete_item(request: Request, body: StoreDelete) -> None:
    """Delete an item; deleting an item that does not exist is not an error."""
    await services(request).storage.store.adelete(tuple(body["namespace"]), body["key"])


@router.post("/store/items/search", body=StoreSearch, response=SearchResult)
async def search_items(request: Request, body: StoreSearch) -> Json:
    """Items under a namespace prefix, filtered by value fields, optionally ranked by a query."""
    found = await services(request).storage.store.asearch(
        tuple(body.get("namespace_prefix") or ()),
        query=body.get("query"),
        filter=body.get("filter"),
        limit=body.get("limit", 10),
        offset=body.get("offset", 0),
        refresh_ttl=body.get("refresh_ttl"),
    )
    return {"items": [_item(item) for item in found]}


@router.post("/store/namespaces", body=NamespaceSearch, response=NamespaceResult)
async def list_namespaces(request: Request, body: NamespaceSearch) -> Json:
    """Namespaces that hold items, filtered by prefix and suffix, cut at a depth."""
    prefix, suffix = body.get("prefix"), body.get("suffix")
    found = await services(request).storage.store.alist_namespaces(
        prefix=tuple(prefix) if prefix else None,
        suffix=tuple(suffix) if suffix else None,
        max_depth=body.get("max_depth"),
        limit=body.get("limit", 100),
        offset=body.get("offset", 0),
    )
    return {"namespaces": [list(namespace) for namespace in found]}


def _is_field_list(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(v, str) and v for v in value)


def _item(item: Item) -> Json:
    data: Json = item.dict()
    for name in ("created_at", "updated_at"):
        moment: datetime = getattr(item, name)
        if moment.tzinfo is None:
            # The SQLite store stamps rows with CURRENT_TIMESTAMP: UTC, written without a zone.
            data[name] = moment.replace(tzinfo=UTC).isoformat()
    return data
