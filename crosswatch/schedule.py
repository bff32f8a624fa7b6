"""When jobs may go out: posting windows, a minimum gap, a daily maximum and a stagger (pure).

``earliest`` answers for one job given what has already been posted; ``plan`` runs the same rules
over a whole queue, as if each job went out at its planned time, so ``crosswatch queue`` can show
when every waiting job will go. Windows are read in the schedule's time zone, so "mon-fri
08:00-10:00" follows daylight saving time.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from crosswatch.config import Config, ScheduleConfig, TargetSchedule

DAY_NAMES = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_WINDOW = re.compile(r"^\s*(?:(?P<days>[a-z,\-*]+)\s+)?(?P<start>\d{1,2}:\d{2})\s*-\s*(?P<end>\d{1,2}:\d{2})\s*$")
# Enough rounds for every rule to push a time past the others' reasons (window, gap, day cap, stagger).
_ROUNDS = 12


@dataclass(frozen=True)
class Window:
    days: frozenset[int]  # 0 = Monday
    start: int  # minutes after midnight
    end: int  # minutes after midnight; not after start means the window runs past midnight

    def contains(self, moment: dt.datetime) -> bool:
        minute = moment.hour * 60 + moment.minute
        weekday = moment.weekday()
        if self.start < self.end:
            return weekday in self.days and self.start <= minute < self.end
        return (weekday in self.days and minute >= self.start) or ((weekday - 1) % 7 in self.days and minute < self.end)


def _minutes(text: str) -> int:
    hours, minutes = (int(part) for part in text.split(":"))
    if hours > 24 or minutes > 59 or (hours == 24 and minutes):
        raise ValueError(f"{text} is not a time of day")
    return hours * 60 + minutes


def _days(text: str | None) -> frozenset[int]:
    if text in (None, "daily", "*", "every"):
        return frozenset(range(7))
    assert text is not None
    days: set[int] = set()
    for part in text.split(","):
        first, _, last = part.partition("-")
        if first not in DAY_NAMES or (last and last not in DAY_NAMES):
            raise ValueError(f"{part!r} is not a day or a range of days (mon, tue, ... sun, daily)")
        a, b = DAY_NAMES.index(first), DAY_NAMES.index(last or first)
        days.update((a + i) % 7 for i in range((b - a) % 7 + 1))
    return frozenset(days)


def parse_window(text: str) -> Window:
    """'mon-fri 08:00-10:00', 'sat,sun 09:30-12:00', 'daily 22:00-01:00' or '18:00-21:00'."""
    match = _WINDOW.match(text.lower())
    if not match:
        raise ValueError(f"{text!r} is not a posting window; write it like 'mon-fri 08:00-10:00'")
    start, end = _minutes(match["start"]), _minutes(match["end"]) % (24 * 60)
    if start == end:
        raise ValueError(f"{text!r} is an empty window")
    return Window(_days(match["days"]), start, end)


def time_zone(schedule: ScheduleConfig) -> dt.tzinfo:
    if not schedule.timezone:
        local = dt.datetime.now().astimezone().tzinfo
        assert local is not None
        return local
    try:
        return ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"{schedule.timezone!r} is not a known time zone (e.g. Europe/Berlin)") from None


def next_window_start(at: float, windows: Sequence[Window], zone: dt.tzinfo) -> float:
    """``at`` if it falls in a window, else the next moment a window opens."""
    if not windows:
        return at
    local = dt.datetime.fromtimestamp(at, zone)
    if any(w.contains(local) for w in windows):
        return at
    openings = []
    for offset in range(8):
        day = local.date() + dt.timedelta(days=offset)
        for window in windows:
            if day.weekday() in window.days:
                opening = dt.datetime.combine(day, dt.time(window.start // 60, window.start % 60), tzinfo=zone)
                if opening.timestamp() > at:
                    openings.append(opening.timestamp())
    return min(openings)


def next_midnight(at: float, zone: dt.tzinfo) -> float:
    day = dt.datetime.fromtimestamp(at, zone).date() + dt.timedelta(days=1)
    return dt.datetime.combine(day, dt.time(0, 0), tzinfo=zone).timestamp()


def _same_day_count(at: float, posted: Iterable[float], zone: dt.tzinfo) -> int:
    day = dt.datetime.fromtimestamp(at, zone).date()
    return sum(1 for t in posted if dt.datetime.fromtimestamp(t, zone).date() == day)


class Planner:
    def __init__(self, config: Config) -> None:
        self.schedule = config.schedule
        self.zone = time_zone(config.schedule)
        self._windows = {name: [parse_window(w) for w in rules.windows]
                         for name, rules in config.schedule.targets.items()}

    def earliest(self, target: str, at: float, posted: Sequence[float],
                 sibling_starts: Sequence[float] = ()) -> tuple[float, str | None]:
        """The earliest moment not before ``at`` a post on ``target`` may go out, and why it waits.

        ``posted``: when the target's recent posts went out (two days back is enough).
        ``sibling_starts``: when the same photo's posts on other targets started.
        """
        rules = self.schedule.targets.get(target, TargetSchedule())
        windows = self._windows.get(target, [])
        when, why = at, None
        for _round in range(_ROUNDS):
            before = when
            if self.schedule.stagger_minutes and sibling_starts:
                staggered = min(sibling_starts) + self.schedule.stagger_minutes * 60
                if staggered > when:
                    when, why = staggered, f"staggered {self.schedule.stagger_minutes:g} min after the other target"
            if rules.min_gap_minutes and posted:
                gap_end = max(posted) + rules.min_gap_minutes * 60
                if gap_end > when:
                    when, why = gap_end, f"min_gap_minutes {rules.min_gap_minutes:g} on {target}"
            if rules.daily_max and _same_day_count(when, posted, self.zone) >= rules.daily_max:
                when, why = next_midnight(when, self.zone), f"daily_max {rules.daily_max} reached on {target}"
            opening = next_window_start(when, windows, self.zone)
            if opening > when:
                when, why = opening, f"outside the posting windows of {target} ({', '.join(rules.windows)})"
            if when == before:
                break
        return when, why

    def plan(self, jobs: Sequence[tuple[int, str, int, float]], posted: Mapping[str, Sequence[float]],
             started: Mapping[int, Sequence[float]], now: float) -> dict[int, tuple[float, str | None]]:
        """Planned times for waiting jobs, given as (job id, target, photo id, not before).

        Jobs are taken in order of their own times, and each planned post counts for the ones after
        it, as if it had gone out at its planned time.
        """
        history = {target: list(times) for target, times in posted.items()}
        photo_starts = {photo: list(times) for photo, times in started.items()}
        planned: dict[int, tuple[float, str | None]] = {}
        for job_id, target, photo_id, not_before in sorted(jobs, key=lambda j: (max(j[3], now), j[0])):
            when, why = self.earliest(target, max(not_before, now), history.get(target, []),
                                      photo_starts.get(photo_id, []))
            planned[job_id] = (when, why)
            history.setdefault(target, []).append(when)
            photo_starts.setdefault(photo_id, []).append(when)
        return planned
