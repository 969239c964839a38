"""The records storage takes for crons: a new cron, a patch, a query. Plain frozen data; no IO.
When a cron fires next is decided in `crons/`, never by storage."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from agent_runtime.schema import Json, OnRunCompleted, SortOrder
from agent_runtime.storage.filters import AuthFilter

CronSortBy = Literal[
    "cron_id", "assistant_id", "thread_id", "created_at", "updated_at", "next_run_date",
    "end_time",
]  # fmt: skip


@dataclass(frozen=True, slots=True, kw_only=True)
class NewCron:
    """A cron to store, its first fire already computed."""

    cron_id: str
    assistant_id: str
    thread_id: str | None
    user_id: str | None
    schedule: str
    timezone: str | None
    end_time: datetime | None
    payload: Json
    metadata: Json
    on_run_completed: OnRunCompleted | None
    enabled: bool
    next_run_date: datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class CronPatch:
    """What an update changes; None leaves a field as it is."""

    schedule: str | None = None
    timezone: str | None = None
    end_time: datetime | None = None
    clear_end_time: bool = False
    """Set `end_time` to None (the cron runs for ever)."""
    payload: Json | None = None
    metadata: Json | None = None
    on_run_completed: OnRunCompleted | None = None
    enabled: bool | None = None
    reschedule: bool = False
    """Set `next_run_date` to `next_run_date` (None included): the schedule, zone, end or
    enabled flag changed."""
    next_run_date: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class CronQuery:
    """Filters for searching and counting crons; every filter must hold."""

    assistant_id: str | None = None
    thread_id: str | None = None
    enabled: bool | None = None
    metadata: Json | None = None
    """JSON containment: the cron's metadata holds every key with an equal value."""
    auth: AuthFilter | None = None
    """The authorization handler's filter on metadata, as on threads and assistants."""
    limit: int = 10
    offset: int = 0
    sort_by: CronSortBy = "created_at"
    sort_order: SortOrder = "desc"
