"""What a cron request becomes: a new cron (checked as the run it will make, first fire
computed) or a patch of one (rescheduled when its timing changed). Takes its collaborators
explicitly and never sees an HTTP request; the route has already put the authenticated user
into the payload's config."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from agent_runtime.clock import Clock
from agent_runtime.config import RuntimeConfig
from agent_runtime.crons.schedule import check_schedule, next_fire, zone_of
from agent_runtime.encoding import preview
from agent_runtime.errors import InvalidRequestError
from agent_runtime.limits import check_metadata_size
from agent_runtime.registry import GraphRegistry
from agent_runtime.runs.create import new_run
from agent_runtime.schema import Cron, Json
from agent_runtime.storage.base import Storage
from agent_runtime.storage.cron_records import CronPatch, NewCron
from agent_runtime.user import AUTH_KEYS

RUN_FIELDS = (
    "input", "config", "context", "metadata", "interrupt_before", "interrupt_after", "webhook",
    "multitask_strategy", "stream_mode", "stream_subgraphs", "stream_resumable", "durability",
    "checkpoint_during",
)  # fmt: skip
"""The fields of a cron request that describe the run each fire makes (its `payload`)."""


def run_payload(body: Mapping[str, Any]) -> Json:
    """The run fields of a cron request."""
    return {key: body[key] for key in RUN_FIELDS if key in body}


async def new_cron(
    body: Mapping[str, Any],
    payload: Json,
    *,
    thread_id: str | None,
    user_id: str | None,
    storage: Storage,
    registry: GraphRegistry,
    config: RuntimeConfig,
    clock: Clock,
) -> NewCron:
    """The cron a create request describes, its payload checked as the run a fire makes.

    Raises:
        InvalidRequestError: a bad schedule, time zone or end time, a schedule that names no
            time, or a run field that cannot be honoured.
        NotFoundError: the assistant does not exist.
        PayloadTooLargeError: the metadata is over `limits.max_metadata_bytes`.
    """
    schedule: str = body["schedule"]
    timezone: str | None = body.get("timezone")
    check_schedule(schedule)
    zone_of(timezone)
    end_time = parse_end_time(body.get("end_time"))
    metadata = dict(body.get("metadata") or {})
    check_metadata_size(metadata, limit=config.limits.max_metadata_bytes, owner="run")
    payload = {**payload, "assistant_id": body["assistant_id"], "metadata": metadata}
    payload["assistant_id"] = await check_payload(
        payload, thread_id=thread_id, storage=storage, registry=registry, config=config, clock=clock
    )
    now = clock.now()
    if next_fire(schedule, timezone, now) is None:
        raise InvalidRequestError(
            f"schedule: {preview(schedule)} names no time that can come (such as February 30)",
            code="invalid_schedule",
        )
    return NewCron(
        cron_id=str(uuid.uuid4()),
        assistant_id=payload["assistant_id"],
        thread_id=thread_id,
        user_id=user_id,
        schedule=schedule,
        timezone=timezone,
        end_time=end_time,
        payload=payload,
        metadata=metadata,
        on_run_completed=None if thread_id else body.get("on_run_completed", "delete"),
        enabled=body.get("enabled", True),
        next_run_date=next_fire(schedule, timezone, now, end_time=end_time),
    )


async def cron_patch(
    current: Cron,
    body: Mapping[str, Any],
    *,
    storage: Storage,
    registry: GraphRegistry,
    config: RuntimeConfig,
    clock: Clock,
) -> CronPatch:
    """The change an update request asks of `current`. A new schedule, time zone or end time,
    or enabling a disabled cron, computes the next fire from now: no fire missed while it was
    disabled is made up.

    Raises:
        InvalidRequestError: as for `new_cron`.
        PayloadTooLargeError: the metadata would be over `limits.max_metadata_bytes`.
    """
    schedule = body.get("schedule", current["schedule"])
    timezone = body.get("timezone", current["timezone"])
    check_schedule(schedule)
    zone_of(timezone)
    end_time = parse_end_time(body["end_time"]) if "end_time" in body else current["end_time"]
    metadata = None
    if "metadata" in body:
        metadata = {**current["metadata"], **(body["metadata"] or {})}
        check_metadata_size(metadata, limit=config.limits.max_metadata_bytes, owner="run")
    fields = run_payload(body)
    payload = None
    if fields or metadata is not None:
        payload = {**current["payload"], **fields}
        if "config" in fields:
            payload["config"] = _keep_user(current["payload"].get("config"), fields["config"])
        if metadata is not None:
            payload["metadata"] = metadata
        await check_payload(
            payload,
            thread_id=current["thread_id"],
            storage=storage,
            registry=registry,
            config=config,
            clock=clock,
        )
    enabling = body.get("enabled") is True and not current["enabled"]
    reschedule = enabling or any(k in body for k in ("schedule", "timezone", "end_time"))
    if reschedule and next_fire(schedule, timezone, clock.now()) is None:
        raise InvalidRequestError(
            f"schedule: {preview(schedule)} names no time that can come (such as February 30)",
            code="invalid_schedule",
        )
    return CronPatch(
        schedule=body.get("schedule"),
        timezone=body.get("timezone"),
        end_time=end_time if "end_time" in body else None,
        clear_end_time="end_time" in body and end_time is None,
        payload=payload,
        metadata=metadata,
        on_run_completed=None if current["thread_id"] else body.get("on_run_completed"),
        enabled=body.get("enabled"),
        reschedule=reschedule,
        next_run_date=next_fire(schedule, timezone, clock.now(), end_time=end_time)
        if reschedule
        else None,
    )


async def check_payload(
    payload: Json,
    *,
    thread_id: str | None,
    storage: Storage,
    registry: GraphRegistry,
    config: RuntimeConfig,
    clock: Clock,
) -> str:
    """Check the payload as the run a fire would make (the same checks as a run request) and
    return its assistant's id (a graph name resolved).

    Raises:
        InvalidRequestError, NotFoundError: as `runs.create.new_run`.
    """
    _, assistant = await new_run(
        payload,
        thread_id=thread_id or str(uuid.uuid4()),
        stateless=thread_id is None,
        storage=storage,
        registry=registry,
        config=config,
        clock=clock,
    )
    return assistant["assistant_id"]


def parse_end_time(value: str | None) -> datetime | None:
    """An ISO 8601 moment (UTC when it names no offset), or None.

    Raises:
        InvalidRequestError: not an ISO 8601 date and time.
    """
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidRequestError(
            f"end_time: {preview(value)} is not an ISO 8601 date and time, such as "
            '"2030-01-01T00:00:00+00:00"',
            code="invalid_end_time",
        ) from None


def _keep_user(old: Any, new: Any) -> Json:
    # The cron runs as the user who created it: an update's config cannot change who that is.
    kept = {k: v for k, v in ((old or {}).get("configurable") or {}).items() if k in AUTH_KEYS}
    config = dict(new or {})
    configurable = {
        k: v for k, v in (config.get("configurable") or {}).items() if k not in AUTH_KEYS
    }
    configurable.update(kept)
    if configurable or "configurable" in config:
        config["configurable"] = configurable
    return config
