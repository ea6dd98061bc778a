"""Due-date arithmetic: ISO 8601 durations, business days, working hours, lengths of stay.

Pure functions: the current time always comes in as an argument, never from the wall
clock. Moments may be `date`, `datetime` or ISO 8601 text (task data from forms is text).
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from SpiffWorkflow.bpmn.specs.event_definitions.timer import TimerEventDefinition

Moment = date | datetime | str

# SpiffWorkflow adds calendar months one at a time, so an absurd duration would spin.
MAX_DURATION_MONTHS = 12 * 1000
_TIME_PARTS = ("hours", "minutes", "seconds")
_TIME_OF_DAY = re.compile(r"^(\d{1,2}):(\d{2})$")
_WORKING_HOURS = re.compile(r"^\s*(\S+)\s*-\s*(\S+)\s*$")
_DAY = timedelta(days=1)


def parse_datetime(text: Moment) -> datetime:
    """Parse ISO 8601 text into a datetime (a date alone means its midnight)."""
    if isinstance(text, datetime):
        return text
    if isinstance(text, date):
        return datetime(text.year, text.month, text.day)
    if not isinstance(text, str):
        raise TypeError(f"Expected a date or ISO 8601 text, got {text.__class__.__name__}")
    try:
        return datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"'{text}' is not an ISO 8601 date or date-time, e.g. \"2026-03-01T09:30:00+00:00\"") from None


def parse_duration(text: str) -> dict[str, float]:
    """Parse an ISO 8601 duration such as "P1M" or "PT24H" into its parts."""
    problem = f"'{text}' is not an ISO 8601 duration, e.g. \"P1D\", \"PT24H\" or \"P1M\""
    if not isinstance(text, str) or not text.strip().upper().startswith("P"):
        raise ValueError(problem)
    try:
        parts = TimerEventDefinition.parse_iso_duration(text.strip())
    except Exception:
        raise ValueError(problem) from None
    if not parts:
        raise ValueError(problem)
    if parts.get("months", 0) + 12 * parts.get("years", 0) > MAX_DURATION_MONTHS:
        raise ValueError(f"Duration '{text}' is longer than {MAX_DURATION_MONTHS // 12} years")
    return parts


def add_duration(start: Moment, text: str) -> date | datetime:
    """Return `start` plus an ISO 8601 duration, counting real month lengths."""
    start = _as_moment(start)
    parts = parse_duration(text)
    if not isinstance(start, datetime) and any(parts.get(p) for p in _TIME_PARTS):
        raise ValueError(f"Cannot add '{text}' to the date {start.isoformat()}: a date has no time of day")
    return add_parts(start, parts)


def add_parts(start: date | datetime, parts: dict[str, float]) -> date | datetime:
    """Return `start` plus parsed duration parts (see parse_duration), counting real month lengths."""
    try:
        return start + TimerEventDefinition.get_timedelta_from_start(dict(parts), start)
    except OverflowError:
        raise ValueError(f"{start.isoformat()} plus {parts} is outside the supported calendar") from None


def is_business_day(day: Moment, holidays: Iterable[Moment] = ()) -> bool:
    """Tell whether `day` is a weekday that is not one of the holidays."""
    as_date = _day_of(_as_moment(day))
    return as_date.weekday() < 5 and as_date not in holiday_dates(holidays)


def add_business_days(start: Moment, days: int, holidays: Iterable[Moment] = ()) -> date | datetime:
    """Move `days` business days from `start`, skipping weekends and holidays; keep the time of day."""
    start = _as_moment(start)
    if isinstance(days, bool) or not isinstance(days, int):
        raise TypeError(f"Business days must be a whole number, got {days!r}")
    off = {h for h in holiday_dates(holidays) if h.weekday() < 5}
    step = 1 if days >= 0 else -1
    first = _day_of(start)
    try:
        previous, current = first, _skip_weekdays(first, abs(days), step)
        while True:
            # Holidays passed over push the target further, possibly onto more holidays.
            low, high = sorted((previous, current))
            passed = sum(1 for h in off if (low < h <= high if step > 0 else low <= h < high))
            if not passed:
                break
            previous, current = current, _skip_weekdays(current, passed, step)
        return start + timedelta(days=(current - first).days)
    except OverflowError:
        raise ValueError(f"{days} business days from {start.isoformat()} is outside the supported calendar") from None


def business_days_between(start: Moment, end: Moment, holidays: Iterable[Moment] = ()) -> int:
    """Count business days after `start` up to and including `end` (negative when `end` is earlier)."""
    first, last = _same_zone_days(_as_moment(start), _as_moment(end))
    if last < first:
        return -business_days_between(last, first, holidays)
    weeks, rest = divmod((last - first).days, 7)
    count = 5 * weeks + sum(1 for n in range(1, rest + 1) if (first + timedelta(days=n)).weekday() < 5)
    return count - sum(1 for h in holiday_dates(holidays) if h.weekday() < 5 and first < h <= last)


def parse_time_of_day(text: str) -> timedelta:
    """Parse "HH:MM" (24 h; "24:00" is the midnight that ends the day) into the time since midnight."""
    match = _TIME_OF_DAY.match(text.strip()) if isinstance(text, str) else None
    hour, minute = (int(match.group(1)), int(match.group(2))) if match else (-1, -1)
    if not match or minute > 59 or hour > 24 or (hour == 24 and minute):
        raise ValueError(f"{text!r} is not a time of day such as \"12:00\" or \"24:00\"")
    return timedelta(hours=hour, minutes=minute)


@dataclass(frozen=True)
class WorkingHours:
    """The local hours of a business day when work is done, as times since midnight."""

    opens: timedelta = timedelta(hours=8)
    closes: timedelta = timedelta(hours=17)

    def __post_init__(self):
        if not timedelta(0) <= self.opens < self.closes <= _DAY:
            raise ValueError(f"Working hours must open before they close, within one day; got {self}")

    @classmethod
    def parse(cls, text: str) -> WorkingHours:
        """Parse settings text such as "08:00-17:00" (closing may be "24:00")."""
        problem = (f"Working hours {text!r} must be an opening and a closing time of day, the closing later, "
                   f"e.g. \"08:00-17:00\" or \"07:30-24:00\"")
        match = _WORKING_HOURS.match(text) if isinstance(text, str) else None
        if not match:
            raise ValueError(problem)
        try:
            opens, closes = parse_time_of_day(match.group(1)), parse_time_of_day(match.group(2))
            return cls(opens=opens, closes=closes)
        except ValueError:
            raise ValueError(problem) from None

    def __str__(self) -> str:
        return f"{_clock_text(self.opens)}-{_clock_text(self.closes)}"


def add_working_time(start: datetime, duration: timedelta, *, hours: WorkingHours = WorkingHours(),
                     holidays: Iterable[Moment] = ()) -> datetime:
    """Add working time to a local wall-clock moment, counting only the working hours of business days."""
    if start.tzinfo is not None:
        raise ValueError(f"Working time is counted on the local wall clock; {start.isoformat()} has a time zone")
    if duration < timedelta(0):
        raise ValueError(f"Working time to add cannot be negative, got {duration}")
    if not duration:
        return start
    off = holiday_dates(holidays)
    day, moment = _working_moment(start, hours, off)
    closes_at = _midnight(day) + hours.closes
    if duration <= closes_at - moment:
        return moment + duration
    # Whole working days are counted as business days so long durations do not walk day by day.
    full_days, rest = divmod(duration - (closes_at - moment), hours.closes - hours.opens)
    if not rest:
        full_days, rest = full_days - 1, hours.closes - hours.opens
    last = add_business_days(day, full_days + 1, off)
    return _midnight(last) + hours.opens + rest


def length_of_stay(admitted_at: Moment, discharged_at: Moment) -> int:
    """Count the midnights between admission and discharge (a same-day stay is 0)."""
    admitted, discharged = _same_zone_days(_as_moment(admitted_at), _as_moment(discharged_at))
    if discharged < admitted:
        raise ValueError(f"Discharge ({discharged_at}) is before admission ({admitted_at})")
    return (discharged - admitted).days


def _as_moment(value: Moment) -> date | datetime:
    if isinstance(value, str):
        return parse_datetime(value)
    if not isinstance(value, date):
        raise TypeError(f"Expected a date, datetime or ISO 8601 text, got {value.__class__.__name__}")
    return value


def _working_moment(start: datetime, hours: WorkingHours, holidays: set[date]) -> tuple[date, datetime]:
    # The first moment at or after `start` inside working hours, with its business day.
    day = start.date()
    if not is_business_day(day, holidays) or start >= _midnight(day) + hours.closes:
        day = add_business_days(day, 1, holidays)
        return day, _midnight(day) + hours.opens
    return day, max(start, _midnight(day) + hours.opens)


def _midnight(day: date) -> datetime:
    return datetime(day.year, day.month, day.day)


def _clock_text(since_midnight: timedelta) -> str:
    hours, seconds = divmod(int(since_midnight.total_seconds()), 3600)
    return f"{hours:02d}:{seconds // 60:02d}"


def _day_of(moment: date | datetime) -> date:
    return moment.date() if isinstance(moment, datetime) else moment


def _same_zone_days(first: date | datetime, second: date | datetime) -> tuple[date, date]:
    # Compare calendar days as seen from the first moment's timezone.
    if isinstance(first, datetime) and isinstance(second, datetime) and first.tzinfo and second.tzinfo:
        second = second.astimezone(first.tzinfo)
    return _day_of(first), _day_of(second)


def holiday_dates(holidays: Iterable[Moment] | None) -> set[date]:
    """The calendar days of holidays given as dates, date-times or ISO 8601 text."""
    if holidays is None:
        return set()
    if isinstance(holidays, (str, date)):
        holidays = [holidays]
    return {_day_of(_as_moment(h)) for h in holidays}


def _skip_weekdays(day: date, count: int, step: int) -> date:
    if count == 0:
        return day
    # From a weekend, counting starts at the weekday just before it in the direction of travel.
    while day.weekday() >= 5:
        day -= timedelta(days=step)
    weeks, rest = divmod(count, 5)
    day += timedelta(days=7 * weeks * step)
    while rest:
        day += timedelta(days=step)
        if day.weekday() < 5:
            rest -= 1
    return day
