"""One fire of a cron: the run it makes, through the same path as a run request
(`runs.create.new_run`, then `RunManager.create`), so it is an ordinary run.

Its ids come from the cron and the fire's time: a process that takes over the fire of one that
died mid-way makes the same run again, which storage refuses (`run_exists`) if it was made."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from agent_runtime.clock import Clock
from agent_runtime.config import RuntimeConfig
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.create import new_run
from agent_runtime.runs.manager import RunManager
from agent_runtime.schema import Cron, Run
from agent_runtime.storage.base import Storage

_FIRES = uuid.UUID("6f1f8f43-5a0c-4f8e-9a57-3c2b8a0c1e5d")
"""The namespace of the ids a fire derives (uuid5)."""


def fire_ids(cron: Mapping[str, object], fired: datetime) -> tuple[str, str]:
    """The run id and the thread id (a stateless cron's new thread) of the fire at `fired`."""
    key = f"{cron['cron_id']}@{fired.isoformat()}"
    run_id = str(uuid.uuid5(_FIRES, key))
    thread_id = cron["thread_id"] or str(uuid.uuid5(_FIRES, key + "/thread"))
    return run_id, str(thread_id)


async def fire_cron(
    cron: Cron,
    fired: datetime,
    *,
    storage: Storage,
    registry: GraphRegistry,
    config: RuntimeConfig,
    clock: Clock,
    runs: RunManager,
) -> Run:
    """Queue the run of the cron's fire at `fired`, on its thread or on a new one.

    A stateless cron's thread carries the cron's metadata (as a stateless run's carries the
    run's) and, when kept (`on_run_completed: keep`), shows in thread search.

    Raises:
        ConflictError: the run exists already (`run_exists`: this fire was made), or the
            thread is busy and the strategy is `reject`, or the thread is locked.
        InvalidRequestError, NotFoundError: the payload no longer makes a run (its assistant
            was deleted, a node it names is gone).
    """
    stateless = cron["thread_id"] is None
    run_id, thread_id = fire_ids(cron, fired)
    body = dict(cron["payload"])
    if stateless:
        body["on_completion"] = cron["on_run_completed"] or "delete"
    new, assistant = await new_run(
        body,
        thread_id=thread_id,
        stateless=stateless,
        storage=storage,
        registry=registry,
        config=config,
        clock=clock,
    )
    new = replace(new, run_id=run_id)
    if stateless:
        new = replace(
            new,
            thread_metadata=dict(cron["metadata"]),
            thread_visible=cron["on_run_completed"] == "keep",
        )
    return await runs.create(new, assistant=assistant)
