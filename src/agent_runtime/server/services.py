"""What every route reaches through `request.app.state.services`: config, storage, graphs."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.requests import Request

from agent_runtime.config import RuntimeConfig
from agent_runtime.registry import GraphRegistry
from agent_runtime.storage.base import Storage
from agent_runtime.streaming import EventLog
from agent_runtime.streaming.slots import StreamSlots

if TYPE_CHECKING:
    from agent_runtime.runs.manager import RunManager


@dataclass(frozen=True, slots=True, kw_only=True)
class Services:
    config: RuntimeConfig
    storage: Storage
    registry: GraphRegistry
    events: EventLog
    runs: RunManager
    streams: StreamSlots


def services(request: Request) -> Services:
    found: Services = request.app.state.services
    return found
