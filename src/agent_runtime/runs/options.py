"""What a run was asked to do, typed: parsed once from the request, stored as JSON text in the
run's `kwargs`, and read back by the run manager and executor. Each default is stated here only.
No IO, and nothing about HTTP beyond the names of the request's fields."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, cast

from agent_runtime.runs.shaping import API_STREAM_MODES, ApiStreamMode
from agent_runtime.schema import Json, MultitaskStrategy

NodeNames = Literal["*"] | tuple[str, ...]
"""Nodes to interrupt at: every node (`"*"`) or these."""
Durability = Literal["sync", "async", "exit"]

# Request fields that are not run options: they go to the run row or the thread instead.
_NOT_OPTIONS = frozenset({"assistant_id", "metadata", "tags", "checkpoint_during"})


@dataclass(frozen=True, slots=True, kw_only=True)
class RunOptions:
    """The options of one run, as accepted from its request (the wire's `Run.kwargs`)."""

    input: Any = None
    """The graph's input; dropped when a `command` comes (the command wins)."""
    command: Json | None = None
    """`resume`, `update` and `goto` for LangGraph's `Command`."""
    config: Json = field(default_factory=dict)
    """Overlaid on the assistant's config."""
    context: Json = field(default_factory=dict)
    """Merged over the assistant's context."""
    checkpoint: Json | None = None
    checkpoint_id: str | None = None
    """Start from this past checkpoint (else `checkpoint.checkpoint_id`)."""
    interrupt_before: NodeNames | None = None
    interrupt_after: NodeNames | None = None
    stream_mode: tuple[ApiStreamMode, ...] = ("values",)
    stream_subgraphs: bool = False
    stream_resumable: bool = False
    on_disconnect: Literal["cancel", "continue"] = "continue"
    multitask_strategy: MultitaskStrategy = "enqueue"
    if_not_exists: Literal["create", "reject"] = "reject"
    after_seconds: float | None = None
    on_completion: Literal["delete", "keep"] = "delete"
    """For a stateless run: delete its thread when it ends, or keep it (hidden)."""
    durability: Durability | None = None
    """None leaves LangGraph's default."""
    webhook: str | None = None
    strict_resume: bool = False
    stateless: bool = False
    """The run has a thread of its own, made for it (`/runs...`)."""
    langsmith_tracer: Json | None = None
    """`project_name` and `example_id` for the run's LangSmith trace."""
    trace_context: Json | None = None
    """The W3C trace context (`traceparent`, `tracestate`) of the request that created the
    run, set by the server when it exports OpenTelemetry traces: the process that executes
    the run continues that trace."""
    named: frozenset[str] = field(default=frozenset(), compare=False)
    """The fields the request named: `to_json` writes these even when they hold the default,
    so `Run.kwargs` shows what the client sent."""

    @classmethod
    def from_request(cls, body: Mapping[str, Any], *, stateless: bool = False) -> RunOptions:
        """The options of a validated run-creating request body."""
        given = {k: v for k, v in body.items() if k not in _NOT_OPTIONS}
        if body.get("command"):
            # The command wins and the input is dropped, as on LangGraph Platform: agent-chat-ui
            # resumes an interrupt with `{"input": {}, "command": {"resume": ...}}`.
            given.pop("input", None)
        if "checkpoint_during" in body and "durability" not in body:
            given["durability"] = "async" if body["checkpoint_during"] else "exit"
        given["stateless"] = stateless
        return cls.from_json(given)

    @classmethod
    def from_json(cls, stored: Mapping[str, Any]) -> RunOptions:
        """Options from a run's stored `kwargs`; missing keys take the defaults and unknown
        keys (from another release) are ignored."""
        known = {f.name for f in fields(cls)} - {"named"}
        values: dict[str, Any] = {k: v for k, v in stored.items() if k in known}
        if "stream_mode" in values:
            values["stream_mode"] = _stream_modes(values["stream_mode"])
            if not values["stream_mode"]:
                del values["stream_mode"]  # none named: the default
        for name in ("interrupt_before", "interrupt_after"):
            if isinstance(values.get(name), list):
                values[name] = tuple(values[name])
        for name in ("config", "context"):
            if name in values and not isinstance(values[name], dict):
                del values[name]
        return cls(**values, named=frozenset(values))

    def to_json(self) -> Json:
        """The stored and wire shape: every field named or set away from its default, plus
        `stream_mode` and `stateless` always."""
        out: Json = {}
        for f in fields(self):
            if f.name == "named":
                continue
            value = getattr(self, f.name)
            default = f.default_factory() if callable(f.default_factory) else f.default
            if f.name in self.named or value != default or f.name in _ALWAYS:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out


_ALWAYS = frozenset({"stream_mode", "stateless"})


def _stream_modes(value: Any) -> tuple[ApiStreamMode, ...]:
    modes = [value] if isinstance(value, str) else list(value or ())
    # Each mode once, in the order asked.
    return cast(
        tuple[ApiStreamMode, ...], tuple(m for m in dict.fromkeys(modes) if m in API_STREAM_MODES)
    )
