"""How stored checkpoints are decoded: LangGraph's serializer in its strict mode, whatever the
environment says, so no bytes in the database ever import or call code that is not on a list.

The list is LangGraph's own safe types (messages, documents, `Send`, `Interrupt`, datetimes...),
the types the served graphs declare in their state, input, output and context schemas (found as
LangGraph finds them under `LANGGRAPH_STRICT_MSGPACK`), and what `checkpointer.serde.
allowed_json_modules` in langgraph.json adds. Anything else decodes to its plain data, as
LangGraph's strict mode does; pickle is never read. A checkpoint that cannot be decoded at all
raises `CheckpointDecodeError` naming its thread, from the saver, so one bad row never takes
more than its own thread down.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from typing import Any

from langchain_core.runnables import RunnableConfig
from langgraph._internal._serde import build_serde_allowlist
from langgraph.checkpoint.base import CheckpointTuple, DeltaChannelHistory
from langgraph.checkpoint.serde.jsonplus import JsonPlusSerializer
from langgraph.graph import StateGraph
from langgraph.graph.state import CompiledStateGraph

from agent_runtime.errors import CheckpointDecodeError

TypeKey = tuple[str, ...]
"""`(module, name)` for msgpack, `(*module parts, name)` for LangChain's JSON constructors."""


class UndecodableBlobError(ValueError):
    """Raised by the serializer; the saver adds the thread and raises `CheckpointDecodeError`."""


class StrictSerializer(JsonPlusSerializer):
    """LangGraph's serializer with an explicit allowlist (never the permissive default) and
    decode failures of any kind turned into `UndecodableBlobError`."""

    def __init__(self, *, allowed: Iterable[TypeKey] = (), json_allowed: Iterable[TypeKey] = ()):
        # An empty allowlist still means strict: `None` is LangGraph's "safe types only".
        super().__init__(
            pickle_fallback=False,
            allowed_msgpack_modules=tuple(allowed) or None,
            allowed_json_modules=tuple(json_allowed) or None,
        )

    def loads_typed(self, data: tuple[str, bytes]) -> Any:
        try:
            return super().loads_typed(data)
        except UndecodableBlobError:
            raise
        except Exception as exc:
            kind = data[0] if isinstance(data, tuple) and data else "?"
            raise UndecodableBlobError(
                f"a {kind!s:.20} value cannot be decoded: {type(exc).__name__}: {exc!s:.200}"
            ) from exc


def graph_types(targets: Iterable[Any]) -> set[TypeKey]:
    """The types these graphs declare (schemas and channels), plus LangChain's messages."""
    schemas: list[Any] = []
    channels: dict[str, Any] = {}
    for target in targets:
        builder = target.builder if isinstance(target, CompiledStateGraph) else target
        if not isinstance(builder, StateGraph):
            continue
        schemas.extend((builder.state_schema, builder.input_schema, builder.output_schema))
        if builder.context_schema is not None:
            schemas.append(builder.context_schema)
        schemas.extend(node.input_schema for node in builder.nodes.values())
        for branches in builder.branches.values():
            schemas.extend(b.input_schema for b in branches.values() if b.input_schema)
        channels.update({f"{id(builder)}:{k}": v for k, v in builder.channels.items()})
    return build_serde_allowlist(schemas=schemas, channels=channels)


class GuardedDecoding:
    """Mixed into a checkpoint saver: a blob its serializer cannot decode becomes a
    `CheckpointDecodeError` naming the thread."""

    async def aget_tuple(self, config: RunnableConfig) -> CheckpointTuple | None:
        try:
            found: CheckpointTuple | None = await super().aget_tuple(config)  # type: ignore[misc]
        except UndecodableBlobError as exc:
            raise _decode_error(config, exc) from exc
        return None if found is None else _checked(found)

    async def alist(
        self, config: RunnableConfig | None, **kwargs: Any
    ) -> AsyncIterator[CheckpointTuple]:
        listing = super().alist(config, **kwargs)  # type: ignore[misc]
        try:
            async for item in listing:
                yield _checked(item)
        except UndecodableBlobError as exc:
            raise _decode_error(config, exc) from exc

    async def aget_delta_channel_history(
        self, *, config: RunnableConfig, channels: Sequence[str]
    ) -> Mapping[str, DeltaChannelHistory]:
        try:
            history: Mapping[str, DeltaChannelHistory] = await super().aget_delta_channel_history(  # type: ignore[misc]
                config=config, channels=channels
            )
        except UndecodableBlobError as exc:
            raise _decode_error(config, exc) from exc
        return history


_CHECKPOINT_KEYS = ("v", "id", "channel_values", "channel_versions", "versions_seen")


def _checked(item: CheckpointTuple) -> CheckpointTuple:
    # A blob can decode to something that is not a checkpoint at all (a refused constructor
    # decodes to None); LangGraph would then fail on a missing key, far from the cause.
    checkpoint: Any = item.checkpoint
    if not isinstance(checkpoint, dict) or any(key not in checkpoint for key in _CHECKPOINT_KEYS):
        shown = type(checkpoint).__name__
        raise _decode_error(item.config, UndecodableBlobError(f"it decodes to a {shown}"))
    return item


def _decode_error(config: RunnableConfig | None, exc: UndecodableBlobError) -> Exception:
    thread_id = ((config or {}).get("configurable") or {}).get("thread_id")
    whose = f'Thread "{thread_id}"' if thread_id else "A thread"
    return CheckpointDecodeError(
        f"{whose} has a stored checkpoint that cannot be decoded ({exc}); other threads are "
        "not affected. Restore the thread from a backup or delete it."
    )
