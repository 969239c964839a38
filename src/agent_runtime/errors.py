"""The exception tree; every error the API can answer with, and the HTTP status it carries.

    AgentRuntimeError (500, "internal_error")
    ├── ConfigError                 langgraph.json or flags are wrong (the CLI exits 2)
    │   └── GraphLoadError          a graph spec failed to import or is not a graph
    ├── NotFoundError (404)         an id names nothing
    ├── ConflictError (409)         duplicates, busy threads, read-only threads
    ├── InvalidRequestError (422)   malformed JSON, schema violations, bad ids
    ├── PayloadTooLargeError (413)  a body over the configured limit
    │   └── MessageLimitError       a run would leave its thread over max_messages_per_thread
    ├── TooManyRequestsError (429)  over a cap on what one client can take; says when to retry
    ├── EventsDroppedError (410)    a stream resumes before the oldest event its run still keeps
    ├── CheckpointDecodeError       a stored checkpoint of one thread cannot be decoded
    └── StorageError (503)          the database could not be reached or written

Routes raise these; one handler in `server.app` turns them into `{"detail", "code"}` bodies.
"""

from __future__ import annotations

from typing import ClassVar


class AgentRuntimeError(Exception):
    """Base of every error agent-runtime raises on purpose."""

    status_code: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, detail: str, *, code: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.code = code or self.default_code


class ConfigError(AgentRuntimeError):
    """The configuration (langgraph.json, environment or flags) cannot be used."""

    default_code = "config_error"


class GraphLoadError(ConfigError):
    """A graph named in the configuration could not be imported or compiled."""

    default_code = "graph_load_error"


class NotFoundError(AgentRuntimeError):
    """An assistant, thread, run, checkpoint or store item does not exist."""

    status_code = 404
    default_code = "not_found"


class ConflictError(AgentRuntimeError):
    """The request clashes with what is stored: a duplicate id, a busy or read-only thread."""

    status_code = 409
    default_code = "conflict"


class InvalidRequestError(AgentRuntimeError):
    """The request body, a query parameter or a path id is malformed."""

    status_code = 422
    default_code = "invalid_request"


class PayloadTooLargeError(AgentRuntimeError):
    """The request body is over the configured size limit."""

    status_code = 413
    default_code = "payload_too_large"


class TooManyRequestsError(AgentRuntimeError):
    """A cap on what one client may hold is reached (queued runs, open streams); the answer
    carries `Retry-After`."""

    status_code = 429
    default_code = "too_many_requests"

    def __init__(self, detail: str, *, code: str | None = None, retry_after: int = 5) -> None:
        super().__init__(detail, code=code)
        self.retry_after = retry_after
        """Seconds the client should wait before trying again."""


class StorageError(AgentRuntimeError):
    """The storage backend failed; the request may be retried."""

    status_code = 503
    default_code = "storage_unavailable"


class EventsDroppedError(AgentRuntimeError):
    """A subscriber needs events that the run's log has already dropped to stay under its cap."""

    status_code = 410
    default_code = "events_dropped"

    def __init__(self, detail: str, *, first_available: int) -> None:
        super().__init__(detail)
        self.first_available = first_available


class CheckpointDecodeError(AgentRuntimeError):
    """A stored checkpoint or pending write of a thread cannot be decoded; other threads are
    not affected."""

    default_code = "checkpoint_unreadable"


class MessageLimitError(PayloadTooLargeError):
    """A run would leave more messages in its thread than the configured limit."""

    default_code = "too_many_messages"

    def __init__(self, count: int, limit: int) -> None:
        super().__init__(
            f"The thread would hold {count} messages, over the limit of {limit} "
            "(agent_runtime.limits.max_messages_per_thread in langgraph.json)"
        )
