"""A run's creation on SQLite, one write transaction (`create_run_rows`), and the two forms
every write of runs shares: a run row's time stamp and a thread's TTL expiry."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from agent_runtime.encoding import dumps_text, loads
from agent_runtime.errors import ConflictError, InvalidRequestError
from agent_runtime.lifecycle import require_open
from agent_runtime.storage.multitask import check_active
from agent_runtime.storage.records import (
    AssistantChangedError,
    AssistantStamp,
    Claim,
    NewRun,
    ThreadBrief,
    new_run_columns,
)
from agent_runtime.storage.sqlite.threads import thread_not_found

# Activity (a run starting or settling, a state edit) restarts the thread's own TTL, which
# `ttl` holds in minutes; the one parameter is the moment of the activity.
EXPIRES_AT = (
    "CASE WHEN json_extract(ttl, '$.ttl') IS NULL THEN NULL"
    " ELSE strftime('%Y-%m-%dT%H:%M:%f+00:00', ?,"
    " printf('+%f seconds', json_extract(ttl, '$.ttl') * 60)) END"
)

NOT_READ = object()
"""`create_run_rows`'s fourth item when it did not read the thread's latest checkpoint."""


def stored_time(moment: datetime) -> str:
    """A moment as a run row stores it: one fixed UTC form, so that comparing and ordering the
    stored strings compares the times, whatever zone the caller's `not_before` came in."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def create_run_rows(
    db: sqlite3.Connection,
    new: NewRun,
    now: datetime,
    claim: Claim | None,
    read: Callable[[str], Callable[[sqlite3.Connection], Any]] | None,
) -> tuple[Any, list[Any], ThreadBrief, Any]:
    """The new run's row, the thread's active runs before it, the thread's brief, and what
    `read` (given the thread's id) read after the insert if the run was created `running`,
    else `NOT_READ`.

    Raises:
        AssistantChangedError, NotFoundError, ConflictError, InvalidRequestError: as
            `Storage.create_run` says; the transaction is rolled back by the caller.
    """
    if new.assistant_seen is not None:
        stored = db.execute(
            "SELECT version, updated_at FROM assistants WHERE assistant_id = ?",
            (new.assistant_id,),
        ).fetchone()
        if stored is None or new.assistant_seen != AssistantStamp(
            stored[0], datetime.fromisoformat(stored[1])
        ):
            raise AssistantChangedError(new.assistant_id)
    thread = db.execute(
        "SELECT metadata, lifecycle, tags, message_count FROM threads WHERE thread_id = ?",
        (new.thread_id,),
    ).fetchone()
    if thread is not None:
        require_open(new.thread_id, thread["lifecycle"], "take new runs")
        metadata = loads(thread["metadata"])
        tags = loads(thread["tags"])
        message_count = int(thread["message_count"])
    elif new.if_not_exists == "create":
        metadata = dict(new.thread_metadata or {})
        tags = []
        message_count = 0
        db.execute(
            "INSERT INTO threads (thread_id, created_at, updated_at, state_updated_at,"
            " metadata, visible, ttl) VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                new.thread_id,
                *[now.isoformat()] * 3,
                dumps_text(metadata),
                int(new.thread_visible),
                None if new.thread_ttl is None else dumps_text(new.thread_ttl),
            ),
        )
    else:
        raise thread_not_found(new.thread_id)
    # The running run first, so a refusal names the run that actually holds the thread.
    active = db.execute(
        "SELECT * FROM runs WHERE thread_id = ? AND status IN ('pending', 'running')"
        " ORDER BY status = 'running' DESC, created_at, run_id",
        (new.thread_id,),
    ).fetchall()
    check_active(new, active)
    stamp = stored_time(now)
    # Claimed at once only where `claim_next_run` would claim it next: a claim writes these.
    if active or (new.not_before is not None and new.not_before > now):
        claim = None
    status, attempt, owner, lease_expires_at, progress_mark = new_run_columns(claim, now)
    try:
        inserted = db.execute(
            "INSERT INTO runs (run_id, thread_id, assistant_id, created_at, updated_at,"
            " status, metadata, kwargs, multitask_strategy, attempt, not_before,"
            " owner, lease_expires_at, progress_mark)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *",
            (
                new.run_id,
                new.thread_id,
                new.assistant_id,
                stamp,
                stamp,
                status,
                dumps_text(new.metadata),
                dumps_text(new.options.to_json()),
                new.multitask_strategy,
                attempt,
                None if new.not_before is None else stored_time(new.not_before),
                owner,
                None if lease_expires_at is None else stored_time(lease_expires_at),
                progress_mark,
            ),
        ).fetchone()
    except sqlite3.IntegrityError:
        raise ConflictError(
            f'Run "{new.run_id}" already exists; choose a new run_id', code="run_exists"
        ) from None
    tags = list(dict.fromkeys([*tags, *new.tags]))
    if len(tags) > new.max_tags:
        raise InvalidRequestError(
            f"tags: the thread would carry {len(tags)} tags, over the limit of {new.max_tags}",
            code="too_many_tags",
        )
    metadata.update({"graph_id": new.graph_id, "assistant_id": new.assistant_id})
    db.execute(
        # A run is activity: a TTL counts from it (`ttl` holds minutes).
        "UPDATE threads SET status = 'busy', metadata = ?, tags = ?, updated_at = ?,"
        " run_count = run_count + 1, first_run_at = coalesce(first_run_at, ?),"
        f" last_run_at = ?, expires_at = {EXPIRES_AT} WHERE thread_id = ?",
        (
            dumps_text(metadata),
            dumps_text(tags),
            now.isoformat(),
            now.isoformat(),
            now.isoformat(),
            now.isoformat(),
            new.thread_id,
        ),
    )
    found = NOT_READ
    if read is not None and inserted["status"] == "running":
        found = read(new.thread_id)(db)
    return inserted, active, ThreadBrief(message_count, metadata), found
