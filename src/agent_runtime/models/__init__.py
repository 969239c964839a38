"""Chat models for graphs: the offline stand-in and the `provider:model` loader."""

from __future__ import annotations

from agent_runtime.models.offline import OfflineChatModel
from agent_runtime.models.provider import DEFAULT_MODEL, load_chat_model

__all__ = ["DEFAULT_MODEL", "OfflineChatModel", "load_chat_model"]
