"""LangGraph's StateSnapshot as the JSON the API sends (`ThreadState` in langgraph_sdk), and the
check of a checkpoint id. Pure shaping: no storage, no graphs, no requests."""

from __future__ import annotations

import re
from typing import Any, cast

from langchain_core.runnables import RunnableConfig
from langgraph.types import PregelTask, StateSnapshot

from agent_runtime.encoding import preview, to_jsonable
from agent_runtime.errors import InvalidRequestError
from agent_runtime.schema import Json

# LangGraph's checkpoint ids are UUID-shaped (version 6, time-ordered).
_CHECKPOINT_ID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")


def check_checkpoint_id(value: Any, *, field: str) -> str:
    """A well-formed checkpoint id, or a 422 naming the field.

    Raises:
        InvalidRequestError: the value is not a checkpoint id.
    """
    if not isinstance(value, str) or not _CHECKPOINT_ID.match(value):
        raise InvalidRequestError(
            f"{field} must be a checkpoint id such as 1f1e57ab-def0-6c4a-bfff-a3a22c06468a, "
            f"got {preview(value)}",
            code="invalid_checkpoint_id",
        )
    return value


def checkpoint_json(config: RunnableConfig | None) -> Json | None:
    if not config:
        return None
    configurable = config.get("configurable", {})
    result: Json = {
        "thread_id": configurable.get("thread_id"),
        "checkpoint_ns": configurable.get("checkpoint_ns", ""),
        "checkpoint_id": configurable.get("checkpoint_id"),
    }
    if configurable.get("checkpoint_map"):
        result["checkpoint_map"] = to_jsonable(configurable["checkpoint_map"])
    return result


def snapshot_json(snapshot: StateSnapshot) -> Json:
    """The snapshot as `ThreadState`: values, next, tasks (with their interrupts and, when
    asked for, their subgraph's state), checkpoint, metadata, created_at, parent_checkpoint."""
    return {
        # Left as they are for the response's one encoding, where messages the checkpoint
        # cache shares come as their kept JSON. Encoded, parsed and encoded again, a history
        # page of ten 600-message states took twice as long (23 ms against 11).
        "values": snapshot.values if snapshot.values is not None else {},
        "next": list(snapshot.next),
        "tasks": [_task_json(task) for task in snapshot.tasks],
        "checkpoint": checkpoint_json(snapshot.config),
        "metadata": to_jsonable(snapshot.metadata or {}),
        "created_at": snapshot.created_at,
        "parent_checkpoint": checkpoint_json(snapshot.parent_config),
        "interrupts": [to_jsonable(i) for i in snapshot.interrupts],
    }


def _task_json(task: PregelTask) -> Json:
    state: Any = task.state
    return {
        "id": task.id,
        "name": task.name,
        "path": to_jsonable(task.path),
        "error": None if task.error is None else f"{type(task.error).__name__}: {task.error}",
        "interrupts": [to_jsonable(i) for i in task.interrupts],
        "checkpoint": checkpoint_json(cast(RunnableConfig, state))
        if isinstance(state, dict)
        else None,
        "state": snapshot_json(state) if isinstance(state, StateSnapshot) else None,
        "result": to_jsonable(task.result) if task.result is not None else None,
    }


def empty_snapshot(thread_id: str) -> Json:
    """What a thread with no checkpoint looks like."""
    return {
        "values": {},
        "next": [],
        "tasks": [],
        "checkpoint": {"thread_id": thread_id, "checkpoint_ns": "", "checkpoint_id": None},
        "metadata": {},
        "created_at": None,
        "parent_checkpoint": None,
        "interrupts": [],
    }


def select_fields(snapshot: Json, select: list[str] | None) -> Json:
    return {key: snapshot.get(key) for key in select} if select else snapshot
