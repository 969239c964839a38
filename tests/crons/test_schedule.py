"""Cron schedules read on a zone's wall clock: the next time, daylight-saving changes both
ways, end times, and the refusals that name the bad value."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from agent_runtime.crons.schedule import check_schedule, next_fire, zone_of
from agent_runtime.errors import InvalidRequestError

NEW_YORK = "America/New_York"


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def test_next_fire_is_strictly_after() -> None:
    assert next_fire("*/5 * * * *", None, utc(2026, 1, 1, 0, 0)) == utc(2026, 1, 1, 0, 5)
    assert next_fire("*/5 * * * *", None, utc(2026, 1, 1, 0, 4, 59)) == utc(2026, 1, 1, 0, 5)
    assert next_fire("@daily", None, utc(2026, 1, 1, 12)) == utc(2026, 1, 2)
    # Six fields: seconds last.
    assert next_fire("* * * * * */10", None, utc(2026, 1, 1, 0, 0, 1)) == utc(2026, 1, 1, 0, 0, 10)


def test_a_zone_keeps_the_wall_clock_time_across_summer_time() -> None:
    # 09:00 in New York: 14:00 UTC in winter (EST), 13:00 UTC in summer (EDT).
    assert next_fire("0 9 * * *", NEW_YORK, utc(2026, 3, 7, 15)) == utc(2026, 3, 8, 13)
    assert next_fire("0 9 * * *", NEW_YORK, utc(2026, 1, 10, 15)) == utc(2026, 1, 11, 14)


def test_a_time_the_spring_gap_skips_fires_after_the_gap() -> None:
    # 2026-03-08 02:30 does not exist in New York (02:00 EST -> 03:00 EDT).
    assert next_fire("30 2 * * *", NEW_YORK, utc(2026, 3, 8, 5)) == utc(2026, 3, 8, 7)
    assert next_fire("30 2 * * *", NEW_YORK, utc(2026, 3, 8, 7)) == utc(2026, 3, 9, 6, 30)


def test_the_repeated_fall_hour_fires_a_fixed_time_once() -> None:
    # 2026-11-01 01:30 happens twice in New York: 05:30 UTC (EDT) and 06:30 UTC (EST).
    first = next_fire("30 1 * * *", NEW_YORK, utc(2026, 11, 1, 5))
    assert first == utc(2026, 11, 1, 5, 30)
    assert next_fire("30 1 * * *", NEW_YORK, first) == utc(2026, 11, 2, 6, 30)


def test_the_repeated_fall_hour_keeps_hourly_schedules_hourly() -> None:
    fires = [utc(2026, 11, 1, 4, 59)]
    for _ in range(4):
        found = next_fire("0 * * * *", NEW_YORK, fires[-1])
        assert found is not None
        fires.append(found)
    assert fires[1:] == [utc(2026, 11, 1, hour) for hour in (5, 6, 7, 8)]


def test_end_time_stops_the_schedule() -> None:
    end = utc(2026, 1, 1, 0, 10)
    assert next_fire("*/5 * * * *", None, utc(2026, 1, 1, 0, 5), end_time=end) == end
    assert next_fire("*/5 * * * *", None, end, end_time=end) is None


def test_a_schedule_with_no_time_left_has_no_next_fire() -> None:
    assert next_fire("0 0 30 2 *", None, utc(2026, 1, 1)) is None


@pytest.mark.parametrize("schedule", ["", "every minute", "61 * * * *", "* * *", "* * * * * * * *"])
def test_a_bad_schedule_is_refused_by_name(schedule: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        check_schedule(schedule)
    assert caught.value.code == "invalid_schedule"
    assert caught.value.detail.startswith(f'schedule: "{schedule}" is not a cron expression')


def test_a_bad_zone_is_refused_by_name() -> None:
    assert zone_of(None).key == "UTC"
    with pytest.raises(InvalidRequestError) as caught:
        zone_of("Mars/Olympus_Mons")
    assert caught.value.code == "invalid_timezone"
    assert caught.value.detail.startswith('timezone: "Mars/Olympus_Mons" is not an IANA time zone')
