"""Cron schedules: checking an expression and a time zone, and the next time a schedule fires.
croniter parses and steps the expressions; this module adds the time zone and the rule for
the hour a daylight-saving change repeats. No IO, no clock: callers pass the moment."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterBadCronError, CroniterBadDateError, CroniterError, croniter

from agent_runtime.encoding import preview
from agent_runtime.errors import InvalidRequestError

_MAX_STEPS = 8
"""Fires skipped in a row (repeated-hour duplicates) before giving up on a schedule."""


def check_schedule(schedule: str) -> None:
    """Refuse an expression croniter cannot read, naming it.

    Raises:
        InvalidRequestError: not a cron expression (5 fields, or 6 with seconds last).
    """
    try:
        croniter(schedule, datetime(2000, 1, 1, tzinfo=UTC))
    except (CroniterError, ValueError, TypeError, KeyError) as exc:
        raise InvalidRequestError(
            f"schedule: {preview(schedule)} is not a cron expression ({exc}); write 5 fields "
            '(minute hour day month weekday), e.g. "*/5 * * * *", or 6 with seconds last',
            code="invalid_schedule",
        ) from None


def zone_of(timezone: str | None) -> ZoneInfo:
    """The IANA zone a schedule is read in; UTC when none is named.

    Raises:
        InvalidRequestError: the name is not an IANA time zone.
    """
    try:
        return ZoneInfo(timezone or "UTC")
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise InvalidRequestError(
            f"timezone: {preview(timezone)} is not an IANA time zone; use a name such as "
            f'"America/New_York" or "UTC" ({exc})',
            code="invalid_timezone",
        ) from None


def next_fire(
    schedule: str, timezone: str | None, after: datetime, *, end_time: datetime | None = None
) -> datetime | None:
    """The first time strictly after `after` that the schedule names, in UTC; None when that
    is past `end_time` (the cron has ended) or the schedule names no such time.

    The schedule is read on the zone's wall clock, as cron does: "0 9 * * *" in
    "Europe/Paris" is 09:00 in Paris in winter and in summer. A time the spring-forward gap
    skips fires at the first moment after the gap (croniter's rule). In the hour a fall-back
    repeats, a schedule with fixed hours fires once, the first time; one that fires every
    hour (`*` in the hour field) fires in both, since an hour of real time passes between.

    Raises:
        InvalidRequestError: the schedule or the zone is invalid.
    """
    check_schedule(schedule)
    zone = zone_of(timezone)
    try:
        steps = croniter(schedule, after.astimezone(zone))
        every_hour = steps.expanded[1] == ["*"]
        for _ in range(_MAX_STEPS):
            fire: datetime = steps.get_next(datetime)
            if every_hour or not _repeated(fire):
                break
        else:
            return None
    except (CroniterBadDateError, CroniterBadCronError):
        # Schedules such as "0 0 30 2 *" (February 30th) name no time at all.
        return None
    moment = fire.astimezone(UTC)
    if end_time is not None and moment > end_time:
        return None
    return moment


def _repeated(fire: datetime) -> bool:
    """Whether `fire` is the second pass of a wall time the fall-back hour repeats."""
    if fire.fold == 0:
        return False
    first = fire.replace(fold=0)
    return first.utcoffset() != fire.utcoffset()
