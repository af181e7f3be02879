"""The recovery ladder: when to nudge a user who dropped off, and what to say.

Plain time arithmetic, no Redis and no HTTP: the scheduler asks ``plan()`` for the due times,
each step job asks ``Ladder.step()`` for its text, and quiet hours push a step to the next
allowed moment in the user's time zone.
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, time as dtime, timedelta, timezone
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DEFAULT_TEXTS = (
    "You started “{title}” but didn't finish. It only takes a minute — tap below to pick up where you "
    "left off.",
    "Still interested? Your answers to “{title}” are saved; tap below to continue.",
    "Last reminder: “{title}” is waiting for you. Tap below to finish, or reply STOP to opt out.",
)
_DURATION = re.compile(r"^\s*(\d+)\s*(s|m|h|d)?\s*$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> int:
    """'15m' → 900, '6h' → 21600, '30' → 30 (seconds)."""
    m = _DURATION.match(text)
    if not m:
        raise ValueError(f"{text!r} is not a duration like 15m, 6h or 30s")
    return int(m.group(1)) * _UNIT[m.group(2) or "s"]


@dataclass(frozen=True)
class Step:
    name: str  # "step1", "step2", ...: part of every idempotency key, so never renumber
    delay: int  # seconds after the ladder starts
    text: str


@dataclass(frozen=True)
class Ladder:
    steps: tuple[Step, ...]

    @classmethod
    def from_spec(cls, spec: str, texts=DEFAULT_TEXTS) -> "Ladder":
        delays = [parse_duration(part) for part in spec.split(",") if part.strip()]
        if delays != sorted(delays):
            raise ValueError("recovery steps must be in increasing order")
        return cls(tuple(Step(f"step{i + 1}", d, texts[min(i, len(texts) - 1)])
                         for i, d in enumerate(delays)))

    def step(self, name: str) -> Step | None:
        return next((s for s in self.steps if s.name == name), None)


@dataclass(frozen=True)
class QuietHours:
    start: dtime
    end: dtime

    @classmethod
    def parse(cls, spec: str | None) -> "QuietHours | None":
        """'21:00-08:00' (may wrap past midnight); empty → no quiet hours."""
        if not spec:
            return None
        a, _, b = spec.partition("-")
        return cls(dtime.fromisoformat(a.strip()), dtime.fromisoformat(b.strip()))

    def contains(self, t: dtime) -> bool:
        if self.start <= self.end:
            return self.start <= t < self.end
        return t >= self.start or t < self.end

    def next_allowed(self, when: datetime, tz_name: str) -> datetime:
        """``when`` itself if it is outside quiet hours in ``tz_name``, else the end of them (UTC)."""
        tz = _zone(tz_name)
        local = when.astimezone(tz)
        if not self.contains(local.time().replace(tzinfo=None)):
            return when
        end = local.replace(hour=self.end.hour, minute=self.end.minute, second=0, microsecond=0)
        if end <= local:
            end += timedelta(days=1)
        return end.astimezone(timezone.utc)


def _zone(name: str):
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return timezone.utc


def plan(ladder: Ladder, started: datetime, quiet: QuietHours | None, tz_name: str):
    """(step, due time in UTC) for every step, quiet hours applied."""
    for step in ladder.steps:
        due = started + timedelta(seconds=step.delay)
        yield step, (quiet.next_allowed(due, tz_name) if quiet else due)
