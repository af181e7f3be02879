"""The recovery ladder's arithmetic: durations, order, quiet hours across midnight and zones."""
from datetime import datetime, timezone

import pytest

from flows.recovery import Ladder, QuietHours, parse_duration, plan


def test_default_ladder_spec():
    ladder = Ladder.from_spec("15m,6h,23h")
    assert [(s.name, s.delay) for s in ladder.steps] == [("step1", 900), ("step2", 21600), ("step3", 82800)]
    assert "{title}" in ladder.step("step3").text and ladder.step("step9") is None


@pytest.mark.parametrize("bad", ["15x", "", "-5m"])
def test_bad_durations_are_refused(bad):
    with pytest.raises(ValueError):
        parse_duration(bad)


def test_steps_must_increase():
    with pytest.raises(ValueError):
        Ladder.from_spec("6h,15m")


def utc(*args):
    return datetime(*args, tzinfo=timezone.utc)


def test_quiet_hours_wrapping_midnight_push_to_the_morning():
    quiet = QuietHours.parse("21:00-08:00")
    assert quiet.next_allowed(utc(2026, 11, 24, 23, 30), "UTC") == utc(2026, 11, 25, 8, 0)
    assert quiet.next_allowed(utc(2026, 11, 25, 3, 0), "UTC") == utc(2026, 11, 25, 8, 0)
    assert quiet.next_allowed(utc(2026, 11, 25, 12, 0), "UTC") == utc(2026, 11, 25, 12, 0)


def test_quiet_hours_follow_the_users_time_zone():
    quiet = QuietHours.parse("21:00-08:00")
    # 12:00 UTC is 21:00 in Tokyo (UTC+9): quiet there until 08:00 Tokyo = 23:00 UTC.
    assert quiet.next_allowed(utc(2026, 11, 24, 12, 0), "Asia/Tokyo") == utc(2026, 11, 24, 23, 0)
    # An unknown zone falls back to UTC rather than failing the job.
    assert quiet.next_allowed(utc(2026, 11, 24, 12, 0), "Mars/Olympus") == utc(2026, 11, 24, 12, 0)


def test_plan_applies_quiet_hours_per_step():
    ladder = Ladder.from_spec("1h,10h")
    quiet = QuietHours.parse("22:00-07:00")
    due = dict((s.name, d) for s, d in plan(ladder, utc(2026, 11, 24, 18, 0), quiet, "UTC"))
    assert due == {"step1": utc(2026, 11, 24, 19, 0), "step2": utc(2026, 11, 25, 7, 0)}
